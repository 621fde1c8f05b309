//! The pointer plumbing every exported function shares, written once (as rustls-ffi's `ffi.rs`):
//! making and freeing handles, borrowing handles and strings from C, editing options all or nothing,
//! reading C enums that arrive as integers, and writing outputs only on success.

use std::ffi::{c_char, c_int, CStr};

use super::error::{gn_error, gn_status};
use super::panic::{guard, with_status};
use crate::error::Error;

/// The body of every `_new`: `make()` moved to the heap for C; NULL if a panic (out of memory) is
/// caught.
pub(crate) fn new_handle<T>(make: impl FnOnce() -> T) -> *mut T {
    guard(std::ptr::null_mut(), || Box::into_raw(Box::new(make())))
}

/// The body of every `_free`: NULL is a no-op; otherwise the handle is dropped, and its `Drop` closes
/// whatever it runs. The caller owns `handle` (made by this library as a `T`) and gives it up here.
pub(crate) fn free_handle<T>(handle: *mut T) {
    guard((), || {
        if !handle.is_null() {
            // SAFETY: per the exported function's contract, a live handle that no other thread uses.
            drop(unsafe { Box::from_raw(handle) });
        }
    })
}

/// The body of every infallible call on a handle (getters, close): `body(handle)`, or `fallback` when
/// `handle` is NULL (or a panic is caught). `handle` is NULL or a live `H` made by this library.
pub(crate) fn on_handle<H, T: Copy>(handle: *const H, fallback: T, body: impl FnOnce(&H) -> T) -> T {
    // SAFETY: per the exported function's contract, NULL or a live handle.
    guard(fallback, || unsafe { handle.as_ref() }.map_or(fallback, body))
}

/// Borrows a required handle argument; NULL fails naming the parameter.
///
/// # Safety
/// `ptr` is NULL or a live `T` made by this library that stays valid for `'a`.
pub(crate) unsafe fn borrow<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Error> {
    ptr.as_ref().ok_or_else(|| null(what))
}

/// Borrows a required C string argument as UTF-8; NULL or invalid UTF-8 fails naming the parameter.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn borrow_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Error> {
    match borrow_opt_str(ptr, what)? {
        Some(text) => Ok(text),
        None => Err(null(what)),
    }
}

/// Borrows an optional C string argument: NULL is `None`, invalid UTF-8 fails naming the parameter.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn borrow_opt_str<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() {
        return Ok(None);
    }
    let text =
        CStr::from_ptr(ptr).to_str().map_err(|_| Error::invalid_argument(format!("{what} is not valid UTF-8")))?;
    Ok(Some(text))
}

fn null(what: &str) -> Error {
    Error::invalid_argument(format!("{what} is NULL"))
}

/// The body of every options setter: `change` edits a copy, kept only if it succeeds, so that on error
/// the options are unchanged. `options` is NULL (`GN_STATUS_INVALID_ARGUMENT`) or a live object that
/// no other thread uses now, as every setter's doc says.
pub(crate) fn edit_options<T: Clone>(
    options: *mut T,
    err_out: *mut *mut gn_error,
    change: impl FnOnce(&mut T) -> Result<(), Error>,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: see above; the exclusive borrow ends with this call.
        let options = unsafe { options.as_mut() }.ok_or_else(|| null("options"))?;
        let mut copy = options.clone();
        change(&mut copy)?;
        *options = copy;
        Ok(())
    })
}

/// An output parameter, checked before the call does any work and written only when it succeeds.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Checks `ptr`; NULL fails naming the parameter.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for a write of `T` until the exported call returns.
    pub(crate) unsafe fn new(ptr: *mut T, what: &str) -> Result<Self, Error> {
        if ptr.is_null() {
            return Err(null(what));
        }
        Ok(Out(ptr))
    }

    /// Writes the result; the last step of a successful call.
    pub(crate) fn write(self, value: T) -> Result<(), Error> {
        // SAFETY: checked non-NULL and writable by `new`'s contract.
        unsafe { self.0.write(value) };
        Ok(())
    }
}

impl<T> Out<*mut T> {
    /// Hands a new handle to C: `value` on the heap, freed later by its `_free` ([`free_handle`]).
    pub(crate) fn put(self, value: T) -> Result<(), Error> {
        self.write(Box::into_raw(Box::new(value)))
    }
}

/// One row of a C enum's table: the value C sees, its name in the header, and what it means in the
/// core. Each C enum that crosses the boundary has one such table, used in both directions.
pub(crate) struct EnumRow<C: 'static, R: 'static> {
    pub(crate) c: C,
    pub(crate) name: &'static CStr,
    pub(crate) core: R,
}

impl<C, R> EnumRow<C, R> {
    pub(crate) const fn new(c: C, name: &'static CStr, core: R) -> Self {
        EnumRow { c, name, core }
    }
}

/// The row of a value C passed as an integer; `None` for a value the enum does not have. C enums
/// arrive as integers because a Rust enum taken by value from C is undefined behaviour for any value
/// it does not declare.
pub(crate) fn enum_row<C: Copy + Into<c_int>, R>(
    table: &'static [EnumRow<C, R>],
    value: c_int,
) -> Option<&'static EnumRow<C, R>> {
    table.iter().find(|row| row.c.into() == value)
}

/// The row that stands for `core`.
pub(crate) fn enum_row_of<C, R: PartialEq>(table: &'static [EnumRow<C, R>], core: R) -> Option<&'static EnumRow<C, R>> {
    table.iter().find(|row| row.core == core)
}

/// A user and password pair from C (both NUL-terminated, the user non-empty), as the cluster and
/// ZooKeeper options take them.
///
/// # Safety
/// `user` and `password` are NULL or NUL-terminated strings.
pub(crate) unsafe fn borrow_credentials(
    user: *const c_char,
    password: *const c_char,
) -> Result<(String, String), Error> {
    // SAFETY: as this function's contract says.
    let user = unsafe { borrow_str(user, "user") }?;
    let password = unsafe { borrow_str(password, "password") }?;
    if user.is_empty() {
        return Err(Error::invalid_argument("user is empty"));
    }
    Ok((user.to_string(), password.to_string()))
}
