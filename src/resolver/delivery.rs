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
            state: Mutex::new(State { pending: None, closed: false, scheduled: false, calling: None, closed_inside_call: false, handler }),
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
            std::mem::forget(state.handler.take());
        }
    }

    /// Pull consumers: waits up to `timeout` for an update newer than the last one taken.
    pub(crate) fn next(&self, timeout: Duration) -> Result<Arc<Update>, Error> {
        if self.push {
            return Err(Error::new(ErrorKind::BadState, "this resolver delivers to a callback; next() is for resolvers started without one"));
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
                    if self.changed.wait_until(&mut state, deadline).timed_out() && state.pending.is_none() && !state.closed {
                        return Err(Error::new(ErrorKind::Timeout, "no update within the timeout"));
                    }
                }
                None => self.changed.wait(&mut state),
            }
        }
    }
}
