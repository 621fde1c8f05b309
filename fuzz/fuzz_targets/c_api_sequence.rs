//! The C API driven as a C host would, through the exported `extern "C"` functions: resolvers on
//! static targets (no network) started, pulled, re-resolved, closed (also from inside their own
//! callback) and freed in fuzzer-chosen order, with NULL arguments and runtime shutdowns mixed in.
//! Checked on this thread, never inside a callback: every status is a known one and matches its
//! error object; each closure's `drop` runs exactly once, before `close` returns, and no call comes
//! after it; every update equals the list the target stands for.
#![no_main]

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gnaming::resolver::static_list;
use gnaming::{Address, AddressFamily, Target};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

// The C API as include/gnaming.h declares it; statuses and enums are read as plain C ints.
#[repr(C)]
struct gn_update_callback {
    user_data: *mut c_void,
    call: Option<unsafe extern "C" fn(*mut c_void, *const c_void)>,
    drop: Option<unsafe extern "C" fn(*mut c_void)>,
}

#[repr(C)]
struct gn_address {
    addr: *const c_char,
    family: i32,
    kind: i32,
    weight: u32,
    copy_index: u32,
    metadata_json: *const c_char,
}

#[allow(non_camel_case_types)]
type gn_error = c_void;

extern "C" {
    fn gn_resolver_options_new() -> *mut c_void;
    fn gn_resolver_options_free(options: *mut c_void);
    fn gn_resolver_options_set_client_language(
        options: *mut c_void,
        language: *const c_char,
        err: *mut *mut gn_error,
    ) -> i32;
    fn gn_resolver_start(
        target: *const c_char,
        options: *const c_void,
        callback: gn_update_callback,
        resolver_out: *mut *mut c_void,
        err: *mut *mut gn_error,
    ) -> i32;
    fn gn_resolver_resolve_now(resolver: *mut c_void, err: *mut *mut gn_error) -> i32;
    fn gn_resolver_next(
        resolver: *mut c_void,
        timeout_ms: i64,
        update_out: *mut *mut c_void,
        err: *mut *mut gn_error,
    ) -> i32;
    fn gn_resolver_close(resolver: *mut c_void);
    fn gn_resolver_free(resolver: *mut c_void);
    fn gn_update_state(update: *const c_void) -> i32;
    fn gn_update_error_message(update: *const c_void) -> *const c_char;
    fn gn_update_sequence(update: *const c_void) -> u64;
    fn gn_update_address_count(update: *const c_void) -> usize;
    fn gn_update_address(update: *const c_void, index: usize) -> *const gn_address;
    fn gn_update_service_config(update: *const c_void) -> *const c_char;
    fn gn_update_free(update: *mut c_void);
    fn gn_error_status(error: *const gn_error) -> i32;
    fn gn_error_message(error: *const gn_error) -> *const c_char;
    fn gn_error_free(error: *mut gn_error);
    fn gn_status_name(status: i32) -> *const c_char;
    fn gn_runtime_shutdown(timeout_ms: u32, err: *mut *mut gn_error) -> i32;
}

const OK: i32 = 0;
const INVALID_ARGUMENT: i32 = 1;
const INVALID_TARGET: i32 = 2;
const UNSUPPORTED_SCHEME: i32 = 3;
const TIMEOUT: i32 = 4;
const CLOSED: i32 = 5;
const BAD_STATE: i32 = 6;
const LAST_STATUS: i32 = 11;

/// Static targets of every form, a few invalid ones among them.
const TARGETS: &[&str] = &[
    "pass:///127.0.0.1:50051#2,127.0.0.1:50052",
    "pass:///[::1]:5#3,svc.local:7,name.test.:9",
    "pass:///127.0.0.1:1#1000",
    "ipv4:127.0.0.1:1,127.0.0.2:2",
    "ipv4:///127.0.0.1:80",
    "ipv6:[::1]:80,[fe80::1%2]:81",
    "unix:///tmp/gnaming-fuzz.sock",
    "unix:relative.sock",
    "passthrough:///host:50051",
    "127.0.0.1:x",
    "pass:///a:1#0",
    "bogus:x",
    "",
];

const SLOTS: usize = 4;
/// Long enough for a static update to arrive on a loaded machine; a hang is a failure, not a stall.
const CALL_WAIT: Duration = Duration::from_secs(5);

/// One closure's user data: counters the callbacks bump and this thread checks.
struct Closure {
    expected: Vec<Address>,
    calls: AtomicUsize,
    drops: AtomicUsize,
    calls_after_close: AtomicUsize,
    close_returned: AtomicBool,
    /// Set once start returned: the callback closes its own resolver through it.
    close_inside: AtomicPtr<c_void>,
    linger: Duration,
    problems: Mutex<Vec<String>>,
}

struct Slot {
    resolver: *mut c_void,
    closure: *mut Closure,
    pull: bool,
    closed: bool,
    pulled: usize,
}

unsafe extern "C" fn on_update(user_data: *mut c_void, update: *const c_void) {
    let closure = &*(user_data as *const Closure);
    if closure.close_returned.load(Ordering::SeqCst) {
        closure.calls_after_close.fetch_add(1, Ordering::SeqCst);
    }
    if closure.drops.load(Ordering::SeqCst) != 0 {
        closure.problems.lock().unwrap().push("a call after drop".into());
    }
    closure.calls.fetch_add(1, Ordering::SeqCst);
    if let Err(problem) = check_update(update, &closure.expected) {
        closure.problems.lock().unwrap().push(problem);
    }
    let resolver = closure.close_inside.load(Ordering::SeqCst);
    if !resolver.is_null() {
        gn_resolver_close(resolver);
        std::thread::sleep(closure.linger);
    }
}

unsafe extern "C" fn on_drop(user_data: *mut c_void) {
    (*(user_data as *const Closure)).drops.fetch_add(1, Ordering::SeqCst);
}

/// The update a static target publishes: its one list, state OK, sequence 1, nothing else.
unsafe fn check_update(update: *const c_void, expected: &[Address]) -> std::result::Result<(), String> {
    if gn_update_state(update) != 0 || !gn_update_error_message(update).is_null() {
        return Err("a static update is not OK".into());
    }
    if gn_update_sequence(update) != 1 {
        return Err(format!("sequence {} for the one static update", gn_update_sequence(update)));
    }
    if !gn_update_service_config(update).is_null() {
        return Err("a static update has a service config".into());
    }
    let count = gn_update_address_count(update);
    if count != expected.len() {
        return Err(format!("{count} addresses, expected {}", expected.len()));
    }
    if !gn_update_address(update, count).is_null() {
        return Err("an address past the end".into());
    }
    for (i, want) in expected.iter().enumerate() {
        let a = gn_update_address(update, i);
        if a.is_null() {
            return Err(format!("address {i} is NULL"));
        }
        let a = &*a;
        let family = match want.family {
            AddressFamily::Ipv4 => 0,
            AddressFamily::Ipv6 => 1,
            AddressFamily::Unix => 2,
            AddressFamily::Name => 3,
        };
        let addr = CStr::from_ptr(a.addr).to_str().map_err(|_| format!("address {i} is not UTF-8"))?;
        let got = (addr, a.family, a.kind, a.weight, a.copy_index, a.metadata_json.is_null());
        if got != (want.address.as_str(), family, 0, 1, want.copy_index, true) {
            return Err(format!("address {i}: got {got:?}, expected {want:?}"));
        }
    }
    Ok(())
}

/// A status from a call that took `err`: known, and equal to its error object's (none on success).
unsafe fn status_of(call: &str, status: i32, err: *mut gn_error) -> i32 {
    assert!((0..=LAST_STATUS).contains(&status), "{call}: unknown status {status}");
    assert!(!gn_status_name(status).is_null(), "{call}: no name for status {status}");
    if status == OK {
        assert!(err.is_null(), "{call}: OK with an error object");
    } else {
        assert!(!err.is_null(), "{call}: status {status} without an error object");
        assert_eq!(gn_error_status(err), status, "{call}: the error object's status");
        assert!(!CStr::from_ptr(gn_error_message(err)).is_empty(), "{call}: an empty error message");
        gn_error_free(err);
    }
    status
}

fn closure_checks(closure: &Closure, what: &str) {
    let problems = closure.problems.lock().unwrap();
    assert!(problems.is_empty(), "{what}: the callback saw {problems:?}");
    assert_eq!(closure.calls_after_close.load(Ordering::SeqCst), 0, "{what}: a call after close returned");
    assert!(closure.calls.load(Ordering::SeqCst) <= 1, "{what}: a static target called more than once");
}

/// After close (or shutdown) returned: drop ran exactly once.
unsafe fn after_close(slot: &mut Slot, what: &str) {
    let closure = &*slot.closure;
    closure.close_returned.store(true, Ordering::SeqCst);
    assert_eq!(
        closure.drops.load(Ordering::SeqCst),
        1,
        "{what} returned, drop ran {} times",
        closure.drops.load(Ordering::SeqCst)
    );
    slot.closed = true;
}

unsafe fn start(u: &mut Unstructured, slots: &mut [Option<Slot>; SLOTS], i: usize) -> Result<()> {
    let text: String = if u.ratio(3, 4)? { u.choose(TARGETS)?.to_string() } else { u.arbitrary()? };
    let text = text.replace('\0', "");
    let parsed = Target::parse(&text);
    if matches!(parsed, Ok(Target::Etcd(_) | Target::Dns(_))) {
        return Ok(()); // these reach servers; this target stays off the network
    }
    let expected = parsed.as_ref().map(static_list::endpoints).unwrap_or_default();
    let pull: bool = u.arbitrary()?;
    let close_inside: bool = !pull && u.ratio(1, 4)?;
    let closure = Box::into_raw(Box::new(Closure {
        expected,
        calls: AtomicUsize::new(0),
        drops: AtomicUsize::new(0),
        calls_after_close: AtomicUsize::new(0),
        close_returned: AtomicBool::new(false),
        close_inside: AtomicPtr::new(ptr::null_mut()),
        linger: Duration::from_micros(u.int_in_range(0..=1000)?),
        problems: Mutex::new(Vec::new()),
    }));
    let callback = gn_update_callback {
        user_data: closure.cast(),
        call: if pull { None } else { Some(on_update) },
        drop: Some(on_drop),
    };
    let options = if u.arbitrary()? {
        let options = gn_resolver_options_new();
        assert!(!options.is_null());
        let language: Vec<u8> = u.arbitrary()?;
        let language = CString::new(language.into_iter().filter(|&b| b != 0).collect::<Vec<_>>()).unwrap();
        let mut err = ptr::null_mut();
        let status = gn_resolver_options_set_client_language(options, language.as_ptr(), &mut err);
        let status = status_of("set_client_language", status, err);
        let expected = if language.as_bytes().is_empty() || language.to_str().is_err() { INVALID_ARGUMENT } else { OK };
        assert_eq!(status, expected, "set_client_language({language:?})");
        options
    } else {
        ptr::null_mut()
    };
    let null_target = u.ratio(1, 32)?;
    let target = CString::new(text).unwrap();
    let sentinel = 0x5a5a_usize as *mut c_void;
    let mut resolver = sentinel;
    let mut err = ptr::null_mut();
    let target_ptr = if null_target { ptr::null() } else { target.as_ptr() };
    let status = gn_resolver_start(target_ptr, options, callback, &mut resolver, &mut err);
    let status = status_of("gn_resolver_start", status, err);
    gn_resolver_options_free(options);

    let want = match parsed {
        _ if null_target => INVALID_ARGUMENT,
        Ok(_) => OK,
        Err(e) if e.kind() == gnaming::ErrorKind::UnsupportedScheme => UNSUPPORTED_SCHEME,
        Err(_) => INVALID_TARGET,
    };
    assert_eq!(status, want, "gn_resolver_start({target:?})");
    if status != OK {
        assert_eq!(resolver, sentinel, "a failed start wrote resolver_out");
        let drops = (*closure).drops.load(Ordering::SeqCst);
        assert_eq!(drops, 1, "a failed start ran drop {drops} times");
        drop(Box::from_raw(closure));
        return Ok(());
    }
    assert!(!resolver.is_null() && resolver != sentinel);
    if close_inside {
        (*closure).close_inside.store(resolver, Ordering::SeqCst);
    }
    slots[i] = Some(Slot { resolver, closure, pull, closed: false, pulled: 0 });
    Ok(())
}

unsafe fn next(slot: &mut Slot, timeout_ms: i64) {
    let mut update = ptr::null_mut();
    let mut err = ptr::null_mut();
    let status = status_of("gn_resolver_next", gn_resolver_next(slot.resolver, timeout_ms, &mut update, &mut err), err);
    match (slot.pull, status) {
        (false, BAD_STATE) => {}
        (true, CLOSED) if slot.closed => {}
        (true, TIMEOUT) if !slot.closed => {}
        (true, OK) if !slot.closed => {
            slot.pulled += 1;
            assert_eq!(slot.pulled, 1, "a static target gave a second update");
            let checked = check_update(update, &(*slot.closure).expected);
            gn_update_free(update);
            if let Err(problem) = checked {
                panic!("gn_resolver_next: {problem}");
            }
        }
        _ => panic!("gn_resolver_next: status {status} for pull={} closed={}", slot.pull, slot.closed),
    }
}

/// Waits, bounded, until a callback resolver's one call has run.
unsafe fn wait_for_call(slot: &Slot) {
    let closure = &*slot.closure;
    let deadline = Instant::now() + CALL_WAIT;
    while closure.calls.load(Ordering::SeqCst) == 0 && !slot.closed {
        assert!(Instant::now() < deadline, "no call within {CALL_WAIT:?} for {:?}", closure.expected);
        std::thread::sleep(Duration::from_micros(100));
    }
}

unsafe fn null_arguments(u: &mut Unstructured) -> Result<()> {
    let mut err = ptr::null_mut();
    let mut update = ptr::null_mut();
    match u.int_in_range(0..=4)? {
        0 => {
            let status = gn_resolver_next(ptr::null_mut(), 0, &mut update, &mut err);
            assert_eq!(status_of("next(NULL)", status, err), INVALID_ARGUMENT);
        }
        1 => {
            let status = gn_resolver_resolve_now(ptr::null_mut(), &mut err);
            assert_eq!(status_of("resolve_now(NULL)", status, err), INVALID_ARGUMENT);
        }
        2 => {
            gn_resolver_close(ptr::null_mut());
            gn_resolver_free(ptr::null_mut());
            gn_update_free(ptr::null_mut());
            gn_error_free(ptr::null_mut());
            gn_resolver_options_free(ptr::null_mut());
        }
        3 => {
            assert_eq!(gn_update_address_count(ptr::null()), 0);
            assert!(gn_update_address(ptr::null(), 0).is_null());
            assert!(gn_update_service_config(ptr::null()).is_null());
            assert_eq!(gn_update_sequence(ptr::null()), 0);
        }
        _ => {
            let status = gn_resolver_options_set_client_language(ptr::null_mut(), c"go".as_ptr(), &mut err);
            assert_eq!(status_of("set_client_language(NULL)", status, err), INVALID_ARGUMENT);
        }
    }
    Ok(())
}

unsafe fn run(u: &mut Unstructured, slots: &mut [Option<Slot>; SLOTS]) -> Result<()> {
    for _ in 0..64 {
        if u.is_empty() {
            break;
        }
        let i = u.choose_index(SLOTS)?;
        match u.int_in_range(0..=15)? {
            0..=3 => {
                if slots[i].is_none() {
                    start(u, slots, i)?;
                }
            }
            4..=6 => {
                if let Some(slot) = &mut slots[i] {
                    next(slot, u.int_in_range(0..=1)?);
                }
            }
            7 => {
                if let Some(slot) = &slots[i] {
                    let mut err = ptr::null_mut();
                    let status = gn_resolver_resolve_now(slot.resolver, &mut err);
                    assert_eq!(status_of("resolve_now", status, err), OK);
                }
            }
            8..=9 => {
                if let Some(slot) = &mut slots[i] {
                    gn_resolver_close(slot.resolver);
                    after_close(slot, "gn_resolver_close");
                }
            }
            10..=11 => {
                if let Some(mut slot) = slots[i].take() {
                    gn_resolver_free(slot.resolver);
                    after_close(&mut slot, "gn_resolver_free");
                    closure_checks(&*slot.closure, "gn_resolver_free");
                    drop(Box::from_raw(slot.closure));
                }
            }
            12..=13 => {
                if let Some(slot) = &slots[i] {
                    if !slot.pull {
                        wait_for_call(slot);
                    }
                }
            }
            14 => null_arguments(u)?,
            _ => {
                if u.ratio(1, 8)? {
                    let mut err = ptr::null_mut();
                    assert_eq!(status_of("gn_runtime_shutdown", gn_runtime_shutdown(2000, &mut err), err), OK);
                    for slot in slots.iter_mut().flatten() {
                        after_close(slot, "gn_runtime_shutdown");
                    }
                }
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut slots: [Option<Slot>; SLOTS] = Default::default();
    // SAFETY: every handle comes from gn_resolver_start and is freed once, below or by a Free op.
    unsafe {
        let _ = run(&mut u, &mut slots);
        for slot in &mut slots {
            if let Some(mut slot) = slot.take() {
                gn_resolver_free(slot.resolver);
                after_close(&mut slot, "gn_resolver_free");
                closure_checks(&*slot.closure, "gn_resolver_free");
                drop(Box::from_raw(slot.closure));
            }
        }
    }
});
