//! The one panic boundary: every exported body runs in here, and a panic becomes
//! `GN_STATUS_INTERNAL` (or a harmless default) instead of unwinding into C.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::{gn_error, gn_status, set_error};
use crate::error::{Error, ErrorKind};

/// Runs a fallible body; failures (and panics) go to `err_out` and the returned status.
pub(crate) fn with_status(err_out: *mut *mut gn_error, body: impl FnOnce() -> Result<(), Error>) -> gn_status {
    let error = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return gn_status::Ok,
        Ok(Err(error)) => error,
        Err(payload) => panic_error(payload),
    };
    let status = gn_status::from(error.kind());
    // SAFETY: the caller passes NULL or a writable `gn_error *`, as every function's doc requires.
    unsafe { set_error(err_out, error) };
    status
}

/// Runs an infallible body; a panic yields `fallback`.
pub(crate) fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let error = panic_error(payload);
            tracing::error!("{error}");
            fallback
        }
    }
}

fn panic_error(payload: Box<dyn std::any::Any + Send>) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    Error::new(ErrorKind::Internal, format!("internal error in libgnaming (please report): {what}"))
}
