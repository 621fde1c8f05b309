//! `gn_xds_server` and `gn_xds_options`: the embedded xDS server that serves discovered lists to
//! gRPC's own xDS clients, the process-wide default server, and the bootstrap that points at it.

use std::ffi::{c_char, CString};

use super::error::{gn_error, gn_status};
use super::panic::with_status;
use super::plumbing::{borrow, borrow_str, edit_options, free_handle, new_handle, on_handle, Out};
use super::resolver::gn_resolver_options;
use crate::error::Error;
use crate::xds::{self, names, XdsOptions, XdsServer};

/// Options for `gn_xds_server_start` and `gn_xds_default_configure`, set one by one. Made by
/// `gn_xds_options_new`, freed by `gn_xds_options_free`. Not thread-safe: do not change one options
/// object from two threads at once. Copied by the calls that take it.
#[derive(Clone)]
pub struct gn_xds_options {
    pub(crate) inner: XdsOptions,
}

/// A running xDS server (state-of-the-world ADS over gRPC). Made by `gn_xds_server_start`, stopped by
/// `gn_xds_server_close`, released by `gn_xds_server_free`. Thread-safe.
pub struct gn_xds_server {
    inner: XdsServer,
}

impl Drop for gn_xds_server {
    fn drop(&mut self) {
        self.inner.close();
    }
}

/// A new options object with every default: listen on 127.0.0.1, any free port; bare names use the
/// etcd scheme; no node id check; default resolver options. Never NULL (NULL only if the process is
/// out of memory).
#[no_mangle]
pub extern "C" fn gn_xds_options_new() -> *mut gn_xds_options {
    new_handle(|| gn_xds_options { inner: XdsOptions::default() })
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn gn_xds_options_free(options: *mut gn_xds_options) {
    free_handle(options)
}

/// Where the server listens: `"IP:PORT"` or `"localhost:PORT"` (port 0: any free port), `"unix:/path"`
/// (created with mode 0600), or `"unix:"` for a socket in a new private directory (mode 0700).
/// A non-loopback address fails here and at start unless `gn_xds_options_set_allow_non_loopback`
/// allowed it first: the server answers anyone who can connect. On error the options are unchanged.
#[no_mangle]
pub extern "C" fn gn_xds_options_set_listen(
    options: *mut gn_xds_options,
    address: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        let address = unsafe { borrow_str(address, "address") }?;
        crate::xds::server::check_listen(address, o.inner.allow_non_loopback)?;
        o.inner.listen = address.to_string();
        Ok(())
    })
}

/// Allows (`true`) or refuses (`false`, the default) a listen address other than loopback.
#[no_mangle]
pub extern "C" fn gn_xds_options_set_allow_non_loopback(
    options: *mut gn_xds_options,
    allow: bool,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        o.inner.allow_non_loopback = allow;
        Ok(())
    })
}

/// The scheme of bare listener names: with `"etcd"` (the default) `xds:///echo` serves
/// `etcd:///echo`; with `"dns"` it serves `dns:///echo`. Fails for a scheme libgnaming does not serve.
#[no_mangle]
pub extern "C" fn gn_xds_options_set_default_scheme(
    options: *mut gn_xds_options,
    scheme: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        let scheme = unsafe { borrow_str(scheme, "scheme") }?;
        names::check_scheme(scheme)?;
        o.inner.default_scheme = scheme.to_string();
        Ok(())
    })
}

/// With `true`, the server answers only clients whose bootstrap carries this server's node id (as
/// `gn_xds_server_bootstrap_json` writes it) and ends other streams with PERMISSION_DENIED. Default
/// `false`: any client that can connect is answered.
#[no_mangle]
pub extern "C" fn gn_xds_options_set_node_id_check(
    options: *mut gn_xds_options,
    on: bool,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        o.inner.check_node_id = on;
        Ok(())
    })
}

/// Options for the resolvers the server starts (a DNS nameserver, for instance); copied.
#[no_mangle]
pub extern "C" fn gn_xds_options_set_resolver_options(
    options: *mut gn_xds_options,
    resolver_options: *const gn_resolver_options,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or a live options object, as documented.
        let r = unsafe { borrow(resolver_options, "resolver_options") }?;
        o.inner.resolver = r.inner.clone();
        Ok(())
    })
}

/// Starts an xDS server on the library's runtime.
///
/// Each listener name a client asks for (see the README's mapping) starts one resolver, shared by every
/// stream asking for it and closed when none does. `options` NULL means defaults; copied.
/// `*server_out` is written on success only. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_xds_server_start(
    options: *const gn_xds_options,
    server_out: *mut *mut gn_xds_server,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or valid for a write, as documented.
        let out = unsafe { Out::new(server_out, "server_out") }?;
        // SAFETY: NULL or a live options object, as documented.
        let defaults = XdsOptions::default();
        let options = unsafe { options.as_ref() }.map_or(&defaults, |o| &o.inner);
        out.put(gn_xds_server { inner: XdsServer::start(options)? })
    })
}

fn c_string(text: &str) -> Result<*mut c_char, Error> {
    CString::new(text).map(CString::into_raw).map_err(|_| Error::invalid_argument("NUL in a string"))
}

/// The address the server listens on: `"127.0.0.1:PORT"`, `"[::1]:PORT"` or `"unix:/path"`. Free
/// `*address_out` with `gn_string_free`; written on success only. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_xds_server_address(
    server: *const gn_xds_server,
    address_out: *mut *mut c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or a live handle; NULL or valid for a write, as documented.
        let server = unsafe { borrow(server, "server") }?;
        let out = unsafe { Out::new(address_out, "address_out") }?;
        out.write(c_string(server.inner.address())?)
    })
}

/// The bootstrap JSON that points a gRPC xDS client at this server (for `GRPC_XDS_BOOTSTRAP_CONFIG`,
/// or a file named by `GRPC_XDS_BOOTSTRAP`). Free `*json_out` with `gn_string_free`; written on
/// success only. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_xds_server_bootstrap_json(
    server: *const gn_xds_server,
    json_out: *mut *mut c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or a live handle; NULL or valid for a write, as documented.
        let server = unsafe { borrow(server, "server") }?;
        let out = unsafe { Out::new(json_out, "json_out") }?;
        out.write(c_string(server.inner.bootstrap_json())?)
    })
}

/// Stops the server: it stops listening, ends every stream (clients keep their last endpoints and
/// retry), and closes its resolvers; waits up to 5 s for its connections to end. Idempotent; NULL
/// is a no-op; thread-safe. The handle stays valid until `gn_xds_server_free`.
#[no_mangle]
pub extern "C" fn gn_xds_server_close(server: *mut gn_xds_server) {
    on_handle(server, (), |s| s.inner.close())
}

/// Closes the server (as `gn_xds_server_close`) and releases the handle. NULL is a no-op. Must be the
/// last call on this handle.
#[no_mangle]
pub extern "C" fn gn_xds_server_free(server: *mut gn_xds_server) {
    free_handle(server)
}

/// The `xds:///` target that reaches `target` through `server` (NULL: the process-wide default
/// server, whose bare names use etcd unless `gn_xds_default_configure` chose another scheme; it is
/// not started): `"etcd:///echo"` gives `"xds:///echo"`, other targets
/// `"xds:///"` and the whole target, percent-encoded where needed. `#N` is kept but an xDS client
/// opens one connection per address. Fails for an invalid target. Free `*xds_target_out` with
/// `gn_string_free`; written on success only. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_xds_target(
    server: *const gn_xds_server,
    target: *const c_char,
    xds_target_out: *mut *mut c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or a live handle; a NUL-terminated string; NULL or valid for a write.
        let server = unsafe { server.as_ref() };
        let target = unsafe { borrow_str(target, "target") }?;
        let out = unsafe { Out::new(xds_target_out, "xds_target_out") }?;
        let xds = match server {
            Some(s) => s.inner.xds_target(target)?,
            None => names::xds_target_for(target, &xds::default_scheme())?,
        };
        out.write(c_string(&xds)?)
    })
}

/// The xDS channels a client opens to reach `target` with its `#N` connections per address (xDS
/// cannot list an address twice), as JSON: `[{"target":"xds:///echo","share":1}, ...]`. A target
/// without `#N` gives one channel; `etcd:///echo#3` three on `xds:///echo`; `pass:///a:1#2,b:2` two,
/// the first holding a and b, the second a. Open one channel per entry, each with subchannels of its
/// own (grpc-core: channel arg `grpc.use_local_subchannel_pool`), and pick among them in proportion
/// to `share`. `server` as for `gn_xds_target`. Fails for an invalid target. Free `*json_out` with
/// `gn_string_free`; written on success only. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_xds_channels_json(
    server: *const gn_xds_server,
    target: *const c_char,
    json_out: *mut *mut c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or a live handle; a NUL-terminated string; NULL or valid for a write.
        let server = unsafe { server.as_ref() };
        let target = unsafe { borrow_str(target, "target") }?;
        let out = unsafe { Out::new(json_out, "json_out") }?;
        let scheme = match server {
            Some(s) => s.inner.default_scheme().to_string(),
            None => xds::default_scheme(),
        };
        let channels = names::xds_channels_for(target, &scheme)?;
        let json: Vec<serde_json::Value> =
            channels.iter().map(|c| serde_json::json!({"target": c.target, "share": c.share})).collect();
        out.write(c_string(&serde_json::Value::Array(json).to_string())?)
    })
}

/// Sets the options of the process-wide default server. Must come before its first use
/// (`gn_xds_default_bootstrap_json`, `gn_xds_install_bootstrap`); afterwards it fails with
/// `GN_STATUS_BAD_STATE`. Copied. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_xds_default_configure(options: *const gn_xds_options, err_out: *mut *mut gn_error) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or a live options object, as documented.
        let options = unsafe { borrow(options, "options") }?;
        xds::configure_default(&options.inner)
    })
}

/// The bootstrap JSON of the process-wide default server, which starts on first use (and again in a
/// forked child, or after `gn_runtime_shutdown`). Free `*json_out` with `gn_string_free`; written on
/// success only. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_xds_default_bootstrap_json(json_out: *mut *mut c_char, err_out: *mut *mut gn_error) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or valid for a write, as documented.
        let out = unsafe { Out::new(json_out, "json_out") }?;
        let server = xds::default_server()?;
        out.write(c_string(server.bootstrap_json())?)
    })
}

/// Points this process's gRPC xDS clients at the default server (started if needed) by setting
/// `GRPC_XDS_BOOTSTRAP_CONFIG`; then `xds:///echo` works in any gRPC stack of the process.
///
/// Rule: call it before any gRPC thread reads the environment, that is before the first `xds:`
/// channel (grpc-go reads it at package init: there, use `gnaming xds-agent`). gRPC reads a
/// bootstrap once per process, so a later server (after fork or shutdown) is not seen by a process
/// that already made an `xds:` channel. Fails with `GN_STATUS_BAD_STATE` when `GRPC_XDS_BOOTSTRAP` is
/// set, or `GRPC_XDS_BOOTSTRAP_CONFIG` holds a bootstrap this library did not install (one its
/// default server installed in a parent, before fork or in the process that started this one, is
/// replaced). Not thread-safe with respect to other threads
/// reading or writing the environment.
#[no_mangle]
pub extern "C" fn gn_xds_install_bootstrap(err_out: *mut *mut gn_error) -> gn_status {
    with_status(err_out, || xds::install_bootstrap().map(drop))
}
