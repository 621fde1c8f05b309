//! `gn_resolver` and `gn_resolver_options`: starting a resolver with a callback closure or for pulling,
//! `resolve_now`, `next`, `close` and `free`.

use std::ffi::{c_char, c_void};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::closure::Closure;
use super::error::{gn_error, gn_status};
use super::panic::with_status;
use super::plumbing::{borrow, borrow_str, edit_options, free_handle, new_handle, on_handle, Out};
use super::update::gn_update;
use crate::error::Error;
use crate::resolver::policy::{EmptyPolicy, MAX_MIN_ZONE};
use crate::resolver::subset::MAX_SUBSET;
use crate::resolver::{parse_target, Resolver, ResolverOptions, UpdateHandler};
use crate::runtime::Closable;
use crate::update::Update;

/// Options for `gn_resolver_start`, set one by one (the set grows with new versions; defaults suit
/// most hosts). Made by `gn_resolver_options_new`, freed by `gn_resolver_options_free`. Not
/// thread-safe: do not change one options object from two threads at once. `gn_resolver_start`
/// copies it, so it may be freed or changed right after.
#[derive(Clone)]
pub struct gn_resolver_options {
    pub(crate) inner: ResolverOptions,
}

/// A new options object with every default. Never NULL (NULL only if the process is out of memory).
#[no_mangle]
pub extern "C" fn gn_resolver_options_new() -> *mut gn_resolver_options {
    new_handle(|| gn_resolver_options { inner: ResolverOptions::default() })
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn gn_resolver_options_free(options: *mut gn_resolver_options) {
    free_handle(options)
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
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        let language = unsafe { borrow_str(language, "language") }?;
        if language.is_empty() {
            return Err(Error::invalid_argument("language is empty"));
        }
        o.inner.client_language = language.to_string();
        Ok(())
    })
}

/// Whether to look up the `host:port` names in lists (etcd values, `pass:` items) in the library
/// (default false). When true, each such name becomes one entry per address it has, with the name's
/// weight, copy index, kind and metadata, so the consumer sees `GN_ADDRESS_FAMILY_IPV4` and
/// `GN_ADDRESS_FAMILY_IPV6` (and unix) entries and never resolves anything itself. The lookups use
/// the library's own asynchronous DNS client with the DNS options (nameserver, query timeout and
/// attempts); `gn_resolver_resolve_now` looks the names of the current list up again, at most once
/// per `gn_resolver_options_set_dns_min_resolve_interval_ms`. A name that cannot be resolved gives a
/// `GN_RESOLVER_STATE_TRANSIENT_ERROR` update that keeps the last good list and names the host.
/// `passthrough:` strings are never looked up. On error the options are unchanged. Not thread-safe
/// for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_resolve_host_names(
    options: *mut gn_resolver_options,
    enabled: bool,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        o.inner.resolve_host_names = enabled;
        Ok(())
    })
}

/// Keeps only the entries whose registration metadata (the JSON object registered with the address)
/// has `key` equal to `value`: a string equal to `value`, or a number or boolean written as `value`.
/// Several selectors must all match; an entry without the key, or without metadata, never matches.
/// A target's `?select.KEY=VALUE` adds selectors alike; the same key with a different value there
/// makes `gn_resolver_start` fail with `GN_STATUS_INVALID_TARGET`. Adding a key again replaces its
/// value. `key` and `value` are non-empty NUL-terminated UTF-8, copied. On error the options are
/// unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_add_selector(
    options: *mut gn_resolver_options,
    key: *const c_char,
    value: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        // SAFETY: NULL or NUL-terminated strings, as documented.
        let key = unsafe { borrow_str(key, "key") }?;
        let value = unsafe { borrow_str(value, "value") }?;
        if key.is_empty() || value.is_empty() {
            return Err(Error::invalid_argument(format!(
                "selector '{key}'='{value}': key and value must be non-empty"
            )));
        }
        o.inner.policy.selectors.insert(key.to_string(), value.to_string());
        Ok(())
    })
}

/// What a list that the registry reports empty, or that the selectors leave empty, does: "pass"
/// (the default) delivers the empty list; "keep" keeps the last list in a
/// `GN_RESOLVER_STATE_TRANSIENT_ERROR` update whose message says the registry reported an empty
/// list (or that no entry matched the selectors). NULL restores the default. A target's
/// `?empty=` sets it alike; a different value there makes `gn_resolver_start` fail with
/// `GN_STATUS_INVALID_TARGET`. On error the options are unchanged. Not thread-safe for one options
/// object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_empty_policy(
    options: *mut gn_resolver_options,
    policy: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        o.inner.policy.empty =
            if policy.is_null() {
                None
            } else {
                // SAFETY: a NUL-terminated string, as documented.
                let name = unsafe { borrow_str(policy, "policy") }?;
                let empty = EmptyPolicy::from_name(name);
                Some(empty.ok_or_else(|| {
                    Error::invalid_argument(format!("empty policy '{name}' is neither keep nor pass"))
                })?)
            };
        Ok(())
    })
}

/// The local zone: while at least `min_count` entries (after the selectors) have registration
/// metadata `"zone"` equal to `zone`, only those are delivered; below that, every entry is. The
/// choice depends on the current list only. `min_count` is 1 to 10000. `zone` NULL removes the
/// setting (and `min_count` is ignored); then the `GNAMING_ZONE` environment variable, read when a
/// resolver starts, gives the zone if set. A target's `?prefer-zone=` and `?min-zone=` set them
/// alike; a different value there makes `gn_resolver_start` fail with `GN_STATUS_INVALID_TARGET`.
/// On error the options are unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_zone(
    options: *mut gn_resolver_options,
    zone: *const c_char,
    min_count: u32,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        if zone.is_null() {
            o.inner.policy.prefer_zone = None;
            o.inner.policy.min_zone = None;
            return Ok(());
        }
        // SAFETY: a NUL-terminated string, as documented.
        let zone = unsafe { borrow_str(zone, "zone") }?;
        if zone.is_empty() {
            return Err(Error::invalid_argument("zone is empty (NULL removes the setting)"));
        }
        if !(1..=MAX_MIN_ZONE).contains(&min_count) {
            return Err(Error::invalid_argument(format!("min_count {min_count} is not from 1 to {MAX_MIN_ZONE}")));
        }
        o.inner.policy.prefer_zone = Some(zone.to_string());
        o.inner.policy.min_zone = Some(min_count);
        Ok(())
    })
}

/// Gives this client a subset of `count` of the list's distinct addresses (1 to 10000; 0 removes the
/// setting), with every entry of each (the `#N` copies of an address stay together). The subset is
/// deterministic for a client id (`gn_resolver_options_set_client_id`) and stable: an update that
/// adds, removes or replaces one address changes at most one address of it. Every backend is in
/// about `count` / (addresses) of the clients' subsets. It is taken after the selectors and the
/// zone; a list with at most `count` addresses is delivered whole. A target's `?subset=` sets it
/// alike; a different value there makes `gn_resolver_start` fail with `GN_STATUS_INVALID_TARGET`.
/// On error the options are unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_subset(
    options: *mut gn_resolver_options,
    count: u32,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        if count > MAX_SUBSET {
            return Err(Error::invalid_argument(format!(
                "subset {count} is more than {MAX_SUBSET} (0 removes the setting)"
            )));
        }
        o.inner.policy.subset = (count > 0).then_some(count);
        Ok(())
    })
}

/// The id that seeds this client's subset (see `gn_resolver_options_set_subset`): clients with the
/// same id get the same subset of the same list. NULL removes the setting; then the
/// `GNAMING_CLIENT_ID` environment variable, read when a resolver starts, gives it if set, else it
/// is `<host name>/<process id>`, so that the processes of one host spread over the backends. A
/// target's `?client-id=` sets it alike; a different value there makes `gn_resolver_start` fail with
/// `GN_STATUS_INVALID_TARGET`. `id` is non-empty NUL-terminated UTF-8, copied. On error the options
/// are unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_client_id(
    options: *mut gn_resolver_options,
    id: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        if id.is_null() {
            o.inner.policy.client_id = None;
            return Ok(());
        }
        // SAFETY: a NUL-terminated string, as documented.
        let id = unsafe { borrow_str(id, "id") }?;
        if id.is_empty() {
            return Err(Error::invalid_argument("client id is empty (NULL removes the setting)"));
        }
        o.inner.policy.client_id = Some(id.to_string());
        Ok(())
    })
}

/// Asks the gRPC stack to check the health of every address with gRPC's health service
/// (`grpc.health.v1.Health`) for `service` ("" for the server as a whole) and to pick only serving
/// ones: every update's service config (`gn_update_service_config`) then holds
/// `"healthCheckConfig": {"serviceName": service}`, added to the source's service config (a
/// different `healthCheckConfig` there is replaced). A service config that names no balancing policy
/// also gets `"loadBalancingConfig": [{"gnaming_weighted": {}}, {"round_robin": {}}]`, since
/// pick_first, gRPC's default, does not check health. NULL removes the setting. A target's
/// `?health=` sets it alike (`?health=*` for ""); a different value there makes `gn_resolver_start`
/// fail with `GN_STATUS_INVALID_TARGET`. `service` is NUL-terminated UTF-8, copied. On error the
/// options are unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_health_check(
    options: *mut gn_resolver_options,
    service: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        o.inner.policy.health = if service.is_null() {
            None
        } else {
            // SAFETY: a NUL-terminated string, as documented.
            Some(unsafe { borrow_str(service, "service") }?.to_string())
        };
        Ok(())
    })
}

/// The cold-start cache directory. With one set (here, or else in the `GNAMING_CACHE_DIR` environment
/// variable, read when a resolver starts), each etcd or DNS target's last good list (the source's
/// complete list, before the selectors, zone and empty policy, which apply again when it is read) is
/// kept in a file of its own in `dir`, replaced atomically each time the resolver delivers a changed
/// good list (the directory is created with mode 0700, files with 0600). When the source is
/// unreachable at start, before it has given any list, the cached list is delivered in a
/// `GN_RESOLVER_STATE_TRANSIENT_ERROR` update whose message gives its age and the source's error
/// (`serving the cached list written 12 s ago: ...`); the source's own list follows as soon as it
/// answers. A cache file that is unreadable, corrupt, of another format version, for another target
/// or older than the max age (`gn_resolver_options_set_cache_max_age_ms`) is ignored with a logged
/// warning, and a write that fails is a logged warning: neither ever fails the resolver.
/// `gn_resolver_close` waits up to 1 s for a write in flight. `dir` is NUL-terminated UTF-8, copied,
/// non-empty; NULL removes the setting (then `GNAMING_CACHE_DIR` applies). Static targets (`pass:`,
/// `ipv4:`, `unix:`, an IP literal) write no file. On error the options are unchanged. Not thread-safe
/// for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_cache_dir(
    options: *mut gn_resolver_options,
    dir: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        o.inner.cache.dir = if dir.is_null() {
            None
        } else {
            // SAFETY: a NUL-terminated string, as documented.
            let dir = unsafe { borrow_str(dir, "dir") }?;
            if dir.is_empty() {
                return Err(Error::invalid_argument("cache dir is empty (NULL removes the setting)"));
            }
            Some(PathBuf::from(dir))
        };
        Ok(())
    })
}

/// How old a cached list may be and still be served at a cold start, in milliseconds (default
/// 86400000, 24 h); an older file is ignored with a logged warning. At least 1. On error the options
/// are unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_cache_max_age_ms(
    options: *mut gn_resolver_options,
    max_age_ms: u64,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit_options(options, err_out, |o| {
        if max_age_ms == 0 {
            return Err(Error::invalid_argument("cache max age is 0 ms; it must be at least 1"));
        }
        o.inner.cache.max_age = Duration::from_millis(max_age_ms);
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

type UpdateFn = unsafe extern "C" fn(*mut c_void, *const gn_update);

struct ForeignHandler(Closure<UpdateFn>);

impl UpdateHandler for ForeignHandler {
    fn on_update(&mut self, update: &Arc<Update>) {
        let view = gn_update::new(Arc::clone(update));
        let (call, user_data) = self.0.parts();
        // SAFETY: the host's function with its own user_data; `view` outlives the call.
        unsafe { call(user_data, &view) };
    }
}

/// A running resolver. Made by `gn_resolver_start`; stopped by `gn_resolver_close`; released by
/// `gn_resolver_free`. `gn_resolver_close`, `gn_resolver_resolve_now` and `gn_resolver_next` may be
/// called from any thread, also at the same time; `gn_resolver_free` must be the last call on it.
pub struct gn_resolver {
    /// Closes on drop; a pull resolver's closure is released by the resolver's own close (and by a
    /// runtime shutdown), a push resolver's by its delivery.
    resolver: Resolver,
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
    let (handler, owner) = Closure::take(callback.user_data, callback.call, callback.drop);
    with_status(err_out, move || {
        // SAFETY: the arguments follow this function's documented contract.
        let target = unsafe { borrow_str(target, "target") }?;
        let options = unsafe { options.as_ref() }.map(|o| o.inner.clone()).unwrap_or_default();
        let out = unsafe { Out::new(resolver_out, "resolver_out") }?;
        let pull_owner = handler.is_none().then_some(owner).map(|owner| owner as Arc<dyn Closable>);
        let handler = handler.map(|h| Box::new(ForeignHandler(h)) as Box<dyn UpdateHandler>);
        let (target, options) = parse_target(target, &options)?;
        let resolver = Resolver::start_closing(target, &options, handler, pull_owner)?;
        out.put(gn_resolver { resolver })
    })
}

/// Asks the resolver to look again now. Backends rate-limit this (DNS: 30 s by default); static
/// targets ignore it, except that with `gn_resolver_options_set_resolve_host_names` the host names
/// of any list are looked up again (rate-limited alike). Thread-safe.
#[no_mangle]
pub extern "C" fn gn_resolver_resolve_now(resolver: *mut gn_resolver, err_out: *mut *mut gn_error) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or a live resolver.
        unsafe { borrow(resolver, "resolver") }?.resolver.resolve_now();
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
        // SAFETY: the arguments follow this function's documented contract.
        let resolver = unsafe { borrow(resolver, "resolver") }?;
        let out = unsafe { Out::new(update_out, "update_out") }?;
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        out.put(gn_update::new(resolver.resolver.next(timeout)?))
    })
}

/// Stops the resolver. When it returns, no callback is running and none will start, and the
/// closure's `drop` has run — except when called from inside this resolver's own callback: then it
/// returns at once, that call is the last one, and `drop` runs when it returns. Waiting `next` calls
/// return `GN_STATUS_CLOSED`. Idempotent; NULL is a no-op; thread-safe. The handle stays valid until
/// `gn_resolver_free`.
#[no_mangle]
pub extern "C" fn gn_resolver_close(resolver: *mut gn_resolver) {
    on_handle(resolver, (), |r| r.resolver.close())
}

/// Closes the resolver (as `gn_resolver_close`) and releases the handle. NULL is a no-op. Must be the
/// last call on this handle: no other thread may be using it.
#[no_mangle]
pub extern "C" fn gn_resolver_free(resolver: *mut gn_resolver) {
    free_handle(resolver)
}
