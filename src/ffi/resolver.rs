//! `gn_resolver` and `gn_resolver_options`: starting a resolver with a callback closure or for pulling,
//! `resolve_now`, `next`, `close` and `free`.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::error::{gn_error, gn_status};
use super::panic::{guard, with_status};
use super::update::gn_update;
use super::{handle_arg, str_arg, write_out};
use crate::error::Error;
use crate::resolver::{Resolver, ResolverOptions, UpdateHandler};
use crate::update::Update;

/// Options for `gn_resolver_start`, set one by one (the set grows with new versions; defaults suit
/// most hosts). Made by `gn_resolver_options_new`, freed by `gn_resolver_options_free`. Not
/// thread-safe: do not change one options object from two threads at once. `gn_resolver_start`
/// copies it, so it may be freed or changed right after.
pub struct gn_resolver_options {
    pub(crate) inner: ResolverOptions,
}

/// A new options object with every default. Never NULL (NULL only if the process is out of memory).
#[no_mangle]
pub extern "C" fn gn_resolver_options_new() -> *mut gn_resolver_options {
    guard(std::ptr::null_mut(), || Box::into_raw(Box::new(gn_resolver_options { inner: ResolverOptions::default() })))
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn gn_resolver_options_free(options: *mut gn_resolver_options) {
    guard((), || {
        if !options.is_null() {
            // SAFETY: the caller owns `options`, made by this library, and gives it up here.
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

/// The language of the gRPC stack that receives the updates ("c", "c++", "go", "python"...; default
/// "c"). Service configs that list client languages are chosen by it. On error the options are
/// unchanged.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_client_language(
    options: *mut gn_resolver_options,
    language: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: the arguments follow this function's documented contract.
        let options = unsafe { options.as_mut() }.ok_or_else(|| Error::invalid_argument("options is NULL"))?;
        let language = unsafe { str_arg(language, "language") }?;
        if language.is_empty() {
            return Err(Error::invalid_argument("language is empty"));
        }
        options.inner.client_language = language.to_string();
        Ok(())
    })
}

/// A closure that receives updates: `call(user_data, update)` for each update, then `drop(user_data)`
/// exactly once.
///
/// Contract:
/// - Calls for one resolver are serialised (never two at once) and in order; they run on a library
///   thread, never inside a library call the host made. When updates come faster than `call`
///   returns, intermediate lists are skipped: every call carries the latest complete list.
/// - `update` is borrowed for the call only; copy what you keep.
/// - `drop` runs exactly once, after the last call: when `gn_resolver_close` runs, or before
///   `gn_resolver_start` returns an error. `drop` may be NULL.
/// - `call` may call `gn_resolver_close` or `gn_resolver_free` on its own resolver: that call is then
///   the last one, and `drop` follows right after it returns.
/// - `call` NULL starts a resolver for pulling with `gn_resolver_next`.
#[repr(C)]
pub struct gn_update_callback {
    /// Handed back to `call` and `drop`; the library never reads it.
    pub user_data: *mut c_void,
    /// Receives each update; NULL starts a resolver for pulling with `gn_resolver_next`.
    pub call: Option<unsafe extern "C" fn(user_data: *mut c_void, update: *const gn_update)>,
    /// Runs once after the last call; may be NULL.
    pub drop: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// Runs the closure's `drop` when dropped.
struct ForeignDrop {
    user_data: *mut c_void,
    drop: Option<unsafe extern "C" fn(*mut c_void)>,
}

// SAFETY: the header's contract makes user_data the host's to share across the library's threads.
unsafe impl Send for ForeignDrop {}

impl Drop for ForeignDrop {
    fn drop(&mut self) {
        if let Some(drop) = self.drop {
            // SAFETY: the host's function, called once with its own user_data.
            unsafe { drop(self.user_data) };
        }
    }
}

struct ForeignHandler {
    call: unsafe extern "C" fn(*mut c_void, *const gn_update),
    owner: ForeignDrop,
}

impl UpdateHandler for ForeignHandler {
    fn on_update(&mut self, update: &Arc<Update>) {
        let view = gn_update::new(Arc::clone(update));
        // SAFETY: the host's function with its own user_data; `view` outlives the call.
        unsafe { (self.call)(self.owner.user_data, &view) };
    }
}

/// A running resolver. Made by `gn_resolver_start`; stopped by `gn_resolver_close`; released by
/// `gn_resolver_free`. `gn_resolver_close`, `gn_resolver_resolve_now` and `gn_resolver_next` may be
/// called from any thread, also at the same time; `gn_resolver_free` must be the last call on it.
pub struct gn_resolver {
    resolver: Resolver,
    /// A pull resolver's closure `drop`, run at close.
    pull_owner: Mutex<Option<ForeignDrop>>,
}

/// Parses `target` and starts resolving it in the background.
///
/// - `target`: a target string (see the README's list of forms); copied.
/// - `options`: NULL for defaults; copied.
/// - `callback`: receives every update (see `gn_update_callback`); with `call` NULL, pull updates
///   with `gn_resolver_next`. The library owns the closure from here on, even when this fails.
/// - `resolver_out`: receives the new resolver on success; untouched on error.
/// - `err_out`: NULL, or receives an error on failure (free it with `gn_error_free`).
///
/// The first update follows soon after, on a library thread (or for `gn_resolver_next`).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn gn_resolver_start(
    target: *const c_char,
    options: *const gn_resolver_options,
    callback: gn_update_callback,
    resolver_out: *mut *mut gn_resolver,
    err_out: *mut *mut gn_error,
) -> gn_status {
    let owner = ForeignDrop { user_data: callback.user_data, drop: callback.drop };
    with_status(err_out, move || {
        // SAFETY: the arguments follow this function's documented contract.
        let target = unsafe { str_arg(target, "target") }?;
        let options = unsafe { options.as_ref() }.map(|o| o.inner.clone()).unwrap_or_default();
        if resolver_out.is_null() {
            return Err(Error::invalid_argument("resolver_out is NULL"));
        }
        let (handler, pull_owner): (Option<Box<dyn UpdateHandler>>, _) = match callback.call {
            Some(call) => (Some(Box::new(ForeignHandler { call, owner })), None),
            None => (None, Some(owner)),
        };
        let resolver = Resolver::start(target, &options, handler)?;
        let handle = Box::new(gn_resolver { resolver, pull_owner: Mutex::new(pull_owner) });
        // SAFETY: checked non-NULL above.
        unsafe { write_out(resolver_out, "resolver_out", Box::into_raw(handle)) }
    })
}

/// Asks the resolver to look again now. Backends rate-limit this (DNS: 30 s by default); static
/// targets ignore it. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_resolver_resolve_now(resolver: *mut gn_resolver, err_out: *mut *mut gn_error) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or a live resolver.
        unsafe { handle_arg(resolver, "resolver") }?.resolver.resolve_now();
        Ok(())
    })
}

/// For a resolver started with a NULL `call`: waits up to `timeout_ms` milliseconds (negative: no
/// limit) for an update newer than the last one taken, and hands it to `*update_out` (free it with
/// `gn_update_free`). Only the latest update is kept between calls.
///
/// Returns `GN_STATUS_TIMEOUT` when none came in time, `GN_STATUS_CLOSED` when the resolver was closed
/// (also while waiting: `gn_resolver_close` from another thread wakes this call), and
/// `GN_STATUS_BAD_STATE` for a callback resolver. `*update_out` is written only on success.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn gn_resolver_next(
    resolver: *mut gn_resolver,
    timeout_ms: i64,
    update_out: *mut *mut gn_update,
    err_out: *mut *mut gn_error,
) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or a live resolver.
        let resolver = unsafe { handle_arg(resolver, "resolver") }?;
        if update_out.is_null() {
            return Err(Error::invalid_argument("update_out is NULL"));
        }
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        let update = resolver.resolver.next(timeout)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(update_out, "update_out", Box::into_raw(Box::new(gn_update::new(update)))) }
    })
}

/// Stops the resolver. When it returns, no callback is running and none will start, and the
/// closure's `drop` has run — except when called from inside this resolver's own callback: then it
/// returns at once, that call is the last one, and `drop` runs when it returns. Waiting `next` calls
/// return `GN_STATUS_CLOSED`. Idempotent; NULL is a no-op; thread-safe. The handle stays valid until
/// `gn_resolver_free`.
#[no_mangle]
pub extern "C" fn gn_resolver_close(resolver: *mut gn_resolver) {
    guard((), || {
        // SAFETY: NULL or a live resolver.
        if let Some(resolver) = unsafe { resolver.as_ref() } {
            resolver.resolver.close();
            let owner = resolver.pull_owner.lock().take();
            if resolver.resolver.is_inherited() {
                // The parent process owns this closure; the child's copy must not run its drop.
                if let Some(owner) = owner {
                    crate::runtime::abandon(Box::new(owner));
                }
            } else {
                drop(owner);
            }
        }
    })
}

/// Closes the resolver (as `gn_resolver_close`) and releases the handle. NULL is a no-op. Must be the
/// last call on this handle: no other thread may be using it.
#[no_mangle]
pub extern "C" fn gn_resolver_free(resolver: *mut gn_resolver) {
    guard((), || {
        if !resolver.is_null() {
            gn_resolver_close(resolver);
            // SAFETY: the caller owns the handle and gives it up here.
            drop(unsafe { Box::from_raw(resolver) });
        }
    })
}
