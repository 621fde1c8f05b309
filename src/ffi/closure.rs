//! The host's closures `{user_data, call, drop}` (updates, logs, pull resolvers), owned in one way:
//! `drop(user_data)` runs exactly once, after the last call, and every release returns only after it
//! has run, so a host may free `user_data` as soon as its own close returns, whichever thread ran it.

use std::ffi::c_void;
use std::sync::Arc;
use std::thread::{self, ThreadId};

use parking_lot::{Condvar, Mutex};

use crate::runtime::{self, Closable};

/// A closure's `drop` as C declares it.
pub(crate) type DropFn = unsafe extern "C" fn(user_data: *mut c_void);

/// Where a closure's `drop` stands.
enum Release {
    Pending,
    Running(ThreadId),
    Done,
}

/// Owns a closure's `user_data` and `drop`.
pub(crate) struct ClosureOwner {
    user_data: *mut c_void,
    drop: Option<DropFn>,
    /// The process that received the closure: a forked child's copy belongs to the parent and must
    /// never run its `drop`.
    pid: u32,
    state: Mutex<Release>,
    released: Condvar,
}

// SAFETY: the header's contract makes `user_data` the host's to hand to the library's threads.
unsafe impl Send for ClosureOwner {}
unsafe impl Sync for ClosureOwner {}

impl ClosureOwner {
    pub(crate) fn new(user_data: *mut c_void, drop: Option<DropFn>) -> Arc<Self> {
        Arc::new(ClosureOwner {
            user_data,
            drop,
            pid: std::process::id(),
            state: Mutex::new(Release::Pending),
            released: Condvar::new(),
        })
    }

    /// Runs `drop` unless it has run, and returns only once it has: a second releaser racing the first
    /// waits for the first's `drop` to end, since its caller may free `user_data` next. A release from
    /// inside `drop` itself (the host closing again there) returns at once rather than wait for itself.
    pub(crate) fn release(&self) {
        let me = thread::current().id();
        let mut state = self.state.lock();
        loop {
            match *state {
                Release::Done => return,
                Release::Running(runner) if runner == me => return,
                Release::Running(_) => self.released.wait(&mut state),
                Release::Pending => break,
            }
        }
        *state = Release::Running(me);
        drop(state);
        if let (Some(drop), true) = (self.drop, runtime::is_own(self.pid)) {
            // SAFETY: the host's function, called once with its own user_data.
            unsafe { drop(self.user_data) };
        }
        *self.state.lock() = Release::Done;
        self.released.notify_all();
    }

    /// Waits until some thread's `release` has finished.
    pub(crate) fn wait_released(&self) {
        let mut state = self.state.lock();
        while !matches!(*state, Release::Done) {
            self.released.wait(&mut state);
        }
    }
}

impl Drop for ClosureOwner {
    fn drop(&mut self) {
        self.release();
    }
}

/// A pull resolver closes its closure with itself: at `gn_resolver_close`, at `gn_runtime_shutdown`,
/// or when its start fails.
impl Closable for ClosureOwner {
    fn close(&self) {
        self.release();
    }
}

/// A closure with a `call`: the function and the owner of its `user_data`. Dropping it releases the
/// owner, so whoever holds the last call path (a resolver's delivery, the log sink) runs `drop`.
pub(crate) struct Closure<F: Copy> {
    call: F,
    owner: Arc<ClosureOwner>,
}

impl<F: Copy> Closure<F> {
    /// Takes a closure from C: the `call` part when `call` is not NULL, and its owner either way.
    /// The owner's `drop` runs when the last of the two is released.
    pub(crate) fn take(
        user_data: *mut c_void,
        call: Option<F>,
        drop: Option<DropFn>,
    ) -> (Option<Self>, Arc<ClosureOwner>) {
        let owner = ClosureOwner::new(user_data, drop);
        (call.map(|call| Closure { call, owner: Arc::clone(&owner) }), owner)
    }

    /// The host's function and its `user_data`, for one call.
    pub(crate) fn parts(&self) -> (F, *mut c_void) {
        (self.call, self.owner.user_data)
    }
}

impl<F: Copy> Drop for Closure<F> {
    fn drop(&mut self) {
        self.owner.release();
    }
}
