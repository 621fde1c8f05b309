//! Shared prefix watches: one supervised Get-then-Watch per (cluster, prefix) in the process, whose
//! latest state every subscriber (resolvers, registrations watching their own key) reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use etcd_client::{EventType, GetOptions, KeyValue, WatchOptions};
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;

use super::backoff::Backoff;
use super::cluster::Cluster;
use super::stats::{bump, Gauge, STATS};
use super::value::{self, Entry};
use crate::error::Error;
use crate::update::Endpoint;

/// `resolve_now` re-lists at most this often per watch.
const RELIST_INTERVAL: Duration = Duration::from_secs(1);
/// A watch asks for a progress report this often; silence for `STALL_AFTER` means it is dead.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);
const STALL_AFTER: Duration = Duration::from_secs(5);

/// What a watch knows about its prefix.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The store revision the entries reflect.
    pub revision: i64,
    /// Key → its address; `None` for a withdrawn or unreadable value.
    pub entries: Arc<BTreeMap<String, Option<Endpoint>>>,
    /// True once a list succeeded: before that, `entries` means nothing.
    pub listed: bool,
    /// Set while etcd cannot be read; `entries` are then the last known.
    pub error: Option<String>,
}

impl Snapshot {
    /// The addresses in key order.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.entries.values().flatten()
    }
}

/// Keys whose deletion someone in this process must hear of (registrations guarding their own key),
/// each with the revision of the latest deletion seen.
type Guards = Arc<Mutex<HashMap<String, watch::Sender<i64>>>>;

/// Most watch responses already waiting that are applied before one publish: a burst of changes
/// becomes a few complete lists instead of one per event, while a lone change is published at once.
const COALESCE_RESPONSES: usize = 512;

/// One watch, shared by its subscribers; it stops when the last `Arc` goes.
pub struct SharedWatch {
    key: WatchKey,
    state: watch::Receiver<Arc<Snapshot>>,
    guards: Guards,
    relist: Arc<Notify>,
    last_relist: Mutex<Option<Instant>>,
    task: AbortHandle,
    _active: Gauge,
}

/// A watch's identity: its cluster (by address) and prefix.
type WatchKey = (usize, String);

static WATCHES: Mutex<Option<HashMap<WatchKey, Weak<SharedWatch>>>> = Mutex::new(None);

/// Subscribes to `prefix` on `cluster`, starting the watch if nobody watches it yet.
pub fn subscribe(cluster: &Arc<Cluster>, prefix: &str) -> Result<Arc<SharedWatch>, Error> {
    let key = (Arc::as_ptr(cluster) as usize, prefix.to_string());
    let mut watches = WATCHES.lock();
    let watches = watches.get_or_insert_with(HashMap::new);
    if let Some(existing) = watches.get(&key).and_then(Weak::upgrade) {
        return Ok(existing);
    }
    let runtime = crate::runtime::handle()?;
    let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
    let relist = Arc::new(Notify::new());
    let guards = Guards::default();
    let body = run(Arc::clone(cluster), prefix.to_string(), tx, Arc::clone(&relist), Arc::clone(&guards));
    let task = runtime.spawn(body).abort_handle();
    let shared = Arc::new(SharedWatch {
        key: key.clone(),
        state: rx,
        guards,
        relist,
        last_relist: Mutex::new(None),
        task,
        _active: Gauge::up(&STATS.watches_active),
    });
    watches.retain(|_, w| w.strong_count() > 0);
    watches.insert(key, Arc::downgrade(&shared));
    Ok(shared)
}

impl SharedWatch {
    /// A receiver of every new state; the current one is already there.
    pub fn states(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.state.clone()
    }

    /// Hears of every deletion of `key` (the revision it happened at), without waking on the
    /// prefix's other changes. The key must lie under this watch's prefix.
    pub fn guard(&self, key: &str) -> KeyGuard {
        let mut guards = self.guards.lock();
        let deletions = guards.entry(key.to_string()).or_insert_with(|| watch::channel(0).0).subscribe();
        KeyGuard { key: key.to_string(), deletions, guards: Arc::clone(&self.guards) }
    }

    /// Asks for a fresh list (rate limited).
    pub fn request_relist(&self) {
        let mut last = self.last_relist.lock();
        if last.is_some_and(|t| t.elapsed() < RELIST_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        self.relist.notify_one();
    }
}

impl Drop for SharedWatch {
    fn drop(&mut self) {
        self.task.abort();
        let mut watches = WATCHES.lock();
        if let Some(watches) = watches.as_mut() {
            if watches.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
                watches.remove(&self.key);
            }
        }
    }
}

/// A subscription to the deletions of one key; see [`SharedWatch::guard`].
pub struct KeyGuard {
    key: String,
    deletions: watch::Receiver<i64>,
    guards: Guards,
}

impl KeyGuard {
    /// Completes with the revision of the next deletion of the key; `None` once the watch is gone.
    pub async fn deleted(&mut self) -> Option<i64> {
        self.deletions.changed().await.ok()?;
        Some(*self.deletions.borrow_and_update())
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        let mut guards = self.guards.lock();
        // Our receiver is still counted here: the last guard of the key removes its entry.
        if guards.get(&self.key).is_some_and(|tx| tx.receiver_count() <= 1) {
            guards.remove(&self.key);
        }
    }
}

/// Why one watch stream ended.
enum End {
    Compacted,
    RelistRequested,
    Failed { established: bool, message: String },
}

struct Watcher {
    cluster: Arc<Cluster>,
    prefix: String,
    tx: watch::Sender<Arc<Snapshot>>,
    relist: Arc<Notify>,
    guards: Guards,
    entries: BTreeMap<String, Option<Endpoint>>,
    revision: i64,
}

async fn run(
    cluster: Arc<Cluster>,
    prefix: String,
    tx: watch::Sender<Arc<Snapshot>>,
    relist: Arc<Notify>,
    guards: Guards,
) {
    let mut w = Watcher { cluster, prefix, tx, relist, guards, entries: BTreeMap::new(), revision: 0 };
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut listed_once = false;
    loop {
        if let Err(e) = w.list().await {
            tracing::warn!("etcd watch on '{}': {e}", w.prefix);
            w.publish(Some(e.message().to_string()));
            tokio::select! {
                _ = tokio::time::sleep(backoff.next()) => {}
                _ = w.relist.notified() => {}
            }
            continue;
        }
        if listed_once {
            bump(&STATS.relists);
        }
        listed_once = true;
        backoff.reset();
        w.publish(None);

        let mut member = w.cluster.preferred();
        let mut failures = 0;
        loop {
            match w.watch(member).await {
                End::Compacted => {
                    bump(&STATS.compactions_seen);
                    tracing::info!(
                        "etcd watch on '{}': history compacted past {}; listing again",
                        w.prefix,
                        w.revision
                    );
                    break;
                }
                End::RelistRequested => break,
                End::Failed { established, message } => {
                    bump(&STATS.watch_restarts);
                    tracing::warn!("etcd watch on '{}' via {}: {message}", w.prefix, w.cluster.member_url(member));
                    w.cluster.forget(member);
                    member = w.cluster.next_member(member);
                    failures = if established { 1 } else { failures + 1 };
                    // Every member failed in turn: etcd is out of reach, and clients should know.
                    if failures >= w.cluster.member_count() {
                        w.publish(Some(message));
                        tokio::time::sleep(backoff.next()).await;
                    }
                }
            }
        }
    }
}

impl Watcher {
    async fn list(&mut self) -> Result<(), Error> {
        let prefix = self.prefix.clone();
        let mut resp = self
            .cluster
            .call("list", move |mut c| {
                let prefix = prefix.clone();
                async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await }
            })
            .await?;
        self.revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        self.entries = resp.take_kvs().iter().filter_map(read).collect();
        // A guarded key missing from a fresh list was deleted while no watch was running.
        for (key, deletions) in self.guards.lock().iter() {
            if !self.entries.contains_key(key) {
                deletions.send_replace(self.revision);
            }
        }
        Ok(())
    }

    fn publish(&self, error: Option<String>) {
        let snapshot =
            Snapshot { revision: self.revision, entries: Arc::new(self.entries.clone()), listed: true, error };
        self.tx.send_replace(Arc::new(snapshot));
    }

    /// Watches from the revision after the last one seen until the stream fails, the history is
    /// compacted, or a re-list is asked for.
    async fn watch(&mut self, member: usize) -> End {
        let failed = |established, message: String| End::Failed { established, message };
        let timeout = self.cluster.request_timeout();
        let mut client = match self.cluster.client(member).await {
            Ok(c) => c,
            Err(e) => return failed(false, e.message().to_string()),
        };
        let options = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_progress_notify()
            .with_start_revision(self.revision + 1);
        let mut stream = match tokio::time::timeout(timeout, client.watch(self.prefix.as_str(), Some(options))).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return failed(false, format!("cannot start: {e}")),
            Err(_) => return failed(false, format!("cannot start: no answer in {timeout:?}")),
        };
        let mut established = false;
        let mut heard = Instant::now();
        let mut probe = tokio::time::interval(PROGRESS_INTERVAL);
        probe.tick().await;
        loop {
            let message = tokio::select! {
                m = stream.message() => m,
                _ = probe.tick() => {
                    let silent = heard.elapsed();
                    if !established && silent >= timeout {
                        return failed(false, format!("no answer to the watch request in {timeout:?}"));
                    }
                    if silent >= STALL_AFTER {
                        return failed(established, format!("stalled: nothing heard for {silent:?}"));
                    }
                    if established && stream.request_progress().await.is_err() {
                        return failed(true, "the watch stream closed".into());
                    }
                    continue;
                }
                _ = self.relist.notified() => return End::RelistRequested,
            };
            let mut changed = false;
            let mut next = Some(message);
            let mut applied = 0;
            // Apply this response and those already waiting behind it, then publish once.
            while let Some(message) = next.take() {
                let resp = match message {
                    Ok(Some(resp)) => resp,
                    Ok(None) => return self.ended(changed, failed(established, "the watch stream ended".into())),
                    Err(e) => return self.ended(changed, failed(established, e.to_string())),
                };
                heard = Instant::now();
                match self.apply(&resp, &mut established) {
                    Applied::Events => changed = true,
                    Applied::Nothing => {}
                    Applied::End(end) => return self.ended(changed, end),
                }
                applied += 1;
                if applied < COALESCE_RESPONSES {
                    next = ready_now(stream.message()).await;
                }
            }
            if changed {
                self.publish(None);
            }
        }
    }

    /// Publishes what was applied before the stream ended, then says why it ended.
    fn ended(&self, changed: bool, end: End) -> End {
        if changed {
            self.publish(None);
        }
        end
    }

    /// Applies one watch response to the entries (without publishing).
    fn apply(&mut self, resp: &etcd_client::WatchResponse, established: &mut bool) -> Applied {
        if resp.canceled() {
            if resp.compact_revision() > 0 {
                return Applied::End(End::Compacted);
            }
            return Applied::End(End::Failed {
                established: *established,
                message: format!("cancelled by etcd: {}", resp.cancel_reason()),
            });
        }
        if resp.created() && !*established {
            *established = true;
            // A watch that works again ends any error state, with the list as it is.
            self.publish(None);
        }
        if resp.events().is_empty() {
            // A progress report: everything up to this revision has been sent.
            if let Some(h) = resp.header() {
                if *established && h.revision() > self.revision && !resp.created() {
                    self.revision = h.revision();
                }
            }
            return Applied::Nothing;
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let Ok(key) = kv.key_str() else { continue };
            match event.event_type() {
                EventType::Put => {
                    if let Some((k, v)) = read(kv) {
                        self.entries.insert(k, v);
                    }
                }
                EventType::Delete => {
                    self.entries.remove(key);
                    if let Some(deletions) = self.guards.lock().get(key) {
                        deletions.send_replace(kv.mod_revision());
                    }
                }
            }
            self.revision = self.revision.max(kv.mod_revision());
        }
        Applied::Events
    }
}

/// Polls `future` once: its output if it is ready now, `None` at once otherwise (a timer, even of
/// zero length, would wait for the next timer tick).
async fn ready_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match future.as_mut().poll(cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

/// What one watch response did.
enum Applied {
    Events,
    Nothing,
    End(End),
}

/// One key's entry; `None` when the key is not UTF-8 (never produced by a registrar), and a logged
/// `Some((key, None))` when the value cannot be read.
fn read(kv: &KeyValue) -> Option<(String, Option<Endpoint>)> {
    let key = kv.key_str().ok()?.to_string();
    let entry = match value::parse(kv.value()) {
        Ok(Entry::Add(endpoint)) => Some(endpoint),
        Ok(Entry::Withdrawn) => None,
        Err(reason) => {
            tracing::warn!("etcd key '{key}' skipped: {reason}");
            None
        }
    };
    Some((key, entry))
}
