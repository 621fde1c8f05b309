//! Status codes and error objects at the C boundary. There is no thread-local "last error": a failing
//! call hands its error object to the caller through an optional `gn_error **err_out`.

use std::ffi::{c_char, c_int, CString};

use super::panic::guard;
use super::plumbing::{enum_row, enum_row_of, free_handle, on_handle, EnumRow, Out};
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

/// Every status: its C name and the error kind it reports. The one table for both directions and
/// for `gn_status_name`.
static STATUSES: [EnumRow<gn_status, Option<ErrorKind>>; 12] = [
    EnumRow::new(gn_status::Ok, c"GN_STATUS_OK", None),
    EnumRow::new(gn_status::InvalidArgument, c"GN_STATUS_INVALID_ARGUMENT", Some(ErrorKind::InvalidArgument)),
    EnumRow::new(gn_status::InvalidTarget, c"GN_STATUS_INVALID_TARGET", Some(ErrorKind::InvalidTarget)),
    EnumRow::new(gn_status::UnsupportedScheme, c"GN_STATUS_UNSUPPORTED_SCHEME", Some(ErrorKind::UnsupportedScheme)),
    EnumRow::new(gn_status::Timeout, c"GN_STATUS_TIMEOUT", Some(ErrorKind::Timeout)),
    EnumRow::new(gn_status::Closed, c"GN_STATUS_CLOSED", Some(ErrorKind::Closed)),
    EnumRow::new(gn_status::BadState, c"GN_STATUS_BAD_STATE", Some(ErrorKind::BadState)),
    EnumRow::new(gn_status::Unavailable, c"GN_STATUS_UNAVAILABLE", Some(ErrorKind::Unavailable)),
    EnumRow::new(gn_status::PermissionDenied, c"GN_STATUS_PERMISSION_DENIED", Some(ErrorKind::PermissionDenied)),
    EnumRow::new(gn_status::NotFound, c"GN_STATUS_NOT_FOUND", Some(ErrorKind::NotFound)),
    EnumRow::new(gn_status::Runtime, c"GN_STATUS_RUNTIME", Some(ErrorKind::Runtime)),
    EnumRow::new(gn_status::Internal, c"GN_STATUS_INTERNAL", Some(ErrorKind::Internal)),
];

impl From<gn_status> for c_int {
    fn from(status: gn_status) -> c_int {
        status as c_int
    }
}

impl From<ErrorKind> for gn_status {
    fn from(kind: ErrorKind) -> Self {
        enum_row_of(&STATUSES, Some(kind)).map_or(gn_status::Internal, |row| row.c)
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
    // NULL: the caller wants no error object.
    let Ok(out) = Out::new(err_out, "err_out") else { return };
    let status = gn_status::from(error.kind());
    // Messages come from our own text and from servers; a NUL inside is replaced, never fatal.
    let message = CString::new(error.message().replace('\0', "\\0")).unwrap_or_default();
    let _ = out.put(gn_error { status, message });
}

/// The status of `error`; `GN_STATUS_INVALID_ARGUMENT` when `error` is NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_error_status(error: *const gn_error) -> gn_status {
    on_handle(error, gn_status::InvalidArgument, |e| e.status)
}

/// The message of `error`, UTF-8 and NUL-terminated; borrowed: valid until `gn_error_free(error)`.
/// Returns "" when `error` is NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_error_message(error: *const gn_error) -> *const c_char {
    on_handle(error, c"".as_ptr(), |e| e.message.as_ptr())
}

/// Frees an error. NULL is a no-op.
#[no_mangle]
pub extern "C" fn gn_error_free(error: *mut gn_error) {
    free_handle(error)
}

/// A static, human-readable name for `status`, a `gn_status` value ("GN_STATUS_TIMEOUT"); never NULL,
/// never freed. Any integer is accepted: one that is not a `gn_status` gets "GN_STATUS_UNKNOWN".
/// Thread-safe.
#[no_mangle]
pub extern "C" fn gn_status_name(status: c_int) -> *const c_char {
    let unknown = c"GN_STATUS_UNKNOWN";
    guard(unknown.as_ptr(), || enum_row(&STATUSES, status).map_or(unknown, |row| row.name).as_ptr())
}
