//! ZooKeeper: `zk:` targets resolved from the children of a node, kept current by a persistent
//! recursive watch, re-listed after every reconnect and on a new session after expiry.

pub mod ensemble;
pub mod node;
pub mod registration;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use zookeeper_client::{AddWatchMode, Client, EventType, MultiReadResult, SessionInfo, SessionState, WatchedEvent};

use crate::error::Error;
use crate::etcd::backoff::Backoff;
use crate::etcd::value::Entry;
use crate::resolver::{BackendTask, ResolverContext};
use crate::target::ZkTarget;
use ensemble::EnsembleConfig;

/// Asked of the ensemble, which bounds it by its own minimum and maximum (2 and 20 ticks). A client
/// cut off for 7/5 of it (8.4 s) takes its session for expired and starts a new one.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// `resolve_now` re-lists at most this often.
const RELIST_INTERVAL: Duration = Duration::from_secs(1);
/// Children read in one multi-read request: a request stays far below ZooKeeper's 1 MiB
/// `jute.maxbuffer` with the usual few hundred bytes a child.
const READ_BATCH: usize = 200;

/// Starts the watch of the target's node.
pub(crate) fn resolver_task(target: &ZkTarget, ctx: ResolverContext) -> Result<BackendTask, Error> {
    let ensemble = ensemble::for_ref(&target.ensemble)?;
    let node = Node { ensemble, path: target.path.clone(), copies: target.copies, children: BTreeMap::new() };
    Ok(Box::pin(node.run(ctx)))
}

/// One resolver's view of its node: child name → its address (`None`: withdrawn or unreadable).
struct Node {
    ensemble: Arc<EnsembleConfig>,
    path: String,
    copies: u32,
    children: BTreeMap<String, Entry>,
}

/// What a session has still to do after the events applied so far.
#[derive(Default)]
struct Pending {
    /// Set the watch again (after a reconnect).
    watch: bool,
    /// Read every child anew.
    list: bool,
    /// The children changed: publish them.
    publish: bool,
}

/// What ended a session's work.
enum SessionEnd {
    /// Expired, closed or refused: a new session starts.
    Terminated(String),
    /// The watch could not be set: the session is given up too.
    Failed(String),
}

impl Node {
    async fn run(mut self, mut ctx: ResolverContext) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        loop {
            let client = match self.ensemble.connect(SESSION_TIMEOUT).await {
                Ok(client) => client,
                Err(e) => {
                    let message = format!("ZooKeeper {}: {e}", self.ensemble.servers);
                    tracing::warn!("zk watch on '{}': {message}", self.path);
                    ctx.publish_error(message);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next()) => {}
                        _ = ctx.resolve_now_requested() => {}
                    }
                    continue;
                }
            };
            backoff.reset();
            sessions().insert(self.path.clone(), client.session().clone());
            let end = self.session(&client, &mut ctx).await;
            let message = match end {
                SessionEnd::Terminated(m) | SessionEnd::Failed(m) => m,
            };
            tracing::warn!("zk watch on '{}': {message}; starting a new session", self.path);
            ctx.publish_error(format!("ZooKeeper {}: {message}", self.ensemble.servers));
            drop(client);
            tokio::time::sleep(backoff.next()).await;
        }
    }

    /// Watches and lists on one session until it ends. The persistent recursive watch is set before
    /// each list, so every change after the list's reads arrives as an event. After a reconnect the
    /// watch is set again and the node listed again: events during a disconnection are not replayed
    /// (ZOOKEEPER-4698), and the watch the client library re-registers by itself was seen to stay
    /// silent after a leader election.
    async fn session(&mut self, client: &Client, ctx: &mut ResolverContext) -> SessionEnd {
        let mut watcher = match client.watch(&self.path, AddWatchMode::PersistentRecursive).await {
            Ok(watcher) => watcher,
            Err(e) => return SessionEnd::Failed(format!("watch of '{}' not set: {}", self.path, describe(&e))),
        };
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut pending = Pending { list: true, ..Pending::default() };
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut last_list: Option<Instant> = None;
        loop {
            if pending.watch {
                match client.watch(&self.path, AddWatchMode::PersistentRecursive).await {
                    // The old watcher goes only now, after the new one is set: the path stays watched.
                    Ok(fresh) => {
                        watcher = fresh;
                        pending.watch = false;
                        pending.list = true;
                    }
                    // Lost again: the next session event brings another try.
                    Err(zookeeper_client::Error::ConnectionLoss) => {}
                    Err(e) => return SessionEnd::Failed(format!("watch of '{}' not set again: {e}", self.path)),
                }
            }
            if pending.list && !pending.watch && retry_at.is_none() {
                match self.list(client).await {
                    Ok(()) => {
                        pending.list = false;
                        backoff.reset();
                        last_list = Some(Instant::now());
                        self.publish(ctx);
                    }
                    Err(e) => {
                        ctx.publish_error(format!(
                            "ZooKeeper {}: list of '{}': {}",
                            self.ensemble.servers,
                            self.path,
                            describe(&e)
                        ));
                        // A lost connection ends in a session event that lists again; other errors retry.
                        if e != zookeeper_client::Error::ConnectionLoss {
                            retry_at = Some(tokio::time::Instant::now() + backoff.next());
                        }
                    }
                }
            }
            let retry = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = watcher.changed() => {
                    if let Some(end) = self.on_event(client, ctx, event, &mut pending).await {
                        return end;
                    }
                    // Apply every event already waiting before one publish: a burst becomes one list.
                    loop {
                        tokio::select! {
                            biased;
                            event = watcher.changed() => {
                                if let Some(end) = self.on_event(client, ctx, event, &mut pending).await {
                                    return end;
                                }
                            }
                            _ = std::future::ready(()) => break,
                        }
                    }
                    // Only node events change the list: after a session event, a publish would turn the
                    // transient error of a lost connection back into OK.
                    if std::mem::take(&mut pending.publish) && !pending.list {
                        self.publish(ctx);
                    }
                }
                _ = retry => retry_at = None,
                _ = ctx.resolve_now_requested() => {
                    if last_list.is_none_or(|t| t.elapsed() >= RELIST_INTERVAL) {
                        pending.list = true;
                    }
                }
            }
        }
    }

    /// Applies one event; `Some` when the session is over.
    async fn on_event(
        &mut self,
        client: &Client,
        ctx: &mut ResolverContext,
        event: WatchedEvent,
        pending: &mut Pending,
    ) -> Option<SessionEnd> {
        if event.event_type == EventType::Session {
            match event.session_state {
                SessionState::Disconnected => {
                    ctx.publish_error(format!(
                        "ZooKeeper {}: connection lost, reconnecting; the list is the last one read",
                        self.ensemble.servers
                    ));
                }
                SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                    pending.watch = true;
                    pending.list = true;
                }
                state => return Some(SessionEnd::Terminated(format!("session {state}"))),
            }
            return None;
        }
        // With a list coming, it reads everything anew.
        if !pending.list {
            self.on_node_event(client, event, pending).await;
        }
        None
    }

    /// Applies a change of the node or of one of its children.
    async fn on_node_event(&mut self, client: &Client, event: WatchedEvent, pending: &mut Pending) {
        pending.publish = true;
        if event.path == self.path {
            match event.event_type {
                EventType::NodeCreated => pending.list = true,
                EventType::NodeDeleted => self.children.clear(),
                _ => {}
            }
            return;
        }
        let Some(child) = event.path.strip_prefix(&self.path).and_then(|rest| rest.strip_prefix('/')) else { return };
        if child.contains('/') {
            // Below an instance's node: no instance of this service.
            return;
        }
        let child = child.to_string();
        match event.event_type {
            EventType::NodeDeleted => {
                self.children.remove(&child);
            }
            EventType::NodeCreated | EventType::NodeDataChanged => match client.get_data(&event.path).await {
                Ok((data, _)) => {
                    let entry = self.read(&child, &data);
                    self.children.insert(child, entry);
                }
                Err(zookeeper_client::Error::NoNode) => {
                    self.children.remove(&child);
                }
                Err(e) => {
                    tracing::warn!("zk node '{}' not read: {e}; listing again", event.path);
                    pending.list = true;
                }
            },
            _ => {}
        }
    }

    /// Reads the node's children and their data anew (the data in multi-read batches).
    async fn list(&mut self, client: &Client) -> Result<(), zookeeper_client::Error> {
        let names = match client.list_children(&self.path).await {
            Ok(names) => names,
            // No node yet: no instances. Its creation arrives as an event.
            Err(zookeeper_client::Error::NoNode) => {
                self.children.clear();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut children = BTreeMap::new();
        for batch in names.chunks(READ_BATCH) {
            let mut reader = client.new_multi_reader();
            for name in batch {
                reader.add_get_data(&format!("{}/{name}", self.path))?;
            }
            for (name, result) in batch.iter().zip(reader.commit().await?) {
                match result {
                    MultiReadResult::Data { data, .. } => {
                        children.insert(name.clone(), self.read(name, &data));
                    }
                    // Deleted since the children were listed; that event is on its way.
                    MultiReadResult::Error { err: zookeeper_client::Error::NoNode } => {}
                    MultiReadResult::Error { err } => {
                        tracing::warn!("zk node '{}/{name}' skipped: {err}", self.path);
                        children.insert(name.clone(), Entry::Withdrawn);
                    }
                    other => return Err(zookeeper_client::Error::UnexpectedError(format!("{other:?}"))),
                }
            }
        }
        self.children = children;
        Ok(())
    }

    fn read(&self, child: &str, data: &[u8]) -> Entry {
        node::parse(data).unwrap_or_else(|reason| {
            tracing::warn!("zk node '{}/{child}' skipped: {reason}", self.path);
            Entry::Withdrawn
        })
    }

    /// Publishes the children's addresses in child-name order.
    fn publish(&self, ctx: &mut ResolverContext) {
        let mut endpoints = Vec::new();
        for endpoint in self.children.values().flat_map(Entry::addresses) {
            endpoint.clone().push_copies(self.copies, &mut endpoints);
        }
        ctx.publish(endpoints, None);
    }
}

/// A ZooKeeper error as a message, saying what to check where the library's own words do not.
pub(crate) fn describe(e: &zookeeper_client::Error) -> String {
    match e {
        zookeeper_client::Error::NoAuth => {
            "not authorized: the node's ACL refuses this session's credentials (an ensemble's digest \
             credentials are set with gn_zk_options_set_digest)"
                .to_string()
        }
        other => other.to_string(),
    }
}

/// The newest session of each watched path, for tests that expire it.
static SESSIONS: Mutex<Option<HashMap<String, SessionInfo>>> = Mutex::new(None);

fn sessions() -> parking_lot::MappedMutexGuard<'static, HashMap<String, SessionInfo>> {
    parking_lot::MutexGuard::map(SESSIONS.lock(), |s| s.get_or_insert_with(HashMap::new))
}

/// For tests that must expire a resolver's session the way ZooKeeper does: the session the newest
/// resolver of `path` opened, which a test closes from a client of its own.
#[doc(hidden)]
pub fn session_of(path: &str) -> Option<SessionInfo> {
    sessions().get(path).cloned()
}
