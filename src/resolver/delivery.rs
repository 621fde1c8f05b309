//! Delivery of updates to one consumer, push or pull, with the closure contract the C header promises:
//! calls are serialised and in order, the latest state wins when the consumer is slower than the
//! source, `close` waits for a running call (unless made from inside it) and no call starts after it,
//! every `close` returns only once the handler has been dropped (except from inside the last call or
//! the drop itself), and the handler is dropped exactly once, after its last call. Callbacks never run
//! on an async worker and never while a lock is held: on the runtime's blocking pool, or on the very
//! thread that received the change (see [`deliver_here`]), which first hands its worker duties over.
//!
//! The state machine is model-checked with loom (`make test-loom`): under `--cfg gnaming_loom` its
//! locks, thread ids and job threads come from loom, and the `model` tests explore every interleaving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::update::Update;
use sync::{current_thread, Condvar, Mutex, ThreadId};

/// A push consumer. Dropping it is the C closure's `drop(user_data)`.
pub trait UpdateHandler: Send {
    fn on_update(&mut self, update: &Arc<Update>);
}

impl<F: FnMut(&Arc<Update>) + Send> UpdateHandler for F {
    fn on_update(&mut self, update: &Arc<Update>) {
        self(update)
    }
}

pub(crate) struct Delivery {
    state: Mutex<State>,
    changed: Condvar,
    push: bool,
    jobs: Jobs,
}

struct State {
    pending: Option<Arc<Update>>,
    closed: bool,
    /// A delivery job is scheduled or running.
    scheduled: bool,
    /// How long the last call took; only a handler whose last call was quick is called on the
    /// publishing thread (see [`deliver_here`]).
    last_call: Option<Duration>,
    handler: Slot,
}

/// A handler whose last call took less than this may be called on the thread that received the
/// change; a slower one (a busy host, a blocking callback) goes to the blocking pool.
const QUICK_CALL: Duration = Duration::from_millis(1);

/// Where the handler is. Every thread that must wait for it (a closer on another thread) waits until
/// it is `Dropped`; the thread that moves it to `Dropped` wakes them.
enum Slot {
    /// Between calls: the next call or the first closer takes it.
    Idle(Box<dyn UpdateHandler>),
    /// Taken by this thread, which is running a call without the lock.
    Calling(ThreadId),
    /// Being dropped by this thread, without the lock.
    Dropping(ThreadId),
    /// Gone for good (a pull consumer starts here: it has no handler).
    Dropped,
}

impl Delivery {
    /// `handler: None` makes a pull consumer, read with [`Delivery::next`].
    pub(crate) fn new(handler: Option<Box<dyn UpdateHandler>>, jobs: Jobs) -> Arc<Self> {
        Arc::new(Delivery {
            push: handler.is_some(),
            state: Mutex::new(State {
                pending: None,
                closed: false,
                scheduled: false,
                last_call: None,
                handler: handler.map_or(Slot::Dropped, Slot::Idle),
            }),
            changed: Condvar::new(),
            jobs,
        })
    }

    /// Hands an update over; a newer one replaces one not yet taken.
    pub(crate) fn publish(self: &Arc<Self>, update: Update) {
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        state.pending = Some(Arc::new(update));
        if !self.push {
            self.changed.notify_all();
            return;
        }
        if !state.scheduled {
            state.scheduled = true;
            let quick = state.last_call.is_some_and(|took| took < QUICK_CALL);
            drop(state);
            let this = Arc::clone(self);
            if quick {
                if let Err(this) = here::defer(this) {
                    self.jobs.spawn(move || this.run_calls());
                }
            } else {
                self.jobs.spawn(move || this.run_calls());
            }
        }
    }

    fn run_calls(&self) {
        let me = current_thread();
        let mut state = self.state.lock();
        loop {
            if state.closed || state.pending.is_none() || !matches!(state.handler, Slot::Idle(_)) {
                // A closer takes an idle handler; nothing else is left for this job.
                state.scheduled = false;
                return;
            }
            let update = state.pending.take().expect("checked above");
            let Slot::Idle(mut handler) = std::mem::replace(&mut state.handler, Slot::Calling(me)) else {
                unreachable!("checked above")
            };
            drop(state);

            let started = sync::now();
            let outcome = {
                let _scope = sync::CallbackScope::enter();
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.on_update(&update)))
            };
            if outcome.is_err() {
                tracing::error!("an update handler panicked; the panic was contained");
            }
            let took = sync::since(started);

            state = self.state.lock();
            state.last_call = Some(took);
            if state.closed {
                // That was the last call, whoever closed (this call itself or another thread, now
                // waiting): this job drops the handler, then wakes every waiting closer.
                state.scheduled = false;
                state.handler = Slot::Dropping(me);
                drop(state);
                self.drop_handler(handler);
                return;
            }
            state.handler = Slot::Idle(handler);
        }
    }

    /// Drops the handler outside the lock (its drop is the host's code), then marks it gone.
    fn drop_handler(&self, handler: Box<dyn UpdateHandler>) {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(handler))).is_err() {
            tracing::error!("an update handler's drop panicked; the panic was contained");
        }
        let mut state = self.state.lock();
        state.handler = Slot::Dropped;
        self.changed.notify_all();
    }

    /// Stops delivery. When it returns, no call is running, none will start, and the handler has been
    /// dropped, whichever thread dropped it: this one, a concurrent closer or the last call's job.
    /// From inside a call (or from inside the handler's drop) it returns at once instead, since
    /// waiting would wait for itself; that call is the last and the handler is dropped after it.
    /// Idempotent.
    pub(crate) fn close(&self) {
        let me = current_thread();
        let mut state = self.state.lock();
        if !state.closed {
            state.closed = true;
            state.pending = None;
            // Wakes waiting `next` calls.
            self.changed.notify_all();
        }
        loop {
            match &state.handler {
                Slot::Dropped => return,
                Slot::Calling(thread) | Slot::Dropping(thread) if *thread == me => return,
                Slot::Calling(_) | Slot::Dropping(_) => self.changed.wait(&mut state),
                Slot::Idle(_) => {
                    let Slot::Idle(handler) = std::mem::replace(&mut state.handler, Slot::Dropping(me)) else {
                        unreachable!("matched above")
                    };
                    drop(state);
                    self.drop_handler(handler);
                    return;
                }
            }
        }
    }

    /// Closes a delivery inherited through fork: its threads do not exist here, so nothing is waited
    /// for and the handler is forgotten (the parent process still owns it).
    pub(crate) fn abandon(&self) {
        if let Some(mut state) = self.state.try_lock() {
            state.closed = true;
            if let Slot::Idle(handler) = std::mem::replace(&mut state.handler, Slot::Dropped) {
                crate::runtime::abandon(Box::new(handler));
            }
        }
    }

    /// Pull consumers: waits up to `timeout` for an update newer than the last one taken.
    pub(crate) fn next(&self, timeout: Duration) -> Result<Arc<Update>, Error> {
        if self.push {
            return Err(Error::new(
                ErrorKind::BadState,
                "this resolver delivers to a callback; next() is for resolvers started without one",
            ));
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return Err(Error::new(ErrorKind::Closed, "the resolver is closed"));
            }
            if let Some(update) = state.pending.take() {
                return Ok(update);
            }
            match deadline {
                Some(deadline) => {
                    if self.changed.wait_until(&mut state, deadline) && state.pending.is_none() && !state.closed {
                        return Err(Error::new(ErrorKind::Timeout, "no update within the timeout"));
                    }
                }
                None => self.changed.wait(&mut state),
            }
        }
    }
}

/// Runs `publishes` and then, once it has returned (so with none of its locks held), the calls its
/// publishes need. With `here` set, the last delivery that needs a call and whose handler was quick
/// last time is called on this thread, which hands its async worker duties to another thread for the
/// call (`tokio::task::block_in_place`): the change reaches the callback with no thread hand-off in
/// between, as etcd's Go resolver calls `UpdateState` in its watch goroutine. Every other call goes
/// to the blocking pool. A watch with one subscriber sets `here`: the call then holds up only that
/// subscriber's next update, which the watch coalesces meanwhile.
pub(crate) fn deliver_here<R>(here: bool, publishes: impl FnOnce() -> R) -> R {
    here::collect(here, publishes)
}

#[cfg(not(gnaming_loom))]
mod here {
    use super::Delivery;
    use std::cell::RefCell;
    use std::sync::Arc;

    thread_local! {
        /// The deliveries waiting for their call, while [`collect`] runs on this thread.
        static WAITING: RefCell<Option<Waiting>> = const { RefCell::new(None) };
    }

    struct Waiting {
        here: bool,
        deliveries: Vec<Arc<Delivery>>,
    }

    /// Takes a delivery whose call should start after the publishes; gives it back when no
    /// [`collect`] runs on this thread.
    pub(super) fn defer(delivery: Arc<Delivery>) -> Result<(), Arc<Delivery>> {
        WAITING.with(|waiting| match waiting.borrow_mut().as_mut() {
            Some(waiting) => {
                waiting.deliveries.push(delivery);
                Ok(())
            }
            None => Err(delivery),
        })
    }

    pub(super) fn collect<R>(here: bool, publishes: impl FnOnce() -> R) -> R {
        let outer = WAITING.with(|w| w.borrow_mut().replace(Waiting { here, deliveries: Vec::new() }));
        // Publishes may panic (a bug): the deliveries collected so far still get their calls.
        struct Run(Option<Waiting>);
        impl Drop for Run {
            fn drop(&mut self) {
                let mine = WAITING.with(|w| std::mem::replace(&mut *w.borrow_mut(), self.0.take()));
                if let Some(mine) = mine {
                    call(mine);
                }
            }
        }
        let _run = Run(outer);
        publishes()
    }

    fn call(waiting: Waiting) {
        let mut deliveries = waiting.deliveries;
        let last = if waiting.here && on_a_worker() { deliveries.pop() } else { None };
        for delivery in deliveries {
            let job = Arc::clone(&delivery);
            delivery.jobs.spawn(move || job.run_calls());
        }
        if let Some(delivery) = last {
            tokio::task::block_in_place(|| delivery.run_calls());
        }
    }

    /// Whether this thread runs a multi-threaded runtime's tasks, whose duties `block_in_place` can
    /// hand to another thread (it cannot on a single-threaded runtime).
    fn on_a_worker() -> bool {
        tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
    }
}

/// The model checker has no async workers: every call goes to a job.
#[cfg(gnaming_loom)]
mod here {
    use super::Delivery;
    use std::sync::Arc;

    pub(super) fn defer(delivery: Arc<Delivery>) -> Result<(), Arc<Delivery>> {
        Err(delivery)
    }

    pub(super) fn collect<R>(_here: bool, publishes: impl FnOnce() -> R) -> R {
        publishes()
    }
}

/// Where delivery jobs run: the runtime's blocking pool (or, under the model checker, loom threads).
#[derive(Clone)]
pub(crate) struct Jobs {
    #[cfg(not(gnaming_loom))]
    runtime: tokio::runtime::Handle,
}

impl Jobs {
    pub(crate) fn on(runtime: tokio::runtime::Handle) -> Self {
        #[cfg(gnaming_loom)]
        drop(runtime);
        Jobs {
            #[cfg(not(gnaming_loom))]
            runtime,
        }
    }

    /// Jobs on loom threads, for the model tests.
    #[cfg(gnaming_loom)]
    pub(crate) fn model() -> Self {
        Jobs {}
    }

    #[cfg(not(gnaming_loom))]
    fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.runtime.spawn_blocking(job);
    }

    #[cfg(gnaming_loom)]
    fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        loom::thread::spawn(job);
    }
}

/// The locks and thread identities the state machine uses: parking_lot and std in the library, loom's
/// under `--cfg gnaming_loom`, behind one parking_lot-shaped interface.
#[cfg(not(gnaming_loom))]
mod sync {
    pub(super) use crate::runtime::CallbackScope;
    pub(super) use std::thread::ThreadId;

    pub(super) fn current_thread() -> ThreadId {
        std::thread::current().id()
    }

    pub(super) fn now() -> std::time::Instant {
        std::time::Instant::now()
    }

    pub(super) fn since(start: std::time::Instant) -> std::time::Duration {
        start.elapsed()
    }

    pub(super) struct Mutex<T>(parking_lot::Mutex<T>);
    pub(super) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(super) fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }
        pub(super) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
        pub(super) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }
    }

    pub(super) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(super) fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }
        pub(super) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            self.0.wait(guard);
        }
        /// Whether the deadline passed.
        pub(super) fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, deadline: std::time::Instant) -> bool {
            self.0.wait_until(guard, deadline).timed_out()
        }
        pub(super) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

#[cfg(gnaming_loom)]
mod sync {
    pub(super) use loom::thread::ThreadId;

    pub(super) fn current_thread() -> ThreadId {
        loom::thread::current().id()
    }

    /// loom does not model time: every call is as slow as can be, so none is deferred.
    pub(super) fn now() {}

    pub(super) fn since(_start: ()) -> std::time::Duration {
        std::time::Duration::MAX
    }

    /// Host callbacks are plain closures in the model; nothing refuses to run inside them.
    pub(super) struct CallbackScope;

    impl CallbackScope {
        pub(super) fn enter() -> Self {
            CallbackScope
        }
    }

    pub(super) struct Mutex<T>(loom::sync::Mutex<T>);

    /// Holds loom's guard in an `Option` so that a condvar wait can move it out and back, which gives
    /// the `&mut guard` shape parking_lot has.
    pub(super) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> std::ops::Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("held")
        }
    }

    impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("held")
        }
    }

    impl<T> Mutex<T> {
        pub(super) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }
        pub(super) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().expect("never poisoned: handler panics are caught")))
        }
        pub(super) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok().map(|guard| MutexGuard(Some(guard)))
        }
    }

    pub(super) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(super) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }
        pub(super) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("held");
            guard.0 = Some(self.0.wait(inner).expect("never poisoned"));
        }
        /// loom does not model time: a timed wait is a wait that reports no timeout.
        pub(super) fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, _deadline: std::time::Instant) -> bool {
            self.wait(guard);
            false
        }
        pub(super) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

#[cfg(all(test, not(gnaming_loom)))]
mod tests {
    use super::*;
    use crate::update::ResolverState;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn update(sequence: u64) -> Update {
        Update { sequence, state: ResolverState::Ok, addresses: Default::default(), service_config: None }
    }

    /// Counts calls and drops, and notices overlapping or out-of-order calls.
    #[derive(Default)]
    struct Seen {
        calls: AtomicUsize,
        drops: AtomicUsize,
        running: AtomicBool,
        overlaps: AtomicUsize,
        last: parking_lot::Mutex<u64>,
        out_of_order: AtomicUsize,
    }

    struct Probe(Arc<Seen>, Duration);

    impl UpdateHandler for Probe {
        fn on_update(&mut self, update: &Arc<Update>) {
            if self.0.running.swap(true, Ordering::SeqCst) {
                self.0.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            let mut last = self.0.last.lock();
            if update.sequence <= *last {
                self.0.out_of_order.fetch_add(1, Ordering::SeqCst);
            }
            *last = update.sequence;
            drop(last);
            std::thread::sleep(self.1);
            self.0.calls.fetch_add(1, Ordering::SeqCst);
            self.0.running.store(false, Ordering::SeqCst);
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.0.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn wait_until(what: &str, f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_slow_handler_sees_serialised_ordered_calls_ending_with_the_latest_update() {
        let rt = crate::runtime::handle().unwrap();
        let seen = Arc::new(Seen::default());
        let d = Delivery::new(Some(Box::new(Probe(seen.clone(), Duration::from_micros(200)))), Jobs::on(rt));
        for s in 1..=2000 {
            d.publish(update(s));
        }
        wait_until("the last update arrived", || *seen.last.lock() == 2000);
        assert_eq!(seen.overlaps.load(Ordering::SeqCst), 0, "calls overlapped");
        assert_eq!(seen.out_of_order.load(Ordering::SeqCst), 0, "calls came out of order");
        assert!(seen.calls.load(Ordering::SeqCst) < 2000, "a slow handler should have had updates coalesced");
        d.close();
        assert_eq!(seen.drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn close_waits_for_a_running_call_and_nothing_is_called_after_it() {
        let rt = crate::runtime::handle().unwrap();
        let seen = Arc::new(Seen::default());
        let d = Delivery::new(Some(Box::new(Probe(seen.clone(), Duration::from_millis(100)))), Jobs::on(rt));
        d.publish(update(1));
        wait_until("the call started", || seen.running.load(Ordering::SeqCst));
        d.publish(update(2));
        d.close();
        assert!(!seen.running.load(Ordering::SeqCst), "close returned while a call was running");
        assert_eq!(seen.drops.load(Ordering::SeqCst), 1, "close returned before the handler was dropped");
        d.publish(update(3));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(seen.calls.load(Ordering::SeqCst), 1, "calls after close");
        d.close();
        assert_eq!(seen.drops.load(Ordering::SeqCst), 1, "a second close dropped again");
    }

    /// Closes its own delivery from inside the call, and records what it saw there for the test's
    /// thread to check (a panic in here would only be caught and logged).
    struct Closer {
        slot: Arc<parking_lot::Mutex<Option<Arc<Delivery>>>>,
        dropped: Arc<AtomicUsize>,
        drops_seen_inside: Arc<AtomicUsize>,
        /// Keeps the call running after its own close, so another closer can arrive meanwhile.
        linger: Duration,
        drop_sleep: Duration,
    }

    impl UpdateHandler for Closer {
        fn on_update(&mut self, _: &Arc<Update>) {
            let d = self.slot.lock().clone().expect("set before publishing");
            d.close();
            std::thread::sleep(self.linger);
            self.drops_seen_inside.fetch_add(self.dropped.load(Ordering::SeqCst), Ordering::SeqCst);
        }
    }

    impl Drop for Closer {
        fn drop(&mut self) {
            std::thread::sleep(self.drop_sleep);
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn closer(linger: Duration, drop_sleep: Duration) -> (Arc<Delivery>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let slot: Arc<parking_lot::Mutex<Option<Arc<Delivery>>>> = Default::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        let drops_seen_inside = Arc::new(AtomicUsize::new(0));
        let handler = Closer {
            slot: slot.clone(),
            dropped: dropped.clone(),
            drops_seen_inside: drops_seen_inside.clone(),
            linger,
            drop_sleep,
        };
        let d = Delivery::new(Some(Box::new(handler)), Jobs::on(crate::runtime::handle().unwrap()));
        *slot.lock() = Some(d.clone());
        (d, dropped, drops_seen_inside)
    }

    /// Runs `f` on another thread and fails the test (instead of hanging it) when it does not return.
    fn within<T: Send + 'static>(what: &str, bound: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(bound).unwrap_or_else(|_| panic!("{what} did not return within {bound:?}"))
    }

    #[test]
    fn close_from_inside_the_call_returns_and_drops_after_the_call() {
        let (d, dropped, drops_seen_inside) = closer(Duration::ZERO, Duration::ZERO);
        d.publish(update(1));
        wait_until("the handler was dropped", || dropped.load(Ordering::SeqCst) == 1);
        assert_eq!(drops_seen_inside.load(Ordering::SeqCst), 0, "dropped while its call was still running");
        d.publish(update(2));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "dropped more than once");
        d.close();
    }

    #[test]
    fn a_close_from_another_thread_racing_a_close_inside_the_call_returns_after_the_drop() {
        for _ in 0..20 {
            let (d, dropped, _) = closer(Duration::from_millis(5), Duration::from_millis(5));
            d.publish(update(1));
            // The outside close arrives while the call, already closed from inside, still runs.
            std::thread::sleep(Duration::from_millis(1));
            let outside = d.clone();
            let seen = dropped.clone();
            let drops_at_return = within("a close racing the call's own close", Duration::from_secs(10), move || {
                outside.close();
                seen.load(Ordering::SeqCst)
            });
            assert_eq!(drops_at_return, 1, "close returned before the handler's drop had run");
        }
    }

    #[test]
    fn concurrent_closes_of_an_idle_delivery_all_return_after_a_slow_drop() {
        struct SlowDrop(Arc<AtomicUsize>);
        impl UpdateHandler for SlowDrop {
            fn on_update(&mut self, _: &Arc<Update>) {}
        }
        impl Drop for SlowDrop {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_millis(20));
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        for _ in 0..10 {
            let dropped = Arc::new(AtomicUsize::new(0));
            let d =
                Delivery::new(Some(Box::new(SlowDrop(dropped.clone()))), Jobs::on(crate::runtime::handle().unwrap()));
            let closers: Vec<_> = (0..4)
                .map(|_| {
                    let (d, dropped) = (d.clone(), dropped.clone());
                    std::thread::spawn(move || {
                        d.close();
                        dropped.load(Ordering::SeqCst)
                    })
                })
                .collect();
            let seen: Vec<usize> = closers.into_iter().map(|t| t.join().unwrap()).collect();
            assert_eq!(seen, vec![1; 4], "drops each closer saw when its close returned");
        }
    }

    #[test]
    fn close_from_inside_the_handlers_drop_returns() {
        struct CloseOnDrop(Arc<parking_lot::Mutex<Option<Arc<Delivery>>>>, Arc<AtomicUsize>);
        impl UpdateHandler for CloseOnDrop {
            fn on_update(&mut self, _: &Arc<Update>) {}
        }
        impl Drop for CloseOnDrop {
            fn drop(&mut self) {
                if let Some(d) = self.0.lock().take() {
                    d.close();
                }
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        let slot: Arc<parking_lot::Mutex<Option<Arc<Delivery>>>> = Default::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = Delivery::new(
            Some(Box::new(CloseOnDrop(slot.clone(), dropped.clone()))),
            Jobs::on(crate::runtime::handle().unwrap()),
        );
        *slot.lock() = Some(d.clone());
        within("close whose drop closes again", Duration::from_secs(10), move || d.close());
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    /// Where each call ran, and for how long each call sleeps.
    struct Where(Arc<parking_lot::Mutex<Vec<std::thread::ThreadId>>>, Arc<parking_lot::Mutex<Duration>>);

    impl UpdateHandler for Where {
        fn on_update(&mut self, _: &Arc<Update>) {
            self.0.lock().push(std::thread::current().id());
            std::thread::sleep(*self.1.lock());
        }
    }

    #[test]
    fn a_quick_handler_is_called_on_the_publishing_worker_and_a_slow_or_unknown_one_on_the_pool() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let calls: Arc<parking_lot::Mutex<Vec<std::thread::ThreadId>>> = Default::default();
        let sleep = Arc::new(parking_lot::Mutex::new(Duration::ZERO));
        let d = Delivery::new(Some(Box::new(Where(calls.clone(), sleep.clone()))), Jobs::on(rt.handle().clone()));
        // Publishes from a task, as a watch does; gives the task's thread and the calls made by the
        // time `deliver_here` returned.
        let publish = |sequence: u64, here: bool| {
            let (d, calls) = (d.clone(), calls.clone());
            rt.block_on(rt.spawn(async move {
                deliver_here(here, || d.publish(update(sequence)));
                (std::thread::current().id(), calls.lock().len())
            }))
            .unwrap()
        };
        let settled =
            |n: usize| wait_until("the call returned", || calls.lock().len() == n && !d.state.lock().scheduled);

        let (worker, _) = publish(1, true);
        settled(1);
        assert_ne!(calls.lock()[0], worker, "a handler never called before must go to the pool");

        let (worker, made) = publish(2, true);
        assert_eq!(made, 2, "a quick handler's call must have run before deliver_here returned");
        assert_eq!(calls.lock()[1], worker, "a quick handler's call must run on the publishing worker");

        let (worker, _) = publish(3, false);
        settled(3);
        assert_ne!(calls.lock()[2], worker, "without `here`, calls go to the pool");

        // Quick last time, so called here, but slow this time: the next call goes to the pool.
        *sleep.lock() = Duration::from_millis(5);
        let (worker, made) = publish(4, true);
        assert_eq!((made, calls.lock()[3]), (4, worker));
        *sleep.lock() = Duration::ZERO;
        let (worker, _) = publish(5, true);
        settled(5);
        assert_ne!(calls.lock()[4], worker, "a handler slow last time must go to the pool");

        // Outside `deliver_here` (another backend publishing), a quick handler goes to the pool too.
        let (worker, _) = rt
            .block_on(rt.spawn({
                let d = d.clone();
                async move {
                    d.publish(update(6));
                    (std::thread::current().id(), ())
                }
            }))
            .unwrap();
        settled(6);
        assert_ne!(calls.lock()[5], worker);
        d.close();
    }

    #[test]
    fn pull_consumers_get_the_latest_update_and_wake_on_close() {
        let rt = crate::runtime::handle().unwrap();
        let d = Delivery::new(None, Jobs::on(rt));
        assert_eq!(d.next(Duration::from_millis(10)).unwrap_err().kind(), ErrorKind::Timeout);
        d.publish(update(1));
        d.publish(update(2));
        assert_eq!(d.next(Duration::from_secs(1)).unwrap().sequence, 2, "the latest update wins");
        let waiter = {
            let d = d.clone();
            std::thread::spawn(move || d.next(Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(20));
        d.close();
        assert_eq!(waiter.join().unwrap().unwrap_err().kind(), ErrorKind::Closed);
    }
}

/// Every interleaving of publish, the calls, `close` (from inside a call and from other threads), the
/// handler's drop and `next`, explored by loom. Run by `make test-loom`.
#[cfg(all(test, gnaming_loom))]
mod model {
    use super::*;
    use crate::update::ResolverState;
    // loom's atomics, so that every step of a handler is a point where loom may switch threads.
    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    fn update(sequence: u64) -> Update {
        Update { sequence, state: ResolverState::Ok, addresses: Default::default(), service_config: None }
    }

    /// What happened to one handler, for the model's own thread to check.
    #[derive(Default)]
    struct Record {
        calls: AtomicUsize,
        running: AtomicBool,
        overlaps: AtomicUsize,
        drops: AtomicUsize,
        drops_while_running: AtomicUsize,
        /// Set by a closer once its close returned: a call starting after it breaks the contract.
        close_returned: AtomicBool,
        calls_after_close: AtomicUsize,
    }

    struct Handler {
        record: Arc<Record>,
        /// When set, the first call closes this delivery from inside.
        close_inside: Option<Arc<OnceLock<Arc<Delivery>>>>,
    }

    impl UpdateHandler for Handler {
        fn on_update(&mut self, _: &Arc<Update>) {
            let r = &self.record;
            if r.close_returned.load(Ordering::SeqCst) {
                r.calls_after_close.fetch_add(1, Ordering::SeqCst);
            }
            if r.running.swap(true, Ordering::SeqCst) {
                r.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            r.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(slot) = &self.close_inside {
                slot.get().expect("set before publishing").close();
            }
            r.running.store(false, Ordering::SeqCst);
        }
    }

    impl Drop for Handler {
        fn drop(&mut self) {
            if self.record.running.load(Ordering::SeqCst) {
                self.record.drops_while_running.fetch_add(1, Ordering::SeqCst);
            }
            self.record.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn delivery(close_inside: bool) -> (Arc<Delivery>, Arc<Record>) {
        let record = Arc::new(Record::default());
        let slot = close_inside.then(|| Arc::new(OnceLock::new()));
        let handler = Handler { record: record.clone(), close_inside: slot.clone() };
        let d = Delivery::new(Some(Box::new(handler)), Jobs::model());
        if let Some(slot) = slot {
            let _ = slot.set(d.clone());
        }
        (d, record)
    }

    /// Closes from another thread and returns what the closer saw at the moment its close returned.
    fn close_on_a_thread(d: &Arc<Delivery>, record: &Arc<Record>) -> loom::thread::JoinHandle<(usize, bool)> {
        let (d, record) = (d.clone(), record.clone());
        loom::thread::spawn(move || {
            d.close();
            record.close_returned.store(true, Ordering::SeqCst);
            (record.drops.load(Ordering::SeqCst), record.running.load(Ordering::SeqCst))
        })
    }

    fn check_after_close(record: &Record, seen_by_closers: &[(usize, bool)]) {
        for &(drops, running) in seen_by_closers {
            assert_eq!(drops, 1, "a close returned before the handler was dropped");
            assert!(!running, "a close returned while a call was running");
        }
        assert_eq!(record.drops.load(Ordering::SeqCst), 1, "handler dropped other than once");
        assert_eq!(record.overlaps.load(Ordering::SeqCst), 0, "calls overlapped");
        assert_eq!(record.drops_while_running.load(Ordering::SeqCst), 0, "dropped during a call");
        assert_eq!(record.calls_after_close.load(Ordering::SeqCst), 0, "a call started after close returned");
    }

    #[test]
    fn a_close_inside_the_call_racing_a_close_from_another_thread() {
        loom::model(|| {
            let (d, record) = delivery(true);
            d.publish(update(1));
            let outside = close_on_a_thread(&d, &record);
            let seen = outside.join().unwrap();
            check_after_close(&record, &[seen]);
        });
    }

    #[test]
    fn two_closers_racing_two_publishes() {
        loom::model(|| {
            let (d, record) = delivery(false);
            d.publish(update(1));
            let first = close_on_a_thread(&d, &record);
            d.publish(update(2));
            let second = close_on_a_thread(&d, &record);
            let seen = [first.join().unwrap(), second.join().unwrap()];
            check_after_close(&record, &seen);
            assert!(record.calls.load(Ordering::SeqCst) <= 2);
        });
    }

    #[test]
    fn a_publish_racing_a_close_on_the_callers_thread() {
        loom::model(|| {
            let (d, record) = delivery(false);
            let publisher = {
                let d = d.clone();
                loom::thread::spawn(move || d.publish(update(1)))
            };
            d.close();
            record.close_returned.store(true, Ordering::SeqCst);
            let seen = (record.drops.load(Ordering::SeqCst), record.running.load(Ordering::SeqCst));
            publisher.join().unwrap();
            check_after_close(&record, &[seen]);
        });
    }

    #[test]
    fn a_waiting_next_is_woken_by_close_or_gets_the_update() {
        loom::model(|| {
            let d = Delivery::new(None, Jobs::model());
            let waiter = {
                let d = d.clone();
                loom::thread::spawn(move || d.next(Duration::MAX).map(|u| u.sequence).map_err(|e| e.kind()))
            };
            d.publish(update(7));
            d.close();
            match waiter.join().unwrap() {
                Ok(sequence) => assert_eq!(sequence, 7),
                Err(kind) => assert_eq!(kind, ErrorKind::Closed),
            }
        });
    }
}
