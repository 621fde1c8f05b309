//! The C ABI: every `extern "C"` item of the library, one file per C object family. Bodies run inside
//! [`panic::with_status`] or [`panic::guard`], so no panic unwinds into the host.

#![allow(non_camel_case_types)]

pub mod cluster;
pub mod dns;
pub mod error;
pub mod log;
pub mod panic;
pub mod registration;
pub mod resolver;
pub mod runtime;
pub mod stats;
pub mod update;

use std::ffi::{c_char, CStr};

use crate::error::Error;

/// ABI version: bumped whenever a change breaks binary compatibility. Bindings check it at load.
pub const GN_ABI_VERSION: u32 = 1;

/// Reads a required C string argument as UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::invalid_argument(format!("{what} is NULL")));
    }
    CStr::from_ptr(ptr).to_str().map_err(|_| Error::invalid_argument(format!("{what} is not valid UTF-8")))
}

/// Borrows a handle argument, or fails with a message naming it.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `T` made by this library.
pub(crate) unsafe fn handle_arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Error> {
    ptr.as_ref().ok_or_else(|| Error::invalid_argument(format!("{what} is NULL")))
}

/// Writes an output argument, which must not be NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, what: &str, value: T) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::invalid_argument(format!("{what} is NULL")));
    }
    out.write(value);
    Ok(())
}

/// The library's version, "MAJOR.MINOR.PATCH"; equals `GN_VERSION_STRING` of the header it was built
/// with. The string is static: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The library's ABI version; a binding built against `GN_ABI_VERSION` must refuse a library whose
/// value differs. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_abi_version() -> u32 {
    GN_ABI_VERSION
}
