//! Delivery of updates to one consumer, push or pull, with the closure contract the C header promises:
//! calls are serialised and in order, the latest state wins when the consumer is slower than the
//! source, `close` waits for a running call (unless made from inside it) and no call starts after it,
//! and the handler is dropped exactly once, after its last call. Callbacks run on the runtime's
//! blocking pool, never on an async worker and never while a lock is held.

use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::runtime::Handle;

use crate::error::{Error, ErrorKind};
use crate::runtime::CallbackScope;
use crate::update::Update;

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
    runtime: Handle,
}

struct State {
    pending: Option<Arc<Update>>,
    closed: bool,
    /// A delivery job is scheduled or running on the blocking pool.
    scheduled: bool,
    /// The thread inside the handler right now.
    calling: Option<ThreadId>,
    /// `close` was called by the running call itself; that call's job drops the handler.
    closed_inside_call: bool,
    /// Taken out while a call runs, so the call runs without the lock.
    handler: Option<Box<dyn UpdateHandler>>,
}

impl Delivery {
    /// `handler: None` makes a pull consumer, read with [`Delivery::next`].
    pub(crate) fn new(handler: Option<Box<dyn UpdateHandler>>, runtime: Handle) -> Arc<Self> {
        Arc::new(Delivery {
            push: handler.is_some(),
            state: Mutex::new(State {
                pending: None,
                closed: false,
                scheduled: false,
                calling: None,
                closed_inside_call: false,
                handler,
            }),
            changed: Condvar::new(),
            runtime,
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
            drop(state);
            let this = Arc::clone(self);
            self.runtime.spawn_blocking(move || this.run_calls());
        }
    }

    fn run_calls(&self) {
        let mut state = self.state.lock();
        loop {
            if state.closed {
                state.scheduled = false;
                return;
            }
            let Some(update) = state.pending.take() else {
                state.scheduled = false;
                return;
            };
            let Some(mut handler) = state.handler.take() else {
                state.scheduled = false;
                return;
            };
            state.calling = Some(std::thread::current().id());
            drop(state);

            let outcome = {
                let _scope = CallbackScope::enter();
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.on_update(&update)))
            };
            if outcome.is_err() {
                tracing::error!("an update handler panicked; the panic was contained");
            }

            state = self.state.lock();
            state.calling = None;
            if state.closed && state.closed_inside_call {
                // Nobody waits for this call: it was the last one, and its job drops the handler.
                state.scheduled = false;
                drop(state);
                drop(handler);
                return;
            }
            // A closer on another thread takes the handler back and drops it before returning.
            state.handler = Some(handler);
            self.changed.notify_all();
        }
    }

    /// Stops delivery. Waits for a call running on another thread, then drops the handler; from inside
    /// a call it returns at once and the handler is dropped when that call returns. Idempotent: a
    /// second close also waits for a running call.
    pub(crate) fn close(&self) {
        let me = std::thread::current().id();
        let mut state = self.state.lock();
        if !state.closed {
            state.closed = true;
            state.pending = None;
            state.closed_inside_call = state.calling == Some(me);
            self.changed.notify_all();
        }
        if state.calling == Some(me) {
            return;
        }
        while state.calling.is_some() {
            self.changed.wait(&mut state);
        }
        let handler = state.handler.take();
        drop(state);
        drop(handler);
    }

    /// Closes a delivery inherited through fork: its threads do not exist here, so nothing is waited
    /// for and the handler is forgotten (the parent process still owns it).
    pub(crate) fn abandon(&self) {
        if let Some(mut state) = self.state.try_lock() {
            state.closed = true;
            if let Some(handler) = state.handler.take() {
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
                    if self.changed.wait_until(&mut state, deadline).timed_out()
                        && state.pending.is_none()
                        && !state.closed
                    {
                        return Err(Error::new(ErrorKind::Timeout, "no update within the timeout"));
                    }
                }
                None => self.changed.wait(&mut state),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::ResolverState;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn update(sequence: u64) -> Update {
        Update { sequence, state: ResolverState::Ok, endpoints: vec![], service_config: None }
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
        let d = Delivery::new(Some(Box::new(Probe(seen.clone(), Duration::from_micros(200)))), rt);
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
        let d = Delivery::new(Some(Box::new(Probe(seen.clone(), Duration::from_millis(100)))), rt);
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

    #[test]
    fn close_from_inside_the_call_returns_and_drops_after_the_call() {
        let rt = crate::runtime::handle().unwrap();
        let dropped = Arc::new(AtomicUsize::new(0));
        let slot: Arc<parking_lot::Mutex<Option<Arc<Delivery>>>> = Default::default();
        struct Closer(Arc<parking_lot::Mutex<Option<Arc<Delivery>>>>, Arc<AtomicUsize>);
        impl UpdateHandler for Closer {
            fn on_update(&mut self, _: &Arc<Update>) {
                let d = self.0.lock().clone().expect("set before publishing");
                d.close();
                assert_eq!(self.1.load(Ordering::SeqCst), 0, "dropped while its call was running");
            }
        }
        impl Drop for Closer {
            fn drop(&mut self) {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        let d = Delivery::new(Some(Box::new(Closer(slot.clone(), dropped.clone()))), rt);
        *slot.lock() = Some(d.clone());
        d.publish(update(1));
        wait_until("the handler was dropped", || dropped.load(Ordering::SeqCst) == 1);
        d.publish(update(2));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        slot.lock().take();
    }

    #[test]
    fn pull_consumers_get_the_latest_update_and_wake_on_close() {
        let rt = crate::runtime::handle().unwrap();
        let d = Delivery::new(None, rt);
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
