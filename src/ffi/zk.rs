//! `gn_zk_options` and `gn_zk_register`: naming ZooKeeper ensembles, with their digest credentials
//! and node ACL, for `zk://NAME/path` targets and registrations.

use std::ffi::c_char;

use super::error::{gn_error, gn_status};
use super::panic::with_status;
use super::plumbing::{borrow, borrow_credentials, borrow_str, edit_options, free_handle, new_handle};
use crate::error::Error;
use crate::zk::ensemble::{self, EnsembleConfig, NodeAcl};

/// How to reach one ZooKeeper ensemble and what registrations create there: servers, digest
/// credentials, node ACL. Made by `gn_zk_options_new`, freed by `gn_zk_options_free`. Not
/// thread-safe: do not change one object from two threads at once. `gn_zk_register` copies it.
#[derive(Clone)]
pub struct gn_zk_options {
    inner: EnsembleConfig,
}

/// A new options object: servers "127.0.0.1:2181", no credentials, the open ACL. Never NULL (NULL
/// only if the process is out of memory).
#[no_mangle]
pub extern "C" fn gn_zk_options_new() -> *mut gn_zk_options {
    new_handle(|| gn_zk_options { inner: EnsembleConfig::default() })
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn gn_zk_options_free(options: *mut gn_zk_options) {
    free_handle(options)
}

/// The ensemble as a ZooKeeper connect string: "host:port[,host:port]" and an optional chroot
/// ("zk1:2181,zk2:2181/apps/prod"), below which every node path of a target or a registration lies.
/// On error (`GN_STATUS_INVALID_ARGUMENT`) the options are unchanged.
#[no_mangle]
pub extern "C" fn gn_zk_options_set_servers(
    options: *mut gn_zk_options,
    connect_string: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        let connect = unsafe { borrow_str(connect_string, "connect_string") }?;
        o.inner.servers = EnsembleConfig::parse_servers(connect)?;
        Ok(())
    })
}

/// Authenticates every session as `user` with `password` (ZooKeeper's "digest" scheme), before its
/// first request, so nodes whose ACL names `digest:user:...` can be read and written. ZooKeeper
/// never refuses digest credentials themselves: wrong ones show as nodes that cannot be read
/// ("not authorized" in the resolver's error). The password is kept in memory only and never appears
/// in logs or errors. A user may not contain ':'. On error the options are unchanged.
#[no_mangle]
pub extern "C" fn gn_zk_options_set_digest(
    options: *mut gn_zk_options,
    user: *const c_char,
    password: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or NUL-terminated strings, as documented.
        let (user, password) = unsafe { borrow_credentials(user, password) }?;
        if user.contains(':') {
            return Err(Error::invalid_argument("user must be non-empty and without ':'"));
        }
        o.inner.digest = Some((user, password));
        Ok(())
    })
}

/// The ACL of the nodes registrations create on this ensemble (the instance node, and the service
/// node and its parents when missing), by name:
/// - "open" (the default): anyone may do anything, as Curator and ZooKeeper's OPEN_ACL_UNSAFE.
/// - "creator-all": only sessions with these digest credentials may read, change or delete them.
/// - "creator-all-anyone-read": these credentials may do anything, anyone may read (clients need no
///   credentials, only servers do).
///
/// The creator ACLs need digest credentials: `gn_zk_register` refuses them without
/// (`GN_STATUS_INVALID_ARGUMENT`). Fails with `GN_STATUS_INVALID_ARGUMENT` for another name; the
/// options are then unchanged.
#[no_mangle]
pub extern "C" fn gn_zk_options_set_node_acl(
    options: *mut gn_zk_options,
    acl: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        let name = unsafe { borrow_str(acl, "acl") }?;
        o.inner.node_acl = NodeAcl::from_name(name).map_err(Error::invalid_argument)?;
        Ok(())
    })
}

/// Configures the ensemble called `name` for `zk://NAME/path` targets and registrations. The name
/// "" configures the default ensemble (`zk:///path`; otherwise from `GNAMING_ZK_SERVERS`, else
/// 127.0.0.1:2181), whose credentials and ACL also serve `zk://host:port/path`. Registering a name
/// again replaces its configuration for resolvers and registrations started afterwards; running
/// ones keep theirs. `options` is copied. Names hold only letters, digits, '-', '_' and '.'
/// (a name is the authority of a target without a port). Thread-safe.
#[no_mangle]
pub extern "C" fn gn_zk_register(
    name: *const c_char,
    options: *const gn_zk_options,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: the arguments follow this function's documented contract.
        let name = unsafe { borrow_str(name, "name") }?;
        let options = unsafe { borrow(options, "options") }?;
        ensemble::register(name, options.inner.clone())
    })
}
