//! Shared prefix watches: one supervised list-then-watch per (cluster, prefix) in the process, which
//! hands each new state straight to every attached subscriber (resolvers) on the watch's own task, and
//! tells registrations of deletions of their own key. The entries are changed in place and lent to
//! subscribers, never copied per change. Lists are read in pages at one revision, so a prefix of any
//! size fits the receive limit.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use etcd_client::{EventType, GetOptions, GetResponse, KeyValue, WatchOptions};
use parking_lot::Mutex;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::AbortHandle;
use tonic::Code;

use super::backoff::Backoff;
use super::cluster::{self, Cluster, RECEIVE_LIMIT};
use super::stats::{bump, Gauge, STATS};
use super::value::{self, Entry};
use super::watch_stream::{self, Heard};
use crate::error::{Error, ErrorKind};
use crate::resolver::delivery::deliver_here;
use crate::update::Address;

/// `resolve_now` re-lists at most this often per watch.
const RELIST_INTERVAL: Duration = Duration::from_secs(1);
/// A watch asks for a progress report this often; silence for `STALL_AFTER` means it is dead.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);
const STALL_AFTER: Duration = Duration::from_secs(5);
/// Keys asked for in the first page of a list: with registrations' usual values (100 B to a few KiB)
/// it stays far below the receive limit. A page the limit refuses (large values) is asked for again
/// with half as many keys, down to one. Each later page asks for as many keys as fill about
/// `PAGE_BYTES` at the sizes read so far, up to `MAX_PAGE_KEYS`: etcd 3.4 walks the whole range's
/// index for every page whatever its limit, so a large prefix must be read in few pages (100,000
/// keys of 100 B: 3 pages, not 100).
pub const PAGE_KEYS: i64 = 1000;
const PAGE_BYTES: usize = RECEIVE_LIMIT / 4;
const MAX_PAGE_KEYS: i64 = 200_000;
/// A list whose revision is compacted before its last page starts over at a newer revision; after
/// this many starts it fails, and the watch lists again after its backoff.
const LIST_STARTS: usize = 5;

/// What a watch knows about its prefix.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The store revision the entries reflect.
    pub revision: i64,
    /// Key → what its value says (one address, or several for a framework's document); `Withdrawn`
    /// also for a value that could not be read.
    pub entries: Arc<BTreeMap<String, Entry>>,
    /// True once a list succeeded: before that, `entries` means nothing.
    pub listed: bool,
    /// Set while etcd cannot be read; `entries` are then the last known.
    pub error: Option<String>,
    /// How many times the watch found the cluster gone back to an older revision (restored from a
    /// backup): revisions of different histories do not compare.
    pub history: u64,
}

impl Snapshot {
    /// The addresses in key order (a key's own in its value's order).
    pub fn endpoints(&self) -> impl Iterator<Item = &Address> {
        self.entries.values().flat_map(Entry::addresses)
    }
}

/// Keys whose deletion someone in this process must hear of (registrations guarding their own key),
/// each with the revision of the latest deletion seen, or [`REWOUND`].
type Guards = Arc<Mutex<HashMap<String, watch::Sender<i64>>>>;

/// What a key guard hears when the cluster went back to an older revision (restored from a backup):
/// every write made before is history, whether or not the key is still there, and revisions start
/// over.
pub const REWOUND: i64 = i64::MAX;

/// The newest write this process made under a prefix: (history, revision); see
/// [`SharedWatch::written`].
type Written = Arc<Mutex<(u64, i64)>>;

/// Most watch responses already waiting that are applied before one publish: a burst of changes
/// becomes a few complete lists instead of one per event, while a lone change is published at once.
const COALESCE_RESPONSES: usize = 512;

/// A subscriber: called with every new state, on the watch's task, with the hub locked. It must not
/// block, and must not keep the entries (a kept `Arc` makes the next change copy them).
type Subscriber = Box<dyn FnMut(&Snapshot) + Send>;

/// The latest state and who hears of each new one.
#[derive(Default)]
struct Hub {
    /// The state last published; `None` while the watcher changes the entries in place (between the
    /// first event of a batch and its publish, with no await in between).
    current: Option<Arc<Snapshot>>,
    subscribers: Vec<(u64, Subscriber)>,
    next_id: u64,
}

type SharedHub = Arc<Mutex<Hub>>;

/// One watch, shared by its subscribers; it stops when the last `Arc` goes.
pub struct SharedWatch {
    key: WatchKey,
    hub: SharedHub,
    guards: Guards,
    relist: Arc<Notify>,
    last_relist: Mutex<Option<Instant>>,
    task: AbortHandle,
    /// The newest revision at which this process wrote under the prefix (a registration's put), in
    /// the watch's current history: a subscriber that joins later waits for a state at least this new.
    written: Written,
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
    let hub = SharedHub::default();
    let relist = Arc::new(Notify::new());
    let guards = Guards::default();
    let written = Written::default();
    let body = run(Watcher {
        cluster: Arc::clone(cluster),
        prefix: prefix.to_string(),
        hub: Arc::clone(&hub),
        relist: Arc::clone(&relist),
        guards: Arc::clone(&guards),
        written: Arc::clone(&written),
        history: 0,
        entries: Arc::default(),
        revision: 0,
        fragment_base: None,
    });
    let task = runtime.spawn(body).abort_handle();
    let shared = Arc::new(SharedWatch {
        key: key.clone(),
        hub,
        guards,
        relist,
        last_relist: Mutex::new(None),
        task,
        written,
        _active: Gauge::up(&STATS.watches_active),
    });
    watches.retain(|_, w| w.strong_count() > 0);
    watches.insert(key, Arc::downgrade(&shared));
    Ok(shared)
}

impl SharedWatch {
    /// Calls `subscriber` with the current state (if the watch has one), then with every new state
    /// until the returned [`Attachment`] is dropped. Calls are serialised and in order, on the watch's
    /// task: the subscriber must not block, and must not drop an attachment of this watch.
    pub fn attach(&self, mut subscriber: impl FnMut(&Snapshot) + Send + 'static) -> Attachment {
        let mut hub = self.hub.lock();
        if let Some(current) = &hub.current {
            subscriber(current);
        }
        let id = hub.next_id;
        hub.next_id += 1;
        hub.subscribers.push((id, Box::new(subscriber)));
        Attachment { hub: Arc::clone(&self.hub), id }
    }

    /// Hears of every deletion of `key` (the revision it happened at), without waking on the
    /// prefix's other changes. The key must lie under this watch's prefix.
    pub fn guard(&self, key: &str) -> KeyGuard {
        let mut guards = self.guards.lock();
        let deletions = guards.entry(key.to_string()).or_insert_with(|| watch::channel(0).0).subscribe();
        KeyGuard { key: key.to_string(), deletions, guards: Arc::clone(&self.guards) }
    }

    /// Records a write this process made under the prefix at `revision`, which etcd has confirmed
    /// but the watch may not have applied yet.
    pub fn saw_write(&self, revision: i64) {
        let mut written = self.written.lock();
        written.1 = written.1.max(revision);
    }

    /// The watch's current history and the newest revision this process wrote at in it (0: none).
    /// A state of that history older than that revision is real but stale to anyone who saw the write
    /// confirmed: a subscriber joining now skips it. A state of a later history is newer whatever its
    /// revision.
    pub fn written(&self) -> (u64, i64) {
        *self.written.lock()
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

/// A subscriber attached to a watch; dropping it detaches it. See [`SharedWatch::attach`].
pub struct Attachment {
    hub: SharedHub,
    id: u64,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let removed = {
            let mut hub = self.hub.lock();
            let at = hub.subscribers.iter().position(|(id, _)| *id == self.id);
            at.map(|at| hub.subscribers.swap_remove(at))
        };
        // The subscriber's own drop (a resolver's context) runs without the hub locked.
        drop(removed);
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
    /// The member answered the watch at a revision behind the one already seen: either it has not
    /// applied that revision yet, or the cluster went back in time (restored from a backup), where a
    /// watch from the next revision would wait for revisions that already passed and miss every
    /// change made until then.
    Behind {
        revision: i64,
    },
    Failed {
        established: bool,
        message: String,
    },
}

struct Watcher {
    cluster: Arc<Cluster>,
    prefix: String,
    hub: SharedHub,
    relist: Arc<Notify>,
    guards: Guards,
    written: Written,
    /// Rewinds seen so far: see [`Snapshot::history`].
    history: u64,
    /// Shared with the published snapshot, which the hub gives up before a change so that the
    /// change is made in place (except while a fragmented response is half applied).
    entries: Arc<BTreeMap<String, Entry>>,
    revision: i64,
    /// Set while a fragmented watch response is half applied: the revision before it, from which a
    /// new watch must start again (a revision's events may span fragments).
    fragment_base: Option<i64>,
}

async fn run(mut w: Watcher) {
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
                End::Behind { revision } => match w.cluster_revision().await {
                    // A member catching up: the watch from the next revision gets every change.
                    Ok(now) if now >= w.revision => {
                        tracing::debug!(
                            "etcd watch on '{}' via {}: answered at revision {revision} while at {}; the cluster \
                             is at {now}: watching again once the member caught up",
                            w.prefix,
                            w.cluster.member_url(member),
                            w.revision
                        );
                        tokio::time::sleep(backoff.next()).await;
                    }
                    Ok(now) => {
                        bump(&STATS.rewinds_seen);
                        tracing::warn!(
                            "etcd watch on '{}': the cluster is at revision {now}, behind revision {} already seen \
                             (restored from a backup?); listing again",
                            w.prefix,
                            w.revision
                        );
                        w.rewound();
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("etcd watch on '{}': {e}", w.prefix);
                        w.publish(Some(e.message().to_string()));
                        tokio::time::sleep(backoff.next()).await;
                    }
                },
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
    /// Starts a new history: the revisions seen so far, this process's writes among them, belong to
    /// a past the cluster no longer has. Registrations guarding a key write it again.
    fn rewound(&mut self) {
        self.history += 1;
        *self.written.lock() = (self.history, 0);
        for deletions in self.guards.lock().values() {
            deletions.send_replace(REWOUND);
        }
    }

    /// Lists the prefix in pages (a Get with a limit, continued after the last key), every page
    /// after the first pinned to the first one's revision, as Kubernetes' API server lists etcd: the
    /// entries are one real state of etcd however large the prefix, and only one page's response is
    /// held at a time. The watch then starts from that revision + 1.
    async fn list(&mut self) -> Result<(), Error> {
        let pause = pause_for(&self.prefix);
        // A paused list (a test) keeps its pages at the size it asked for.
        let max_keys = pause.as_ref().map_or(MAX_PAGE_KEYS, |p| p.page_keys);
        let end = prefix_end(self.prefix.as_bytes());
        for _ in 0..LIST_STARTS {
            // Pages come in key order: the map is built from them in one pass at the end, rather than
            // searched once per key.
            let mut entries = Vec::new();
            // 0 reads the newest revision, which the first page then pins.
            let mut revision = 0;
            let mut from = self.prefix.as_bytes().to_vec();
            let mut limit = PAGE_KEYS.min(max_keys);
            let mut pages = 0;
            let complete = loop {
                let mut resp = match self.page(&from, &end, revision, limit).await? {
                    Page::Read(resp) => resp,
                    Page::TooLarge if limit > 1 => {
                        limit /= 2;
                        continue;
                    }
                    Page::TooLarge => {
                        return Err(Error::new(
                            ErrorKind::Unavailable,
                            format!(
                                "etcd list of '{}': one value is above the {RECEIVE_LIMIT}-byte limit",
                                self.prefix
                            ),
                        ))
                    }
                    Page::Compacted => break false,
                };
                if revision == 0 {
                    revision = resp.header().map_or(0, |h| h.revision());
                }
                let more = resp.more();
                let kvs = resp.take_kvs();
                if let Some(last) = kvs.last() {
                    // The next page starts just after the last key read.
                    from = last.key().to_vec();
                    from.push(0);
                }
                entries.extend(kvs.iter().filter_map(read));
                let bytes: usize = kvs.iter().map(|kv| kv.key().len() + kv.value().len()).sum();
                pages += 1;
                if let Some(pause) = &pause {
                    pause.after_page(PageRead { number: pages, keys: kvs.len(), last: !more }).await;
                }
                if !more || kvs.is_empty() {
                    break true;
                }
                limit = next_page_keys(kvs.len(), bytes, max_keys);
            };
            if !complete {
                bump(&STATS.compactions_seen);
                tracing::info!(
                    "etcd list of '{}': revision {revision} compacted between pages; listing again",
                    self.prefix
                );
                continue;
            }
            self.revision = revision;
            self.entries = Arc::new(entries.into_iter().collect());
            self.fragment_base = None;
            // A guarded key missing from a fresh list was deleted while no watch was running.
            for (key, deletions) in self.guards.lock().iter() {
                if !self.entries.contains_key(key) {
                    deletions.send_replace(self.revision);
                }
            }
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            format!("etcd list of '{}': history compacted during each of {LIST_STARTS} lists", self.prefix),
        ))
    }

    /// The cluster's current revision, from a linearizable read (which the leader confirms), so a
    /// member that has not caught up yet does not answer with an older one.
    async fn cluster_revision(&self) -> Result<i64, Error> {
        let key = self.prefix.as_bytes().to_vec();
        self.cluster
            .call("revision", move |client| {
                let key = key.clone();
                async move {
                    let options = GetOptions::new().with_count_only().with_limit(1);
                    let resp = cluster::kv_client(&client).get(key, Some(options)).await?;
                    Ok(resp.header().map_or(0, |h| h.revision()))
                }
            })
            .await
    }

    /// Reads up to `limit` keys of `[from, end)` at `revision` (0: the newest).
    async fn page(&self, from: &[u8], end: &[u8], revision: i64, limit: i64) -> Result<Page, Error> {
        let (from, end) = (from.to_vec(), end.to_vec());
        self.cluster
            .call("list", move |client| {
                let from = from.clone();
                let options = GetOptions::new().with_range(end.clone()).with_limit(limit).with_revision(revision);
                async move {
                    match cluster::kv_client(&client).get(from, Some(options)).await {
                        Ok(resp) => Ok(Page::Read(resp)),
                        Err(e) if grpc_error(&e, "decoded message length too large") => Ok(Page::TooLarge),
                        Err(e) if grpc_error(&e, "required revision has been compacted") => Ok(Page::Compacted),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
    }

    /// Hands the current state to every subscriber, on this task, and keeps it for those who attach.
    /// The only subscriber's callback may run right here, once the hub is unlocked (see
    /// `deliver_here`): until it returns, this watch applies nothing, and what etcd sends meanwhile
    /// waits to be applied and published as one.
    fn publish(&self, error: Option<String>) {
        let mut hub = self.hub.lock();
        let only_one = hub.subscribers.len() == 1;
        deliver_here(only_one, move || {
            let snapshot = if self.fragment_base.is_some() {
                // Half a fragmented response is no state etcd was ever in: only an error goes out,
                // with the list last published (which the hub kept: see `change_in_place`).
                let Some(error) = error else { return };
                let last = hub.current.as_deref().cloned().unwrap_or_default();
                Snapshot { error: Some(error), ..last }
            } else {
                Snapshot {
                    revision: self.revision,
                    entries: Arc::clone(&self.entries),
                    listed: true,
                    error,
                    history: self.history,
                }
            };
            for (_, subscriber) in hub.subscribers.iter_mut() {
                subscriber(&snapshot);
            }
            hub.current = Some(Arc::new(snapshot));
        })
    }

    /// Before changing the entries: the hub gives up its snapshot, so that (with no subscriber keeping
    /// the entries) the change is made in place instead of on a copy, and is published before any
    /// await. A fragmented response is applied to a copy, since the hub must keep the last whole state
    /// until its last fragment; changes applied before it are published first for the same reason.
    fn change_in_place(&mut self, fragment: bool) {
        if self.fragment_base.is_some() {
            return;
        }
        if fragment {
            if self.hub.lock().current.is_none() {
                self.publish(None);
            }
            return;
        }
        let released = self.hub.lock().current.take();
        drop(released);
    }

    /// Watches from the revision after the last one seen until the stream fails, the history is
    /// compacted, or a re-list is asked for.
    async fn watch(&mut self, member: usize) -> End {
        let failed = |established, message: String| End::Failed { established, message };
        let timeout = self.cluster.request_timeout();
        // Fragments: one response may hold many revisions (a watch catching up) or one revision of
        // many events (a deleted prefix), beyond any receive limit; etcd splits what exceeds its
        // request limit. Previous values are not asked for: nothing reads them, and they would
        // double every event.
        let options = WatchOptions::new()
            .with_prefix()
            .with_fragment()
            .with_progress_notify()
            .with_start_revision(self.fragment_base.unwrap_or(self.revision) + 1);
        let started = Instant::now();
        let mut stream = match watch_stream::join(&self.cluster, member, &self.prefix, options, timeout).await {
            Ok(s) => s,
            Err(message) => return failed(false, format!("cannot start: {message}")),
        };
        let mut established = false;
        let mut heard = Instant::now();
        let mut probe = tokio::time::interval(PROGRESS_INTERVAL);
        probe.tick().await;
        loop {
            let first = tokio::select! {
                h = stream.next() => h,
                _ = probe.tick() => {
                    // Other watches' progress reports keep the stream heard: an unanswered request of
                    // this watch's own is timed from its start.
                    if !established && started.elapsed() >= timeout {
                        return failed(false, format!("no answer to the watch request in {timeout:?}"));
                    }
                    let silent = heard.elapsed();
                    if silent >= STALL_AFTER {
                        return failed(established, format!("stalled: nothing heard for {silent:?}"));
                    }
                    if established && !stream.request_progress().await {
                        return failed(true, "the watch stream closed".into());
                    }
                    continue;
                }
                _ = self.relist.notified() => return End::RelistRequested,
            };
            let mut changed = false;
            let mut next = Some(first);
            let mut applied = 0;
            // Apply this response and those already waiting behind it, then publish once.
            while let Some(heard_now) = next.take() {
                heard = Instant::now();
                match heard_now {
                    Heard::Response(resp) => match self.apply(&resp, &mut established) {
                        Applied::Events => changed = true,
                        Applied::Nothing => {}
                        Applied::End(end) => return self.ended(changed, end),
                    },
                    Heard::Alive => {}
                    Heard::Ended(message) => return self.ended(changed, failed(established, message)),
                }
                applied += 1;
                if applied < COALESCE_RESPONSES {
                    next = stream.next_now();
                }
            }
            if changed {
                self.publish(None);
                // A callback run on this task is time this watch did not listen, not silence.
                heard = Instant::now();
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
            if let Some(h) = resp.header().filter(|h| h.revision() < self.revision) {
                return Applied::End(End::Behind { revision: h.revision() });
            }
            *established = true;
            // A watch that works again ends any error state, with the list as it is.
            self.publish(None);
        }
        if resp.events().is_empty() {
            // A progress report: everything up to this revision has been sent.
            if let Some(h) = resp.header() {
                if *established && h.revision() > self.revision && !resp.created() && self.fragment_base.is_none() {
                    self.revision = h.revision();
                }
            }
            return Applied::Nothing;
        }
        let fragment = resp.0.fragment;
        self.change_in_place(fragment);
        if fragment && self.fragment_base.is_none() {
            self.fragment_base = Some(self.revision);
        }
        let entries = Arc::make_mut(&mut self.entries);
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let Ok(key) = kv.key_str() else { continue };
            match event.event_type() {
                EventType::Put => {
                    if let Some((k, v)) = read(kv) {
                        entries.insert(k, v);
                    }
                }
                EventType::Delete => {
                    entries.remove(key);
                    if let Some(deletions) = self.guards.lock().get(key) {
                        deletions.send_replace(kv.mod_revision());
                    }
                }
            }
            self.revision = self.revision.max(kv.mod_revision());
        }
        if !fragment {
            self.fragment_base = None;
        }
        Applied::Events
    }
}

/// Keys to ask for in the next page after one of `keys` keys and `bytes` bytes: about `PAGE_BYTES`
/// at that size, at least 1, at most `max_keys`.
fn next_page_keys(keys: usize, bytes: usize, max_keys: i64) -> i64 {
    let per_key = (bytes / keys.max(1)).max(1);
    ((PAGE_BYTES / per_key) as i64).clamp(1, max_keys.max(1))
}

/// What one page read found.
enum Page {
    Read(GetResponse),
    /// Above the receive limit: ask for fewer keys.
    TooLarge,
    /// The pinned revision is gone: start the list over.
    Compacted,
}

/// True when `error` is a gRPC status whose message contains `text` (etcd and tonic give these
/// cases no code of their own: both are OutOfRange).
fn grpc_error(error: &etcd_client::Error, text: &str) -> bool {
    matches!(error, etcd_client::Error::GRpcStatus(s) if s.code() == Code::OutOfRange && s.message().contains(text))
}

/// The first key after every key that starts with `prefix`, as etcd's range end.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Only 0xff bytes: every key from the prefix on.
    vec![0]
}

/// A page a paused list has just read; see [`pause_lists`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRead {
    /// 1 for the first page of a list (also of a list started over).
    pub number: usize,
    pub keys: usize,
    pub last: bool,
}

struct Pause {
    page_keys: i64,
    pages: std::sync::mpsc::Sender<PageRead>,
    resume: Semaphore,
}

impl Pause {
    async fn after_page(&self, page: PageRead) {
        if self.pages.send(page).is_ok() {
            // Closed when the test drops its `ListPause`: the list goes on.
            if let Ok(permit) = self.resume.acquire().await {
                permit.forget();
            }
        }
    }
}

static PAUSES: Mutex<Option<HashMap<String, Arc<Pause>>>> = Mutex::new(None);

fn pause_for(prefix: &str) -> Option<Arc<Pause>> {
    PAUSES.lock().as_ref()?.get(prefix).cloned()
}

/// For tests that must change etcd at a chosen point of a list (between two pages, or between the
/// list and the watch): from now on, lists of `prefix` read `page_keys` keys a page and wait after
/// each page until [`ListPause::resume`] or until the `ListPause` is dropped.
#[doc(hidden)]
pub fn pause_lists(prefix: &str, page_keys: i64) -> ListPause {
    let (tx, pages) = std::sync::mpsc::channel();
    let pause = Arc::new(Pause { page_keys: page_keys.max(1), pages: tx, resume: Semaphore::new(0) });
    PAUSES.lock().get_or_insert_with(HashMap::new).insert(prefix.to_string(), Arc::clone(&pause));
    ListPause { prefix: prefix.to_string(), pages, pause }
}

/// Lists of one prefix paused after each page; see [`pause_lists`].
#[doc(hidden)]
pub struct ListPause {
    prefix: String,
    pages: std::sync::mpsc::Receiver<PageRead>,
    pause: Arc<Pause>,
}

impl ListPause {
    /// The next page read by a list of the prefix, which now waits; `None` after `timeout`.
    pub fn next_page(&self, timeout: Duration) -> Option<PageRead> {
        self.pages.recv_timeout(timeout).ok()
    }

    /// Lets the waiting list go on.
    pub fn resume(&self) {
        self.pause.resume.add_permits(1);
    }
}

impl Drop for ListPause {
    fn drop(&mut self) {
        let mut pauses = PAUSES.lock();
        if let Some(pauses) = pauses.as_mut() {
            if pauses.get(&self.prefix).is_some_and(|p| Arc::ptr_eq(p, &self.pause)) {
                pauses.remove(&self.prefix);
            }
        }
        self.pause.resume.close();
    }
}

/// What one watch response did.
enum Applied {
    Events,
    Nothing,
    End(End),
}

/// One key's entry; `None` when the key is not UTF-8 (never produced by a registrar), and a logged
/// `Some((key, Withdrawn))` when the value cannot be read.
fn read(kv: &KeyValue) -> Option<(String, Entry)> {
    let key = kv.key_str().ok()?.to_string();
    let entry = value::parse(kv.value()).unwrap_or_else(|reason| {
        tracing::warn!("etcd key '{key}' skipped: {reason}");
        Entry::Withdrawn
    });
    Some((key, entry))
}

#[cfg(test)]
mod tests {
    use super::{next_page_keys, prefix_end, MAX_PAGE_KEYS, PAGE_BYTES};

    #[test]
    fn pages_after_the_first_fill_about_a_quarter_of_the_receive_limit() {
        // 100 B a key: 4 MiB holds 41,943 keys.
        assert_eq!(next_page_keys(1000, 100_000, MAX_PAGE_KEYS), (PAGE_BYTES / 100) as i64);
        // 1 MiB values: 4 a page; 20 MiB values: still one.
        assert_eq!(next_page_keys(3, 3 << 20, MAX_PAGE_KEYS), 4);
        assert_eq!(next_page_keys(1, 20 << 20, MAX_PAGE_KEYS), 1);
        // Tiny values stop at the cap, and a test's paused list at its own page size.
        assert_eq!(next_page_keys(1000, 1000, MAX_PAGE_KEYS), MAX_PAGE_KEYS);
        assert_eq!(next_page_keys(10, 1000, 10), 10);
        assert_eq!(next_page_keys(0, 0, 10), 10);
    }

    #[test]
    fn a_prefix_ends_at_its_last_byte_plus_one_skipping_0xff() {
        assert_eq!(prefix_end(b"echo/"), b"echo0");
        assert_eq!(prefix_end(b"a\xff\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }
}
