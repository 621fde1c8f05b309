//! One xDS server's targets: for every name some stream asks for, one resolver (shared by all streams
//! asking for it) and the latest list in xDS form; closed when the last stream lets go.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;

use super::names;
use super::resources::{self, Balancing, XdsEndpoint};
use crate::etcd::stats::{Gauge, STATS};
use crate::resolver::names::NameLookup;
use crate::resolver::{Resolver, ResolverOptions};
use crate::update::Update;

/// What the clients of one name get now.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub endpoints: Vec<XdsEndpoint>,
    pub balancing: Balancing,
}

/// One target served under one or more listener names.
pub struct Entry {
    pub target: String,
    /// `None` until the source gave its first good list: no assignment is sent before that.
    snapshot: Mutex<Option<Arc<Snapshot>>>,
    /// The streams to wake when the snapshot changes.
    subscribers: Mutex<Vec<Weak<Notify>>>,
    resolver: Mutex<Option<Resolver>>,
    task: Mutex<Option<AbortHandle>>,
    _gauge: Option<Gauge>,
}

impl Entry {
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.lock().clone()
    }

    pub fn subscribe(&self, notify: &Arc<Notify>) {
        self.subscribers.lock().push(Arc::downgrade(notify));
    }

    fn set(&self, snapshot: Snapshot) {
        {
            let mut slot = self.snapshot.lock();
            if slot.as_deref() == Some(&snapshot) {
                return;
            }
            *slot = Some(Arc::new(snapshot));
        }
        let mut subscribers = self.subscribers.lock();
        subscribers.retain(|s| match s.upgrade() {
            Some(notify) => {
                notify.notify_one();
                true
            }
            None => false,
        });
    }

    fn close(&self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        // Closing a resolver waits for its delivery thread: never on a runtime worker.
        if let Some(resolver) = self.resolver.lock().take() {
            if Handle::try_current().is_ok() {
                tokio::task::spawn_blocking(move || drop(resolver));
            } else {
                drop(resolver);
            }
        }
    }
}

/// The names a server serves, shared by its streams.
pub struct Registry {
    entries: Mutex<HashMap<String, (Arc<Entry>, usize)>>,
    options: ResolverOptions,
    default_scheme: String,
    handle: Handle,
}

impl Registry {
    pub fn new(options: ResolverOptions, default_scheme: String, handle: Handle) -> Self {
        Registry { entries: Mutex::new(HashMap::new()), options, default_scheme, handle }
    }

    /// The entry serving listener `name`, started on first use. A name that is no valid target gets an
    /// entry with an empty list at once, so that its clients fail fast instead of waiting 15 s.
    pub fn acquire(&self, name: &str) -> Arc<Entry> {
        let key = match names::target_for_listener(name, &self.default_scheme) {
            Ok(target) => target,
            Err(e) => {
                tracing::warn!("xds: listener '{name}' names no target: {}", e.message());
                return Arc::new(empty_entry(name));
            }
        };
        let mut entries = self.entries.lock();
        if let Some((entry, users)) = entries.get_mut(&key) {
            *users += 1;
            return Arc::clone(entry);
        }
        let entry = self.start(&key);
        entries.insert(key, (Arc::clone(&entry), 1));
        entry
    }

    /// Lets go of an entry from [`Registry::acquire`]; the last user closes its resolver.
    pub fn release(&self, entry: &Arc<Entry>) {
        let mut entries = self.entries.lock();
        let Some((held, users)) = entries.get_mut(&entry.target) else { return };
        if !Arc::ptr_eq(held, entry) {
            return;
        }
        *users -= 1;
        if *users == 0 {
            let (entry, _) = entries.remove(&entry.target).expect("present");
            drop(entries);
            tracing::debug!(target = entry.target.as_str(), "xds: no stream asks for it any more; closing");
            entry.close();
        }
    }

    /// Closes every resolver, for a server that stops.
    pub fn close_all(&self) {
        let entries: Vec<_> = self.entries.lock().drain().map(|(_, (e, _))| e).collect();
        for entry in entries {
            entry.close();
        }
    }

    /// How many targets have a running resolver.
    pub fn resolvers(&self) -> usize {
        self.entries.lock().len()
    }

    fn start(&self, target: &str) -> Arc<Entry> {
        let (tx, mut rx) = watch::channel::<Option<Arc<Update>>>(None);
        let handler = move |update: &Arc<Update>| {
            let _ = tx.send(Some(Arc::clone(update)));
        };
        let resolver = match Resolver::start(target, &self.options, Some(Box::new(handler))) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("xds: cannot resolve '{target}': {}", e.message());
                return Arc::new(empty_entry(target));
            }
        };
        let entry = Arc::new(Entry {
            target: target.to_string(),
            snapshot: Mutex::new(None),
            subscribers: Mutex::new(Vec::new()),
            resolver: Mutex::new(Some(resolver)),
            task: Mutex::new(None),
            _gauge: Some(Gauge::up(&STATS.xds_resolvers_active)),
        });
        let weak = Arc::downgrade(&entry);
        let options = self.options.clone();
        let task = self.handle.spawn(async move {
            let mut names = NameLookup::new(&options.dns);
            while rx.changed().await.is_ok() {
                let Some(update) = rx.borrow_and_update().clone() else { continue };
                let Some(first) = weak.upgrade().map(|entry| entry.snapshot.lock().is_none()) else { return };
                let Some(snapshot) = snapshot_of(&update, &mut names, first).await else { continue };
                match weak.upgrade() {
                    Some(entry) => entry.set(snapshot),
                    None => return,
                }
            }
        });
        *entry.task.lock() = Some(task.abort_handle());
        entry
    }
}

fn empty_entry(target: &str) -> Entry {
    Entry {
        target: target.to_string(),
        snapshot: Mutex::new(Some(Arc::new(Snapshot { endpoints: Vec::new(), balancing: Balancing::RoundRobin }))),
        subscribers: Mutex::new(Vec::new()),
        resolver: Mutex::new(None),
        task: Mutex::new(None),
        _gauge: None,
    }
}

/// The snapshot an update gives, or `None` to keep the last one: a transient error keeps the last
/// assignment (an outage must not drain clients), and so does a host name that cannot be resolved.
/// Before the `first` assignment, a transient error's list (the cold-start cache's) is sent.
async fn snapshot_of(update: &Update, names: &mut NameLookup, first: bool) -> Option<Snapshot> {
    if let Some(error) = update.error_message() {
        if !first || update.addresses.is_empty() {
            tracing::debug!("xds: keeping the last assignment through a transient error: {error}");
            return None;
        }
    }
    let mut converted = resources::convert(&update.addresses);
    if !converted.skipped.is_empty() {
        tracing::warn!("xds: entries an xDS client cannot dial were left out: {}", converted.skipped.join(", "));
    }
    for (address, entry) in std::mem::take(&mut converted.names) {
        match names.resolve(&address).await {
            Ok(ips) => {
                let more = ips.into_iter().map(|ip| resources::endpoint_at(ip, &entry)).collect();
                resources::merge(&mut converted.endpoints, more);
            }
            Err(e) => {
                tracing::warn!("xds: keeping the last assignment: cannot resolve '{address}': {e}");
                return None;
            }
        }
    }
    Some(Snapshot {
        endpoints: converted.endpoints,
        balancing: resources::balancing_from_service_config(update.service_config.as_deref()),
    })
}
