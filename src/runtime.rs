//! The process-wide background tokio runtime: started lazily on first use, sized once, shut down on
//! request (closing every live object first), and replaced by a fresh one in a forked child. Each
//! installed runtime has a generation; objects are tracked against the generation they started on, so
//! none can slip past a shutdown onto a runtime that is stopping.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, ErrorKind};

/// Worker threads when the host configures none.
pub const DEFAULT_WORKERS: usize = 2;
/// The most worker threads a host may ask for.
pub const MAX_WORKERS: usize = 256;
/// Callbacks run on the blocking pool; this bounds its threads when many resolvers deliver at once
/// (further deliveries queue; each resolver's calls stay serialised either way).
const MAX_CALLBACK_THREADS: usize = 64;

/// Something the runtime must close before it shuts down (resolvers, registrations).
pub(crate) trait Closable: Send + Sync {
    fn close(&self);
}

struct Installed {
    runtime: Runtime,
    pid: u32,
    generation: u64,
}

struct Global {
    installed: Option<Installed>,
    live: Vec<Weak<dyn Closable>>,
    /// What a forked child inherited and must never drop (the parent's runtime and closures); kept
    /// reachable rather than leaked, so leak checkers see it as held.
    abandoned: Vec<Box<dyn std::any::Any + Send>>,
    /// A shutdown is under way, from taking the live objects until the runtime has stopped: nothing may
    /// be tracked and no new runtime may start meanwhile, so nothing of the stopping runtime is shared
    /// with a new one. One shutdown at a time: a second must not stop the runtime while the first still
    /// closes objects that need it, nor return before it has stopped.
    shutting_down: bool,
}

static GLOBAL: Mutex<Global> =
    Mutex::new(Global { installed: None, live: Vec::new(), abandoned: Vec::new(), shutting_down: false });
static WORKERS: AtomicUsize = AtomicUsize::new(DEFAULT_WORKERS);
static ATFORK: Once = Once::new();
/// The generation of the next runtime installed; 0 is never used, so it can mean "none".
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);
/// Signalled when a shutdown ends, for a second one waiting to begin.
static SHUTDOWN_ENDED: Condvar = Condvar::new();

thread_local! {
    /// Set while this thread runs a host callback, so calls that would wait on that callback refuse.
    static IN_CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Set while this thread runs [`shutdown`] (whose closes run host `drop`s that might call it again).
    static IN_SHUTDOWN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the current thread as inside a host callback until the guard drops.
pub(crate) struct CallbackScope(bool);

impl CallbackScope {
    pub(crate) fn enter() -> Self {
        CallbackScope(IN_CALLBACK.with(|c| c.replace(true)))
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        IN_CALLBACK.with(|c| c.set(self.0));
    }
}

pub(crate) fn in_callback() -> bool {
    IN_CALLBACK.with(|c| c.get())
}

/// Sets the number of worker threads; only before the runtime has started (or after a shutdown).
pub fn configure(workers: usize) -> Result<(), Error> {
    if workers == 0 || workers > MAX_WORKERS {
        return Err(Error::invalid_argument(format!("worker threads must be from 1 to {MAX_WORKERS}, got {workers}")));
    }
    let global = GLOBAL.lock();
    if matches!(&global.installed, Some(i) if i.pid == std::process::id()) {
        return Err(Error::new(ErrorKind::BadState, "the runtime is already running; configure it before first use"));
    }
    WORKERS.store(workers, Ordering::Relaxed);
    Ok(())
}

/// Whether the runtime is running in this process.
pub fn is_running() -> bool {
    matches!(&GLOBAL.lock().installed, Some(i) if i.pid == std::process::id())
}

/// The runtime's handle, starting the runtime if needed. In a forked child the parent's runtime has
/// no threads: it is abandoned (never dropped, since dropping would wait for threads that do not
/// exist) and a fresh one is started. During a shutdown this is still the stopping runtime, which the
/// closes under way need (and then `Closed` once it is stopping); new objects start through [`home`].
pub fn handle() -> Result<Handle, Error> {
    installed().map(|(home, _)| home.handle)
}

/// Where a new object runs: the runtime's handle and the generation it must be tracked against.
pub(crate) struct Home {
    pub(crate) handle: Handle,
    generation: u64,
}

impl Home {
    /// Which runtime this is; another one installed later has a different generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

/// The runtime for a new object, starting it if needed. Fails with `Closed` while a shutdown runs: an
/// object started now would outlive the runtime it runs on.
pub(crate) fn home() -> Result<Home, Error> {
    match installed()? {
        (_, true) => Err(shutting_down()),
        (home, false) => Ok(home),
    }
}

fn shutting_down() -> Error {
    Error::new(
        ErrorKind::Closed,
        "the runtime is shutting down (gn_runtime_shutdown runs); start again after it returns",
    )
}

/// The running runtime (started if needed) and whether a shutdown is under way.
fn installed() -> Result<(Home, bool), Error> {
    ATFORK.call_once(install_atfork);
    let mut global = GLOBAL.lock();
    let pid = std::process::id();
    if let Some(installed) = &global.installed {
        if installed.pid == pid {
            let home = Home { handle: installed.runtime.handle().clone(), generation: installed.generation };
            return Ok((home, global.shutting_down));
        }
        let stale = global.installed.take().expect("checked above");
        // Objects inherited from the parent belong to it; the child keeps them without touching them.
        let live = std::mem::take(&mut global.live);
        global.abandoned.push(Box::new(stale.runtime));
        global.abandoned.push(Box::new(live));
    }
    if global.shutting_down {
        // The old runtime is still stopping: a new one starts once it has stopped.
        return Err(shutting_down());
    }
    crate::log::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS.load(Ordering::Relaxed))
        .max_blocking_threads(MAX_CALLBACK_THREADS)
        .thread_name("gnaming")
        .on_thread_start(block_sigpipe)
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::Runtime, format!("cannot start the background runtime: {e}")))?;
    let handle = runtime.handle().clone();
    let generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
    global.installed = Some(Installed { runtime, pid, generation });
    Ok((Home { handle, generation }, false))
}

/// Blocks SIGPIPE on the calling (library) thread, so that a write to a connection the peer closed
/// fails with EPIPE instead. Hosts that do not ignore SIGPIPE would otherwise die of it: Go, for one,
/// gives a SIGPIPE raised on a thread it did not start the default action, which ends the process.
fn block_sigpipe() {
    // SAFETY: plain libc calls on a local signal set; they change only this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Keeps something inherited through fork alive, untouched, for the rest of the process.
pub(crate) fn abandon(inherited: Box<dyn std::any::Any + Send>) {
    GLOBAL.lock().abandoned.push(inherited);
}

/// Registers an object started on `home` to be closed by [`shutdown`]. Fails with `Closed` when a
/// shutdown has begun since (it would never close this object) or that runtime is gone, so the caller
/// closes what it started and reports the error.
pub(crate) fn track<T: Closable + 'static>(object: &Arc<T>, home: &Home) -> Result<(), Error> {
    let mut global = GLOBAL.lock();
    if global.shutting_down || !matches!(&global.installed, Some(i) if i.generation == home.generation) {
        return Err(shutting_down());
    }
    let weak: Weak<T> = Arc::downgrade(object);
    global.live.retain(|w| w.strong_count() > 0);
    global.live.push(weak);
    Ok(())
}

/// Closes every live object, then stops the runtime, waiting at most `timeout` for its tasks. Objects
/// starting meanwhile fail with `Closed` (see [`track`]); a second shutdown waits for this one to end.
/// Refused from a callback or a runtime thread, where waiting would deadlock, and from a `drop` that a
/// shutdown runs.
pub fn shutdown(timeout: Duration) -> Result<(), Error> {
    if in_callback() || Handle::try_current().is_ok() || IN_SHUTDOWN.with(|s| s.get()) {
        return Err(Error::new(
            ErrorKind::BadState,
            "shutdown cannot be called from a callback, a runtime thread or a drop that a shutdown runs",
        ));
    }
    let mut global = GLOBAL.lock();
    while global.shutting_down {
        SHUTDOWN_ENDED.wait(&mut global);
    }
    global.shutting_down = true;
    let generation = global.installed.as_ref().map(|i| i.generation);
    let live = std::mem::take(&mut global.live);
    drop(global);
    let _end = ShutdownScope::enter();
    for object in live.iter().filter_map(Weak::upgrade) {
        object.close();
    }
    let installed = {
        let mut global = GLOBAL.lock();
        match &global.installed {
            Some(i) if Some(i.generation) == generation => global.installed.take(),
            _ => None,
        }
    };
    if let Some(installed) = installed {
        if installed.pid == std::process::id() {
            installed.runtime.shutdown_timeout(timeout);
        } else {
            GLOBAL.lock().abandoned.push(Box::new(installed.runtime));
        }
    }
    Ok(())
}

/// Marks this thread as running a shutdown; on the way out (also by a panic) ends the shutdown and
/// lets a waiting one begin.
struct ShutdownScope;

impl ShutdownScope {
    fn enter() -> Self {
        IN_SHUTDOWN.with(|s| s.set(true));
        ShutdownScope
    }
}

impl Drop for ShutdownScope {
    fn drop(&mut self) {
        IN_SHUTDOWN.with(|s| s.set(false));
        GLOBAL.lock().shutting_down = false;
        SHUTDOWN_ENDED.notify_all();
    }
}

/// Keeps the global lock consistent across fork: the child must not inherit it locked by a thread
/// that does not exist there.
fn install_atfork() {
    extern "C" fn prepare() {
        std::mem::forget(GLOBAL.lock());
    }
    extern "C" fn release() {
        // SAFETY: `prepare` left the lock held by this very thread (in the child, its only thread).
        unsafe { GLOBAL.force_unlock() };
    }
    extern "C" fn child() {
        // A shutdown running on another thread of the parent never ends here; one running on this
        // thread ends by itself either way.
        // SAFETY: as in `release`: the lock is held by this thread, so the state may be changed.
        unsafe { (*GLOBAL.data_ptr()).shutting_down = false };
        release();
    }
    // SAFETY: the handlers are plain functions that live as long as the library.
    unsafe { libc::pthread_atfork(Some(prepare), Some(release), Some(child)) };
}

/// Whether `pid` (recorded when an object started) is this process, i.e. the object was not
/// inherited through fork.
pub(crate) fn is_own(pid: u32) -> bool {
    pid == std::process::id()
}

/// Runs `f` on the runtime as a task and waits for its result on this (non-runtime) thread.
/// Never `block_on`: the caller's thread only parks on a channel.
pub(crate) fn run_and_wait<T, F>(future: F, timeout: Duration) -> Result<T, Error>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    if Handle::try_current().is_ok() {
        return Err(Error::new(ErrorKind::BadState, "this call blocks and cannot run on a runtime thread"));
    }
    let handle = handle()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv_timeout(timeout).map_err(|e| match e {
        std::sync::mpsc::RecvTimeoutError::Timeout => Error::new(ErrorKind::Timeout, "timed out"),
        std::sync::mpsc::RecvTimeoutError::Disconnected => Error::new(ErrorKind::Closed, "the runtime shut down"),
    })
}
