//! Status codes and error objects at the C boundary. There is no thread-local "last error": a failing
//! call hands its error object to the caller through an optional `gn_error **err_out`.

use std::ffi::{c_char, CString};

use super::panic::guard;
use crate::error::{Error, ErrorKind};

/// Result of every fallible call. `GN_STATUS_OK` is 0; every other value is a failure whose details,
/// when the call took an `err_out`, are in the error object it wrote.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gn_status {
    /// Success.
    Ok = 0,
    /// An argument was NULL, not UTF-8, or out of range.
    InvalidArgument = 1,
    /// A target string could not be parsed; the message names the bad part.
    InvalidTarget = 2,
    /// The target's scheme is not served by this library.
    UnsupportedScheme = 3,
    /// A wait ran out of time (for example `gn_resolver_next`).
    Timeout = 4,
    /// The object is closed, or the runtime was shut down.
    Closed = 5,
    /// The call does not fit the object's state (for example `gn_resolver_next` on a callback resolver,
    /// or `gn_runtime_configure` after the runtime started).
    BadState = 6,
    /// A server (etcd, DNS) could not be reached or did not answer in time.
    Unavailable = 7,
    /// A server refused the credentials.
    PermissionDenied = 8,
    /// Something named does not exist (for example an unknown cluster name).
    NotFound = 9,
    /// The background runtime could not be started.
    Runtime = 10,
    /// A bug inside libgnaming was caught at the boundary; the message says where. Please report it.
    Internal = 11,
}

impl From<ErrorKind> for gn_status {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidArgument => gn_status::InvalidArgument,
            ErrorKind::InvalidTarget => gn_status::InvalidTarget,
            ErrorKind::UnsupportedScheme => gn_status::UnsupportedScheme,
            ErrorKind::Timeout => gn_status::Timeout,
            ErrorKind::Closed => gn_status::Closed,
            ErrorKind::BadState => gn_status::BadState,
            ErrorKind::Unavailable => gn_status::Unavailable,
            ErrorKind::PermissionDenied => gn_status::PermissionDenied,
            ErrorKind::NotFound => gn_status::NotFound,
            ErrorKind::Runtime => gn_status::Runtime,
            ErrorKind::Internal => gn_status::Internal,
        }
    }
}

/// An error: a status and a message. Made by a failing call that took a `gn_error **err_out`;
/// owned by the caller, who frees it with `gn_error_free`. Immutable, so it may be read from any thread.
pub struct gn_error {
    status: gn_status,
    message: CString,
}

/// Writes `error` to `*err_out` when `err_out` is not NULL.
///
/// # Safety
/// `err_out` is NULL or valid for a write of a pointer.
pub(crate) unsafe fn set_error(err_out: *mut *mut gn_error, error: Error) {
    if err_out.is_null() {
        return;
    }
    let status = gn_status::from(error.kind());
    // Messages come from our own text and from servers; a NUL inside is replaced, never fatal.
    let message = CString::new(error.message().replace('\0', "\\0")).unwrap_or_default();
    err_out.write(Box::into_raw(Box::new(gn_error { status, message })));
}

/// The status of `error`; `GN_STATUS_INVALID_ARGUMENT` when `error` is NULL.
#[no_mangle]
pub extern "C" fn gn_error_status(error: *const gn_error) -> gn_status {
    // SAFETY: NULL or a live error made by this library.
    guard(gn_status::Internal, || unsafe { error.as_ref() }.map_or(gn_status::InvalidArgument, |e| e.status))
}

/// The message of `error`, UTF-8 and NUL-terminated; borrowed: valid until `gn_error_free(error)`.
/// Returns "" when `error` is NULL.
#[no_mangle]
pub extern "C" fn gn_error_message(error: *const gn_error) -> *const c_char {
    // SAFETY: NULL or a live error made by this library.
    guard(c"".as_ptr(), || unsafe { error.as_ref() }.map_or(c"".as_ptr(), |e| e.message.as_ptr()))
}

/// Frees an error. NULL is a no-op.
#[no_mangle]
pub extern "C" fn gn_error_free(error: *mut gn_error) {
    guard((), || {
        if !error.is_null() {
            // SAFETY: the caller owns `error`, made by this library, and gives it up here.
            drop(unsafe { Box::from_raw(error) });
        }
    })
}

/// A static, human-readable name for a status ("GN_STATUS_TIMEOUT"); never NULL, never freed.
#[no_mangle]
pub extern "C" fn gn_status_name(status: gn_status) -> *const c_char {
    guard(c"GN_STATUS_UNKNOWN".as_ptr(), || {
        let name: &'static std::ffi::CStr = match status {
            gn_status::Ok => c"GN_STATUS_OK",
            gn_status::InvalidArgument => c"GN_STATUS_INVALID_ARGUMENT",
            gn_status::InvalidTarget => c"GN_STATUS_INVALID_TARGET",
            gn_status::UnsupportedScheme => c"GN_STATUS_UNSUPPORTED_SCHEME",
            gn_status::Timeout => c"GN_STATUS_TIMEOUT",
            gn_status::Closed => c"GN_STATUS_CLOSED",
            gn_status::BadState => c"GN_STATUS_BAD_STATE",
            gn_status::Unavailable => c"GN_STATUS_UNAVAILABLE",
            gn_status::PermissionDenied => c"GN_STATUS_PERMISSION_DENIED",
            gn_status::NotFound => c"GN_STATUS_NOT_FOUND",
            gn_status::Runtime => c"GN_STATUS_RUNTIME",
            gn_status::Internal => c"GN_STATUS_INTERNAL",
        };
        name.as_ptr()
    })
}
