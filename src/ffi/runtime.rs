//! The background runtime's controls: size it before first use, shut it down before unloading.

use std::time::Duration;

use super::error::{gn_error, gn_status};
use super::panic::with_status;
use crate::runtime;

/// Sets how many worker threads the background runtime uses (default 2, at most 256). Call it before
/// the first resolver or registration starts the runtime; afterwards it fails with
/// `GN_STATUS_BAD_STATE`. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_runtime_configure(worker_threads: usize, err_out: *mut *mut gn_error) -> gn_status {
    with_status(err_out, || runtime::configure(worker_threads))
}

/// For hosts that unload the library: closes every live resolver (running their closures' `drop`, push
/// and pull alike) and registration, then stops the runtime, waiting at most `timeout_ms` for its
/// threads. Handles stay valid for `_free` only. A resolver or registration started while this runs
/// is either closed by it or fails with `GN_STATUS_CLOSED` (a resolver's closure dropped before its
/// start returns); one started after it returns gets a new runtime. A second concurrent call waits
/// for the first. Fails with `GN_STATUS_BAD_STATE` when called from a callback, a library thread or a
/// closure's `drop` that a shutdown runs. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_runtime_shutdown(timeout_ms: u32, err_out: *mut *mut gn_error) -> gn_status {
    with_status(err_out, || runtime::shutdown(Duration::from_millis(u64::from(timeout_ms))))
}
