//! `gn_registration` and `gn_registration_options`: registering a server address in etcd under a
//! lease kept alive in the background, waiting for it, reading its state, and closing or draining it.

use std::ffi::c_char;
use std::time::Duration;

use super::error::{gn_error, gn_status};
use super::panic::with_status;
use super::plumbing::{borrow, borrow_opt_str, borrow_str, edit_options, free_handle, new_handle, on_handle, Out};
use crate::error::Error;
use crate::etcd::registration::{RegistrationOptions, RegistrationState, MIN_TTL};
use crate::etcd::value::ValueFormat;

/// Where a registration stands.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gn_registration_state {
    /// Not in etcd yet: the first attempt is under way, or failed and is being retried.
    Registering = 0,
    /// The key is in etcd under a live lease.
    Registered = 1,
    /// The key was lost (lease expired, etcd unreachable, key deleted by someone) and is being put
    /// back, with a fresh lease if needed.
    Retrying = 2,
    /// Closed.
    Closed = 3,
    /// Waiting out the warm-up (`gn_registration_options_set_warmup_ms`): nothing is in etcd yet.
    WarmingUp = 4,
}

impl From<RegistrationState> for gn_registration_state {
    fn from(state: RegistrationState) -> Self {
        match state {
            RegistrationState::Registering => gn_registration_state::Registering,
            RegistrationState::Registered => gn_registration_state::Registered,
            RegistrationState::Retrying => gn_registration_state::Retrying,
            RegistrationState::Closed => gn_registration_state::Closed,
            RegistrationState::WarmingUp => gn_registration_state::WarmingUp,
        }
    }
}

/// Options for `gn_registration_start`. Made by `gn_registration_options_new`, freed by
/// `gn_registration_options_free`. Not thread-safe: do not change one object from two threads at
/// once. `gn_registration_start` copies it.
#[derive(Clone)]
pub struct gn_registration_options {
    inner: RegistrationOptions,
}

/// A new options object: default cluster, TTL 10000 ms, no metadata, etcd's JSON value format.
/// Never NULL (NULL only if the process is out of memory).
#[no_mangle]
pub extern "C" fn gn_registration_options_new() -> *mut gn_registration_options {
    new_handle(|| gn_registration_options { inner: RegistrationOptions::default() })
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn gn_registration_options_free(options: *mut gn_registration_options) {
    free_handle(options)
}

/// The etcd cluster to register in: "" for the default cluster, a name given to
/// `gn_cluster_register`, or a single member's "host:port". Unknown names fail at
/// `gn_registration_start` with `GN_STATUS_NOT_FOUND`. On error the options are unchanged.
#[no_mangle]
pub extern "C" fn gn_registration_options_set_cluster(
    options: *mut gn_registration_options,
    cluster: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        o.inner.cluster = unsafe { borrow_str(cluster, "cluster") }?.to_string();
        Ok(())
    })
}

/// The lease's time to live in milliseconds (default 10000, minimum 1000; etcd counts whole
/// seconds, so it is rounded up). The lease is renewed every TTL/3; when the library's process
/// dies, the address disappears from etcd within about the TTL. On error the options are unchanged.
#[no_mangle]
pub extern "C" fn gn_registration_options_set_ttl_ms(
    options: *mut gn_registration_options,
    ttl_ms: u32,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        let ttl = Duration::from_millis(ttl_ms.into());
        if ttl < MIN_TTL {
            return Err(Error::invalid_argument(format!("TTL {ttl_ms} ms is below the minimum of 1000 ms")));
        }
        o.inner.ttl = ttl;
        Ok(())
    })
}

/// Metadata written as the value's `Metadata` (any JSON; a numeric `weight` field becomes the
/// address's weight at resolvers). Must be valid JSON; NULL removes it. On error the options are
/// unchanged.
#[no_mangle]
pub extern "C" fn gn_registration_options_set_metadata_json(
    options: *mut gn_registration_options,
    json: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        let text = unsafe { borrow_opt_str(json, "json") }?;
        o.inner.metadata = text
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| Error::invalid_argument(format!("metadata is not valid JSON: {e}")))?;
        Ok(())
    })
}

/// With `raw` true, writes a bare "host:port" value (as go-zero does) instead of etcd's naming JSON
/// `{"Op":0,"Addr":"host:port","Metadata":...}`; metadata is then not written.
#[no_mangle]
pub extern "C" fn gn_registration_options_set_raw_value(
    options: *mut gn_registration_options,
    raw: bool,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        o.inner.raw_value = raw;
        Ok(())
    })
}

/// The document and key layout the registration writes, by name, so that a Go framework's own
/// discovery finds the server:
/// - "etcd" (the default): key "<service>/<address>", etcd's naming JSON (or the raw value).
/// - "kratos": key "<prefix>/<id>", a Kratos `registry.ServiceInstance`
///   `{"id","name","version","metadata","endpoints":["grpc://<address>?isSecure=false"]}`.
/// - "go-micro": key "<prefix>/<name>-<id>", a go-micro `registry.Service` with one node
///   `{"name","version","metadata":null,"endpoints":[],"nodes":[{"id","address","metadata"}]}`.
///
/// For "kratos" and "go-micro" the `service` of `gn_registration_start` is a name placed under the
/// framework's default prefix ("echo": "/microservices/echo" for Kratos, "/micro/registry/echo" for
/// go-micro) or, when it starts with '/', the prefix itself (a Kratos namespace of one's own); the
/// name the framework sees is its last segment, `<id>` a random UUID per registration. The metadata
/// must then be a JSON object of strings, numbers or booleans (written as strings, since both
/// frameworks read `map[string]string`; else `gn_registration_start` fails with
/// `GN_STATUS_INVALID_ARGUMENT`); its "version" is also the document's version. Such registrations
/// resolve with the target "etcd:///" followed by the prefix, e.g. "etcd:////microservices/echo".
/// They are etcd's only: with a zk: service, or with the raw value option, `gn_registration_start`
/// fails with `GN_STATUS_INVALID_ARGUMENT`.
///
/// Fails with `GN_STATUS_INVALID_ARGUMENT` for NULL or another name; the options are then unchanged.
#[no_mangle]
pub extern "C" fn gn_registration_options_set_format(
    options: *mut gn_registration_options,
    format: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        let name = unsafe { borrow_str(format, "format") }?;
        o.inner.format = ValueFormat::from_name(name).map_err(Error::invalid_argument)?;
        Ok(())
    })
}

/// Writes nothing to etcd (not even the lease) until `warmup_ms` milliseconds after
/// `gn_registration_start`, so that clients reach the server only once it is ready to serve fast
/// (default 0: at once). Meanwhile the state is `GN_REGISTRATION_STATE_WARMING_UP` and
/// `gn_registration_wait` keeps waiting; a close or drain during the warm-up writes nothing and
/// returns at once. On error the options are unchanged.
#[no_mangle]
pub extern "C" fn gn_registration_options_set_warmup_ms(
    options: *mut gn_registration_options,
    warmup_ms: u32,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        o.inner.warmup = Duration::from_millis(warmup_ms.into());
        Ok(())
    })
}

/// A registration of one address. Made by `gn_registration_start`; closed by
/// `gn_registration_close`; released by `gn_registration_free`. `gn_registration_wait`,
/// `gn_registration_get_state` and `gn_registration_close` may be called from any thread, also at
/// the same time; `gn_registration_free` must be the last call on it.
pub struct gn_registration {
    inner: crate::registration::Registration,
}

/// Registers `address` ("host:port", "[v6]:port") under `service` in etcd, as key
/// "<service>/<address>", and returns at once: a background task grants a lease, puts the key,
/// renews the lease every TTL/3, and when the lease or the key is lost (etcd down longer than the
/// TTL, key deleted by someone) grants a new lease and puts the key again, forever, with jittered
/// backoff. Registrations with the same cluster and TTL share one lease and keep-alive stream.
///
/// A `service` written as a zk: target, "zk://host:port[,host:port]/path/to/service" or
/// "zk:///path/to/service" (servers from `GNAMING_ZK_SERVERS`, chroot included, else
/// "127.0.0.1:2181"), registers in ZooKeeper instead: an ephemeral node
/// "/path/to/service/<random UUID>" holding Curator ServiceDiscovery's instance JSON
/// (`{"name","id","address","port","sslPort":null,"payload":<metadata>,"registrationTimeUTC",
/// "serviceType":"DYNAMIC"}`; a bare "host:port" with the raw value option), which the same zk:
/// target resolves. Missing parent nodes are created (persistent). The TTL is the session timeout
/// asked of the ensemble; the cluster option must stay "" (else `GN_STATUS_INVALID_ARGUMENT`). The
/// state goes `GN_REGISTRATION_STATE_RETRYING` while the connection is lost and back to
/// `GN_REGISTRATION_STATE_REGISTERED` once the node is checked or, after the session expired,
/// created on a new session (a node of an earlier session still at the path is deleted first); a
/// node deleted by someone is created again. Closing deletes the node and closes the session.
///
/// - `options`: NULL for defaults; copied.
/// - `registration_out`: receives the new registration on success; untouched on error.
/// - `err_out`: NULL, or receives an error on failure (free it with `gn_error_free`).
///
/// Fails with `GN_STATUS_INVALID_ARGUMENT` for a bad service (a zk: one with a query or "#N" too) or
/// address, `GN_STATUS_NOT_FOUND` for an unknown cluster name and `GN_STATUS_CLOSED` while
/// `gn_runtime_shutdown` runs; never because etcd or ZooKeeper is unreachable (that is retried).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn gn_registration_start(
    service: *const c_char,
    address: *const c_char,
    options: *const gn_registration_options,
    registration_out: *mut *mut gn_registration,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: the arguments follow this function's documented contract.
        let service = unsafe { borrow_str(service, "service") }?;
        let address = unsafe { borrow_str(address, "address") }?;
        let options = unsafe { options.as_ref() }.map(|o| o.inner.clone()).unwrap_or_default();
        let out = unsafe { Out::new(registration_out, "registration_out") }?;
        out.put(gn_registration { inner: crate::registration::Registration::start(service, address, &options)? })
    })
}

/// Waits until the registration is `GN_REGISTRATION_STATE_REGISTERED` (`GN_STATUS_OK`), at most
/// `timeout_ms` milliseconds (negative: no limit; then `GN_STATUS_TIMEOUT`). Returns
/// `GN_STATUS_CLOSED` if it is or gets closed. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_registration_wait(
    registration: *mut gn_registration,
    timeout_ms: i64,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or a live registration.
        let registration = unsafe { borrow(registration, "registration") }?;
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        registration.inner.wait(timeout)
    })
}

/// The registration's state now; `GN_REGISTRATION_STATE_CLOSED` for NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_registration_get_state(registration: *const gn_registration) -> gn_registration_state {
    on_handle(registration, gn_registration_state::Closed, |r| r.inner.state().into())
}

/// Stops renewing, deletes the key (and revokes the lease when no other registration shares it) so
/// that resolvers see the address go at once, and waits up to `timeout_ms` for etcd to confirm:
/// `GN_STATUS_OK` when it did, `GN_STATUS_TIMEOUT` (removal goes on in the background; the key goes
/// anyway when its lease expires) or `GN_STATUS_UNAVAILABLE` otherwise. Called from a resolver
/// callback or a library thread it does not wait and returns `GN_STATUS_OK`. Afterwards the state
/// is `GN_REGISTRATION_STATE_CLOSED`. Idempotent (a later call returns `GN_STATUS_OK`); NULL is a
/// no-op returning `GN_STATUS_OK`; thread-safe; concurrent calls wait for the first. The handle stays
/// valid until `gn_registration_free`.
#[no_mangle]
pub extern "C" fn gn_registration_close(
    registration: *mut gn_registration,
    timeout_ms: u32,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or a live registration.
        match unsafe { registration.as_ref() } {
            Some(registration) => registration.inner.close(Duration::from_millis(timeout_ms.into())),
            None => Ok(()),
        }
    })
}

/// Closes the registration if needed (as `gn_registration_close` with a 1000 ms timeout, errors
/// logged) and releases the handle. NULL is a no-op. Must be the last call on this handle.
#[no_mangle]
pub extern "C" fn gn_registration_free(registration: *mut gn_registration) {
    free_handle(registration)
}

/// Takes the address out of discovery so the server can stop without failing an RPC: deletes the key
/// (and revokes the lease when no other registration shares it), then waits `drain_ms` milliseconds,
/// counted from etcd's confirmation, for clients to see the deletion and stop picking the address,
/// while the server keeps serving (RPCs in flight finish, new ones go elsewhere); then returns and the
/// server may stop. Afterwards the state is `GN_REGISTRATION_STATE_CLOSED`.
///
/// - etcd unreachable: the deletion is retried with backoff (100 ms doubling to 1 s) for up to
///   `timeout_ms`; if etcd has not confirmed by then, the call still waits `drain_ms` and returns
///   `GN_STATUS_TIMEOUT`. The deletion goes on in the background for one TTL more, and the lease, no
///   longer renewed (unless other registrations of this process share it), takes the key with it
///   within the TTL anyway. An error etcd answers with (say `GN_STATUS_PERMISSION_DENIED`) is not
///   retried; it too is returned after `drain_ms`.
/// - During the warm-up nothing is in etcd: it closes and returns `GN_STATUS_OK` at once.
/// - A second drain (also one racing the first) returns `GN_STATUS_OK` when the first one's period
///   ends; a drain after `gn_registration_close` returns `GN_STATUS_OK` at once; a close racing a
///   drain waits for the deletion (as concurrent closes do), not for the drain period.
/// - It blocks, so inside a resolver callback or on a library thread it fails with
///   `GN_STATUS_BAD_STATE` and does nothing: call `gn_registration_close` there.
///
/// NULL is a no-op returning `GN_STATUS_OK`; thread-safe. The handle stays valid until
/// `gn_registration_free`. Total time at most `timeout_ms` + `drain_ms`.
#[no_mangle]
pub extern "C" fn gn_registration_drain(
    registration: *mut gn_registration,
    drain_ms: u32,
    timeout_ms: u32,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or a live registration.
        match unsafe { registration.as_ref() } {
            Some(registration) => registration
                .inner
                .drain(Duration::from_millis(drain_ms.into()), Duration::from_millis(timeout_ms.into())),
            None => Ok(()),
        }
    })
}
