//! The C ABI: every `extern "C"` item of the library, one file per C object family. Bodies run inside
//! [`panic::with_status`] or [`panic::guard`], so no panic unwinds into the host; the pointer
//! plumbing they share is in [`plumbing`], the host's closures are owned by [`closure`].

#![allow(non_camel_case_types)]

mod closure;
pub mod cluster;
pub mod dns;
pub mod error;
pub mod log;
pub mod panic;
mod plumbing;
pub mod registration;
pub mod resolver;
pub mod runtime;
pub mod stats;
pub mod update;
pub mod xds;
pub mod zk;

use std::ffi::c_char;

/// ABI version: bumped on every incompatible change of the C ABI (a function removed or its signature
/// changed, a type's layout or meaning changed); additions keep it. The shared library's soname is
/// `libgnaming.so.<GN_ABI_VERSION>` (build.rs), so it moves with this number and programs built against
/// another ABI refuse to load. Bindings check it at load.
pub const GN_ABI_VERSION: u32 = 1;

/// The library's version, "MAJOR.MINOR.PATCH"; equals `GN_VERSION_STRING` of the header it was built
/// with. The string is static: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The library's ABI version; a binding built against `GN_ABI_VERSION` must refuse a library whose
/// value differs. It is also the number of the library's soname, `libgnaming.so.<GN_ABI_VERSION>`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn gn_abi_version() -> u32 {
    GN_ABI_VERSION
}
