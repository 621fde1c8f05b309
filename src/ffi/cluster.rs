//! `gn_cluster_options` and `gn_cluster_register`: naming etcd clusters for `etcd://NAME/svc` targets
//! and registrations.

use std::ffi::c_char;
use std::time::Duration;

use super::error::{gn_error, gn_status};
use super::panic::with_status;
use super::plumbing::{borrow, borrow_credentials, borrow_str, edit_options, free_handle, new_handle};
use crate::error::Error;
use crate::etcd::cluster::{self, ClusterConfig, TlsConfig};

/// How to reach one etcd cluster: endpoints, timeouts, TLS and credentials. Made by
/// `gn_cluster_options_new`, freed by `gn_cluster_options_free`. Not thread-safe: do not change one
/// object from two threads at once. `gn_cluster_register` copies it.
#[derive(Clone)]
pub struct gn_cluster_options {
    inner: ClusterConfig,
}

/// A new options object: endpoint 127.0.0.1:2379, dial timeout 2000 ms, request timeout 3000 ms, no
/// TLS, no credentials. Never NULL (NULL only if the process is out of memory).
#[no_mangle]
pub extern "C" fn gn_cluster_options_new() -> *mut gn_cluster_options {
    new_handle(|| gn_cluster_options { inner: ClusterConfig::default() })
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn gn_cluster_options_free(options: *mut gn_cluster_options) {
    free_handle(options)
}

/// The cluster's members as "host:port,host:port" (each may start with http:// or https://).
/// On error the options are unchanged.
#[no_mangle]
pub extern "C" fn gn_cluster_options_set_endpoints(
    options: *mut gn_cluster_options,
    endpoints_csv: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        let csv = unsafe { borrow_str(endpoints_csv, "endpoints_csv") }?;
        o.inner.endpoints = ClusterConfig::parse_endpoints(csv)?;
        Ok(())
    })
}

fn millis(ms: u32, what: &str) -> Result<Duration, Error> {
    if ms == 0 {
        return Err(Error::invalid_argument(format!("{what} must be at least 1 ms")));
    }
    Ok(Duration::from_millis(ms.into()))
}

/// How long connecting to one member may take before the next member is tried (default 2000).
#[no_mangle]
pub extern "C" fn gn_cluster_options_set_dial_timeout_ms(
    options: *mut gn_cluster_options,
    ms: u32,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        o.inner.dial_timeout = millis(ms, "dial timeout")?;
        Ok(())
    })
}

/// How long one request to one member may take before the next member is tried (default 3000).
#[no_mangle]
pub extern "C" fn gn_cluster_options_set_request_timeout_ms(
    options: *mut gn_cluster_options,
    ms: u32,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        o.inner.request_timeout = millis(ms, "request timeout")?;
        Ok(())
    })
}

fn read_pem(path: *const c_char, what: &str) -> Result<Vec<u8>, Error> {
    // SAFETY: NULL or a NUL-terminated string, as documented.
    let path = unsafe { borrow_str(path, what) }?;
    let pem = std::fs::read(path).map_err(|e| Error::invalid_argument(format!("{what} '{path}': {e}")))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(Error::invalid_argument(format!("{what} '{path}' is not a PEM file")));
    }
    Ok(pem)
}

/// Connects with TLS: `ca_pem_path` is the CA that signed the members' certificates;
/// `cert_pem_path` and `key_pem_path` (both NULL, or both set) are the client certificate and key for
/// members that require one. The files are read now; their contents never appear in logs or errors.
/// On error the options are unchanged.
#[no_mangle]
pub extern "C" fn gn_cluster_options_set_tls(
    options: *mut gn_cluster_options,
    ca_pem_path: *const c_char,
    cert_pem_path: *const c_char,
    key_pem_path: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        let ca_pem = read_pem(ca_pem_path, "ca_pem_path")?;
        let identity = match (cert_pem_path.is_null(), key_pem_path.is_null()) {
            (true, true) => None,
            (false, false) => {
                Some((read_pem(cert_pem_path, "cert_pem_path")?, read_pem(key_pem_path, "key_pem_path")?))
            }
            _ => {
                return Err(Error::invalid_argument("cert_pem_path and key_pem_path go together: set both or neither"))
            }
        };
        o.inner.tls = Some(TlsConfig { ca_pem, identity });
        Ok(())
    })
}

/// Authenticates as `user` with `password` (etcd's user/password auth). The password is kept in
/// memory only and never appears in logs, errors or stats. On error the options are unchanged.
#[no_mangle]
pub extern "C" fn gn_cluster_options_set_auth(
    options: *mut gn_cluster_options,
    user: *const c_char,
    password: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or NUL-terminated strings, as documented.
        o.inner.auth = Some(unsafe { borrow_credentials(user, password) }?);
        Ok(())
    })
}

/// Configures the cluster called `name` for `etcd://NAME/service` targets and registrations with
/// that cluster option. The name "" configures the default cluster (`etcd:///service`; otherwise
/// from `GNAMING_ETCD_ENDPOINTS`, else 127.0.0.1:2379), whose timeouts and credentials also serve
/// `etcd://host:port/service` targets. Registering a name again replaces its configuration for
/// resolvers and registrations started afterwards; running ones keep theirs. `options` is copied.
/// Names must not contain '/' or '@'. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_cluster_register(
    name: *const c_char,
    options: *const gn_cluster_options,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: the arguments follow this function's documented contract.
        let name = unsafe { borrow_str(name, "name") }?;
        let options = unsafe { borrow(options, "options") }?;
        cluster::register(name, options.inner.clone())
    })
}
