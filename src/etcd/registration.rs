//! Registration: a server's `<service>/<addr>` key (or a Go framework's key and document) under a lease
//! kept alive in the background, written after an optional warm-up, re-granted and re-put forever when
//! the lease or the key is lost, removed at close or drain.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use etcd_client::PutOptions;
use parking_lot::{Condvar, Mutex};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use super::backoff::Backoff;
use super::cluster::{self, Cluster};
use super::frameworks;
use super::stats::{bump, Gauge, STATS};
use super::value::{self, ValueFormat};
use super::watcher::{self, SharedWatch};
use crate::error::{Error, ErrorKind};
use crate::runtime::{self, Closable};

pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// How long `Drop` (and `gn_registration_free`) waits for etcd to confirm the removal.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Retry pauses stay short so that registrations are back soon after etcd is.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// How to register.
#[derive(Debug, Clone)]
pub struct RegistrationOptions {
    /// "" for the default cluster, a configured cluster name, or "host:port".
    pub cluster: String,
    pub ttl: Duration,
    /// Written as the value's `Metadata`.
    pub metadata: Option<serde_json::Value>,
    /// Write a bare `host:port` instead of etcd's naming JSON.
    pub raw_value: bool,
    /// The document and key layout: etcd's (`<service>/<addr>`), or a Go framework's so that its own
    /// discovery finds the server (src/etcd/frameworks.rs).
    pub format: ValueFormat,
    /// How long to wait before writing anything to etcd, so clients reach the server only once it is
    /// warm (caches filled, connections made).
    pub warmup: Duration,
}

impl Default for RegistrationOptions {
    fn default() -> Self {
        RegistrationOptions {
            cluster: String::new(),
            ttl: DEFAULT_TTL,
            metadata: None,
            raw_value: false,
            format: ValueFormat::Etcd,
            warmup: Duration::ZERO,
        }
    }
}

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not yet in etcd: the first attempt is under way or failed and is being retried.
    Registering,
    /// The key is in etcd under a live lease.
    Registered,
    /// The key was lost (lease expired, etcd unreachable, key deleted) and is being put back.
    Retrying,
    /// Closed by the host.
    Closed,
    /// Waiting out the warm-up: nothing is in etcd yet.
    WarmingUp,
}

/// A registration's state and the wake-up of those waiting on it, shared by the etcd and ZooKeeper
/// registrations: `Closed` is final, and the `registrations_registered` gauge follows every move in
/// and out of `Registered`.
pub(crate) struct StateCell {
    state: Mutex<RegistrationState>,
    changed: Condvar,
}

impl StateCell {
    /// Starts in `WarmingUp` when there is a warm-up, else in `Registering`.
    pub(crate) fn new(warmup: Duration) -> Self {
        let first = if warmup.is_zero() { RegistrationState::Registering } else { RegistrationState::WarmingUp };
        StateCell { state: Mutex::new(first), changed: Condvar::new() }
    }

    pub(crate) fn get(&self) -> RegistrationState {
        *self.state.lock()
    }

    /// The state, locked: a closer waits for what is done under it.
    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, RegistrationState> {
        self.state.lock()
    }

    pub(crate) fn set(&self, new: RegistrationState) {
        let mut state = self.state.lock();
        if *state == new || *state == RegistrationState::Closed {
            return;
        }
        if new == RegistrationState::Registered {
            STATS.registrations_registered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else if *state == RegistrationState::Registered {
            STATS.registrations_registered.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        *state = new;
        self.changed.notify_all();
    }

    /// Waits until registered (`Ok`), closed (`Closed`) or `timeout` passes (`Timeout`, naming
    /// `what`; `None` waits without limit).
    pub(crate) fn wait(&self, timeout: Option<Duration>, what: &str) -> Result<(), Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.state.lock();
        loop {
            match *state {
                RegistrationState::Registered => return Ok(()),
                RegistrationState::Closed => return Err(Error::new(ErrorKind::Closed, "the registration is closed")),
                _ => {}
            }
            match deadline {
                None => self.changed.wait(&mut state),
                Some(deadline) => {
                    if self.changed.wait_until(&mut state, deadline).timed_out() {
                        return match *state {
                            RegistrationState::Registered => Ok(()),
                            _ => Err(Error::new(ErrorKind::Timeout, format!("'{what}' is not registered yet"))),
                        };
                    }
                }
            }
        }
    }
}

/// A registered address. Dropping it closes it.
pub struct Registration {
    core: Arc<Core>,
}

struct Core {
    key: String,
    cluster: Arc<Cluster>,
    group: Mutex<Option<Arc<LeaseGroup>>>,
    state: StateCell,
    task: Mutex<Option<AbortHandle>>,
    /// The prefix's shared watch, told of the deletion at close so that resolvers starting after it
    /// do not first see the key (the task that holds the watch is gone by then).
    watch: Weak<SharedWatch>,
    /// Serialises closers: the second waits for the first and then finds the registration closed.
    closing: Mutex<()>,
    /// The lease's TTL: past it an unrenewed lease has expired, which bounds a drain's retries.
    ttl: Duration,
    /// When the drain period of the deletion ends (set under `closing` by the call that deleted), so
    /// that a second drain waits as long as the first.
    drain_end: Mutex<Option<Instant>>,
    pid: u32,
    _active: Gauge,
}

impl Registration {
    /// Starts registering `address` under `service` and returns at once; see [`Registration::wait`].
    pub fn start(service: &str, address: &str, options: &RegistrationOptions) -> Result<Self, Error> {
        if service.is_empty() || service.ends_with('/') {
            return Err(Error::invalid_argument(format!("service '{service}' must be non-empty and not end in '/'")));
        }
        value::validate_address(address).map_err(Error::invalid_argument)?;
        if options.ttl < MIN_TTL {
            return Err(Error::invalid_argument(format!("TTL {:?} is below the minimum {MIN_TTL:?}", options.ttl)));
        }
        let (prefix, key, value) = match options.format {
            ValueFormat::Etcd => {
                let value = value::format(address, options.metadata.as_ref(), options.raw_value);
                (format!("{service}/"), format!("{service}/{address}"), value)
            }
            _ if options.raw_value => {
                return Err(Error::invalid_argument("a bare host:port value is etcd's format, not a framework's"))
            }
            framework => {
                let doc = frameworks::document(framework, service, address, options.metadata.as_ref())
                    .map_err(Error::invalid_argument)?;
                (doc.prefix, doc.key, doc.value)
            }
        };
        let home = runtime::home()?;
        let cluster = cluster::for_name(&options.cluster)?;
        let watch = watcher::subscribe(&cluster, &prefix)?;
        let core = Arc::new(Core {
            key,
            cluster,
            group: Mutex::new(None),
            state: StateCell::new(options.warmup),
            task: Mutex::new(None),
            watch: Arc::downgrade(&watch),
            closing: Mutex::new(()),
            ttl: options.ttl,
            drain_end: Mutex::new(None),
            pid: std::process::id(),
            _active: Gauge::up(&STATS.registrations_active),
        });
        // Closers wait while the registration is tracked, joins its group and spawns its task: a
        // shutdown, which may close it as soon as it is tracked, then finds it whole. Tracking fails
        // once a shutdown has begun (it would never close this one); nothing has started by then.
        let serial = core.closing.lock();
        runtime::track(&core, &home)?;
        let task = if options.warmup.is_zero() {
            let group = LeaseGroup::join(&core.cluster, options.ttl, &home);
            *core.group.lock() = Some(Arc::clone(&group));
            home.handle.spawn(hold(Arc::clone(&core), group, watch, value))
        } else {
            // Not even the lease is granted during the warm-up: a close then has nothing to remove.
            home.handle.spawn(warm_up(Arc::clone(&core), options.warmup, options.ttl, watch, value))
        };
        *core.task.lock() = Some(task.abort_handle());
        drop(serial);
        Ok(Registration { core })
    }

    /// The key this registration writes.
    pub fn key(&self) -> &str {
        &self.core.key
    }

    pub fn state(&self) -> RegistrationState {
        self.core.state.get()
    }

    /// Waits until registered (`Ok`), closed (`Closed`) or `timeout` passes (`Timeout`; `None`
    /// waits without limit).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<(), Error> {
        self.core.state.wait(timeout, &self.core.key)
    }

    /// Removes the key (and the lease, when no other registration shares it) and waits up to
    /// `timeout` for etcd to confirm. Idempotent and thread-safe; the state is `Closed` afterwards.
    pub fn close(&self, timeout: Duration) -> Result<(), Error> {
        self.core.close_with(timeout)
    }

    /// Takes the address out of discovery, then waits `drain` so that clients stop picking it while
    /// the server still answers: closes as [`Registration::close`] does, but retries the deletion
    /// while etcd is unreachable (for up to `timeout` in this call, then for a TTL more in the
    /// background), and waits `drain` from etcd's confirmation (or from `timeout`, whose error it then
    /// returns). Nothing was in etcd during a warm-up, so draining then closes and returns at once; a
    /// second drain waits until the first one's period ends. Blocks: refused inside a callback or on a
    /// runtime thread.
    pub fn drain(&self, drain: Duration, timeout: Duration) -> Result<(), Error> {
        if runtime::in_callback() || tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::new(
                ErrorKind::BadState,
                "a drain waits for clients and cannot run inside a callback or on a library thread; close instead",
            ));
        }
        let removed = self.core.remove(timeout, drain, self.core.ttl);
        let end = *self.core.drain_end.lock();
        if let Some(end) = end {
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
        }
        removed
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Err(e) = self.core.close_with(DEFAULT_CLOSE_TIMEOUT) {
            tracing::warn!("closing the registration of '{}': {e}", self.core.key);
        }
    }
}

impl Closable for Core {
    fn close(&self) {
        if let Err(e) = self.close_with(DEFAULT_CLOSE_TIMEOUT) {
            tracing::warn!("closing the registration of '{}': {e}", self.key);
        }
    }
}

impl Core {
    fn set_state(&self, new: RegistrationState) {
        self.state.set(new)
    }

    fn close_with(&self, timeout: Duration) -> Result<(), Error> {
        self.remove(timeout, Duration::ZERO, Duration::ZERO)
    }

    /// Closes: deletes the key and revokes the lease when this was its last registration, trying
    /// again while etcd is unreachable until `retry_for` past `timeout` (one attempt per member when
    /// zero), and records when the `drain` period after the deletion ends.
    fn remove(&self, timeout: Duration, drain: Duration, retry_for: Duration) -> Result<(), Error> {
        let _serial = self.closing.lock();
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        let group = self.group.lock().take();
        self.set_state(RegistrationState::Closed);
        let Some(group) = group else { return Ok(()) };
        if !runtime::is_own(self.pid) {
            // Inherited through fork: the key and the lease belong to the parent.
            return Ok(());
        }
        // Leave the group now rather than once etcd answers: the answer may never come (a timed-out
        // close, a shutdown), and a registration starting later must not join a group left behind.
        let revoke = group.leave();
        let cluster = Arc::clone(&self.cluster);
        let key = self.key.clone();
        let watch = Weak::clone(&self.watch);
        let give_up = (!retry_for.is_zero()).then(|| Instant::now() + timeout + retry_for);
        let work = async move {
            let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
            let (mut deleted, mut revoke) = (false, revoke);
            loop {
                let mut outcome = Ok(());
                if !deleted {
                    let k = key.clone();
                    let resp = cluster
                        .call("delete", move |mut c| {
                            let k = k.clone();
                            async move { c.delete(k, None).await }
                        })
                        .await;
                    match resp {
                        Ok(resp) => {
                            deleted = true;
                            if let Some(watch) = watch.upgrade() {
                                watch.saw_write(resp.header().map_or(0, |h| h.revision()));
                            }
                        }
                        Err(e) => outcome = Err(e),
                    }
                }
                if let (Some(lease), true) = (revoke, outcome.is_ok()) {
                    outcome = cluster
                        .call("lease revoke", move |mut c| async move { c.lease_revoke(lease).await })
                        .await
                        .map(|_| revoke = None);
                }
                let pause = backoff.next();
                let retry = give_up.is_some_and(|t| Instant::now() + pause < t);
                match outcome {
                    Err(e) if retry && e.kind() == ErrorKind::Unavailable => {
                        tracing::warn!("removing '{key}' (attempt {}): {e}; retrying in {pause:?}", backoff.attempts);
                        tokio::time::sleep(pause).await;
                    }
                    outcome => return outcome,
                }
            }
        };
        if runtime::in_callback() || tokio::runtime::Handle::try_current().is_ok() {
            // Waiting here could hold up the very thread etcd's answer needs: finish in the background.
            runtime::handle()?.spawn(work);
            return Ok(());
        }
        let removed = runtime::run_and_wait(work, timeout)
            .map_err(|e| match e.kind() {
                ErrorKind::Timeout => Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "etcd did not confirm the removal of '{}' in {timeout:?}; it goes on in the background",
                        self.key
                    ),
                ),
                _ => e,
            })
            .and_then(|r| r);
        *self.drain_end.lock() = Some(Instant::now() + drain);
        removed
    }
}

/// Waits out the warm-up, then joins the lease group and holds the key as [`hold`] does, unless the
/// registration was closed meanwhile.
async fn warm_up(core: Arc<Core>, warmup: Duration, ttl: Duration, watch: Arc<SharedWatch>, value: String) {
    tokio::time::sleep(warmup).await;
    // Before `closing`: a shutdown holds the runtime's lock while it closes registrations.
    let Ok(home) = runtime::home() else { return };
    let group = {
        let _serial = core.closing.lock();
        if core.state.get() == RegistrationState::Closed {
            return;
        }
        let group = LeaseGroup::join(&core.cluster, ttl, &home);
        *core.group.lock() = Some(Arc::clone(&group));
        core.set_state(RegistrationState::Registering);
        group
    };
    hold(core, group, watch, value).await
}

/// Puts the key under the group's current lease and keeps it there.
async fn hold(core: Arc<Core>, group: Arc<LeaseGroup>, watch: Arc<SharedWatch>, value: String) {
    let mut leases = group.lease.clone();
    // Only deletions of our own key wake us, not every change of the service's other keys.
    let mut deletions = watch.guard(&core.key);
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
    let mut registered_before = false;
    loop {
        let LeaseState::Granted(lease) = *leases.borrow_and_update() else {
            if registered_before {
                core.set_state(RegistrationState::Retrying);
            }
            if leases.changed().await.is_err() {
                return;
            }
            continue;
        };
        let (key, v) = (core.key.clone(), value.clone());
        let put = {
            let _turn = core.cluster.registration_writes.acquire().await;
            core.cluster
                .call("put", move |mut c| {
                    let (key, v) = (key.clone(), v.clone());
                    async move { c.put(key, v, Some(PutOptions::new().with_lease(lease))).await }
                })
                .await
        };
        let put_revision = match put {
            Ok(resp) => {
                let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
                // Resolvers of this process that start from now on must see this key.
                watch.saw_write(revision);
                revision
            }
            Err(e) => {
                let pause = backoff.next();
                tracing::warn!("registering '{}' (attempt {}): {e}; retrying in {pause:?}", core.key, backoff.attempts);
                if registered_before {
                    core.set_state(RegistrationState::Retrying);
                }
                if e.kind() == ErrorKind::NotFound {
                    // The lease is gone although its keep-alive has not noticed yet.
                    group.report_lost(lease);
                }
                let _ = tokio::time::timeout(pause, leases.changed()).await;
                continue;
            }
        };
        if registered_before {
            bump(&STATS.reregistrations);
            tracing::info!("'{}' registered again (lease {lease:x})", core.key);
        }
        registered_before = true;
        backoff.reset();
        core.set_state(RegistrationState::Registered);
        loop {
            tokio::select! {
                changed = leases.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if *leases.borrow() != LeaseState::Granted(lease) {
                        break;
                    }
                }
                deleted = deletions.deleted() => {
                    let Some(revision) = deleted else { return };
                    if revision == watcher::REWOUND {
                        // The put's revision belongs to a past the cluster no longer has.
                        tracing::warn!("'{}': etcd went back to an older revision; putting it again", core.key);
                        break;
                    }
                    // A deletion older than our put (say, of the key under a lost lease) is history.
                    if revision > put_revision {
                        tracing::warn!("'{}' was deleted from etcd by someone else; putting it back", core.key);
                        break;
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseState {
    Pending,
    Granted(i64),
    Lost,
}

/// One lease and one keep-alive stream for every registration with the same cluster and TTL.
struct LeaseGroup {
    key: GroupKey,
    /// Keeps the cluster's allocation (not the cluster) alive while the group is listed, so that the
    /// address in `key` cannot be reused by another cluster.
    _cluster: Weak<Cluster>,
    /// The runtime the keep-alive runs on; a group from an earlier runtime is dead.
    generation: u64,
    lease: watch::Receiver<LeaseState>,
    lost: mpsc::UnboundedSender<i64>,
    task: AbortHandle,
    members: Mutex<usize>,
}

/// A lease group's identity: its cluster (by address, held by the group's `Weak`) and TTL.
type GroupKey = (usize, Duration);

static GROUPS: Mutex<Option<HashMap<GroupKey, Arc<LeaseGroup>>>> = Mutex::new(None);

impl LeaseGroup {
    /// Joins the live group of `cluster` and `ttl`, or starts one on `home`. A listed group whose
    /// keep-alive has ended (its runtime shut down) is replaced, never joined: its lease would never be
    /// renewed again.
    fn join(cluster: &Arc<Cluster>, ttl: Duration, home: &runtime::Home) -> Arc<LeaseGroup> {
        let key = (Arc::as_ptr(cluster) as usize, ttl);
        let mut groups = GROUPS.lock();
        let groups = groups.get_or_insert_with(HashMap::new);
        if let Some(group) = groups.get(&key).filter(|g| g.generation == home.generation() && !g.task.is_finished()) {
            *group.members.lock() += 1;
            return Arc::clone(group);
        }
        let (tx, rx) = watch::channel(LeaseState::Pending);
        let (lost_tx, lost_rx) = mpsc::unbounded_channel();
        let task = home.handle.spawn(keep_leased(Arc::clone(cluster), ttl, tx, lost_rx)).abort_handle();
        let group = Arc::new(LeaseGroup {
            key,
            _cluster: Arc::downgrade(cluster),
            generation: home.generation(),
            lease: rx,
            lost: lost_tx,
            task,
            members: Mutex::new(1),
        });
        groups.insert(key, Arc::clone(&group));
        group
    }

    /// Leaves the group; the last one out stops the keep-alive, unlists the group (unless a live one
    /// has replaced it) and gets the lease to revoke.
    fn leave(self: &Arc<Self>) -> Option<i64> {
        let mut groups = GROUPS.lock();
        let mut members = self.members.lock();
        *members -= 1;
        if *members > 0 {
            return None;
        }
        if let Some(groups) = groups.as_mut() {
            if groups.get(&self.key).is_some_and(|listed| Arc::ptr_eq(listed, self)) {
                groups.remove(&self.key);
            }
        }
        self.task.abort();
        match *self.lease.borrow() {
            LeaseState::Granted(id) => Some(id),
            _ => None,
        }
    }

    fn report_lost(&self, lease: i64) {
        let _ = self.lost.send(lease);
    }
}

/// Grants a lease and keeps it alive; when it is lost, grants a new one. Forever.
async fn keep_leased(
    cluster: Arc<Cluster>,
    ttl: Duration,
    tx: watch::Sender<LeaseState>,
    mut lost: mpsc::UnboundedReceiver<i64>,
) {
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
    let seconds = ttl.as_secs() as i64 + i64::from(ttl.subsec_nanos() > 0);
    loop {
        let granted = cluster.call("lease grant", move |mut c| async move { c.lease_grant(seconds, None).await }).await;
        let lease = match granted {
            Ok(resp) => resp.id(),
            Err(e) => {
                let pause = backoff.next();
                tracing::warn!(
                    "granting a {seconds} s lease (attempt {}): {e}; retrying in {pause:?}",
                    backoff.attempts
                );
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        bump(&STATS.lease_grants);
        backoff.reset();
        tx.send_replace(LeaseState::Granted(lease));
        let why = keep_alive(&cluster, lease, ttl, &mut lost).await;
        bump(&STATS.lease_losses);
        tracing::warn!("lease {lease:x} lost: {why}; granting a new one");
        tx.send_replace(LeaseState::Lost);
    }
}

/// Renews `lease` every TTL/3 until it is lost, moving the keep-alive stream to another member
/// when its member fails or stalls. Returns why the lease is considered lost.
async fn keep_alive(cluster: &Cluster, lease: i64, ttl: Duration, lost: &mut mpsc::UnboundedReceiver<i64>) -> String {
    let period = ttl / 3;
    let mut renewed = Instant::now();
    let mut member = cluster.preferred();
    loop {
        if renewed.elapsed() >= ttl {
            return format!("not renewed for {:?}", renewed.elapsed());
        }
        let opened = async {
            let mut client = cluster.client(member).await?;
            client.lease_keep_alive(lease).await.map_err(|e| cluster::describe("etcd lease keep-alive", &e))
        };
        let (mut keeper, mut stream) = match tokio::time::timeout(cluster.request_timeout().min(period), opened).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                tracing::debug!("lease {lease:x} keep-alive via {}: {e}", cluster.member_url(member));
                cluster.forget(member);
                member = cluster.next_member(member);
                tokio::time::sleep(period / 4).await;
                continue;
            }
            Err(_) => {
                cluster.forget(member);
                member = cluster.next_member(member);
                continue;
            }
        };
        let _stream_gauge = Gauge::up(&STATS.keepalive_streams);
        let mut heard = Instant::now();
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if renewed.elapsed() >= ttl {
                        return format!("not renewed for {:?}", renewed.elapsed());
                    }
                    // Two periods without an answer: this member is in trouble, try another.
                    if heard.elapsed() > period * 2 || keeper.keep_alive().await.is_err() {
                        break;
                    }
                }
                message = stream.message() => match message {
                    Ok(Some(resp)) if resp.ttl() > 0 => {
                        renewed = Instant::now();
                        heard = renewed;
                        bump(&STATS.lease_renewals);
                    }
                    Ok(Some(_)) => return "etcd says it expired".into(),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!("lease {lease:x} keep-alive via {}: {e}", cluster.member_url(member));
                        break;
                    }
                },
                Some(id) = lost.recv() => if id == lease {
                    return "etcd no longer knows it".into();
                }
            }
        }
        cluster.forget(member);
        member = cluster.next_member(member);
    }
}
