//! One ADS stream under the state-of-the-world rules: versions and nonces per resource type, ACK and
//! NACK, stale nonces ignored, a NACK never answered by a resend, pushes when a subscribed list
//! changes, and every subscription released when the stream ends.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::Any;
use tokio::sync::{mpsc, watch, Notify};
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

use super::registry::{Entry, Registry};
use super::resources::{self, Balancing, ASSIGNMENT_TYPE, CLUSTER_TYPE, LISTENER_TYPE};
use crate::etcd::stats::{bump, Gauge, STATS};

/// Most names one stream may subscribe to per resource type: bounds a stream's memory and resolvers.
pub const MAX_NAMES_PER_TYPE: usize = 4096;

const TYPES: [&str; 3] = [LISTENER_TYPE, CLUSTER_TYPE, ASSIGNMENT_TYPE];
const LISTENERS: usize = 0;
const CLUSTERS: usize = 1;
const ASSIGNMENTS: usize = 2;

/// Unique across every stream of the process, so a nonce can never be mistaken for another's.
static NEXT_NONCE: AtomicU64 = AtomicU64::new(1);

/// What every stream of one server shares.
pub struct StreamContext {
    pub registry: Arc<Registry>,
    /// The node id of the server's bootstrap, checked when `check_node_id` is on.
    pub node_id: String,
    pub check_node_id: bool,
    /// This server's open streams.
    pub streams: std::sync::atomic::AtomicUsize,
    /// Turns true when the server stops.
    pub stopping: watch::Receiver<bool>,
}

/// Per resource type: what the client asked for and what it was last sent.
#[derive(Default)]
struct TypeState {
    /// Whether the client asked for this type at all.
    asked: bool,
    names: BTreeSet<String>,
    version: u64,
    /// The nonce of the last response: only a request carrying it acknowledges or rejects.
    nonce: Option<String>,
    /// Fingerprint of the last response's content, so unchanged content is never sent again.
    sent: Option<u64>,
    /// The nonce whose rejection was logged, so each rejected version is logged once.
    nack_logged: Option<String>,
}

struct AdsStream {
    ctx: Arc<StreamContext>,
    out: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    /// Woken by every entry this stream holds when its list changes.
    changed: Arc<Notify>,
    /// Each name this stream holds, with the types that ask for it (bit per type).
    held: HashMap<String, (Arc<Entry>, u8)>,
    types: [TypeState; 3],
    peer: String,
    node_seen: bool,
    ring_hash_ok: bool,
}

/// Serves one stream until the client goes away or the server stops; sends on `out`.
pub async fn run<S>(
    ctx: Arc<StreamContext>,
    mut inbound: S,
    out: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    peer: String,
) where
    S: Stream<Item = Result<DiscoveryRequest, Status>> + Unpin,
{
    let _active = Gauge::up(&STATS.xds_streams_active);
    bump(&STATS.xds_streams_total);
    ctx.streams.fetch_add(1, Ordering::Relaxed);
    let stopped = super::server::until_stopped(ctx.stopping.clone());
    tokio::pin!(stopped);
    let mut stream = AdsStream {
        ctx,
        out,
        changed: Arc::new(Notify::new()),
        held: HashMap::new(),
        types: Default::default(),
        peer,
        node_seen: false,
        ring_hash_ok: false,
    };
    tracing::debug!(peer = stream.peer.as_str(), "xds: stream opened");
    let ended = loop {
        tokio::select! {
            request = inbound.next() => match request {
                Some(Ok(request)) => {
                    if let Err(status) = stream.on_request(request).await {
                        break Some(status);
                    }
                }
                Some(Err(status)) => {
                    tracing::debug!(peer = stream.peer.as_str(), "xds: stream broke: {}", status.message());
                    break None;
                }
                None => break None,
            },
            _ = stream.changed.notified() => {
                if let Err(status) = stream.push_changes().await {
                    break Some(status);
                }
            }
            _ = &mut stopped => break Some(Status::unavailable("the xDS server is stopping")),
        }
    };
    if let Some(status) = ended {
        let _ = stream.out.try_send(Err(status));
    }
    stream.release_all();
    stream.ctx.streams.fetch_sub(1, Ordering::Relaxed);
    tracing::debug!(peer = stream.peer.as_str(), "xds: stream closed");
}

impl AdsStream {
    async fn on_request(&mut self, request: DiscoveryRequest) -> Result<(), Status> {
        if !self.node_seen {
            self.check_node(&request)?;
        }
        let Some(kind) = TYPES.iter().position(|t| *t == request.type_url) else {
            tracing::debug!(peer = self.peer.as_str(), "xds: ignoring a request for type '{}'", request.type_url);
            return Ok(());
        };
        let fresh = request.response_nonce.is_empty();
        {
            let state = &mut self.types[kind];
            if !fresh && state.nonce.as_deref() != Some(request.response_nonce.as_str()) {
                // The client answers an older response; a newer one is on its way to it.
                return Ok(());
            }
            if let Some(error) = &request.error_detail {
                bump(&STATS.xds_nacks);
                if state.nack_logged.as_deref() != Some(request.response_nonce.as_str()) {
                    tracing::warn!(
                        peer = self.peer.as_str(),
                        "xds: the client rejected {} (nonce {}, keeps version '{}'): {}",
                        short_type(kind),
                        request.response_nonce,
                        request.version_info,
                        error.message
                    );
                    state.nack_logged = Some(request.response_nonce.clone());
                }
            } else if !fresh {
                bump(&STATS.xds_acks);
            }
        }
        if request.resource_names.len() > MAX_NAMES_PER_TYPE {
            return Err(Status::resource_exhausted(format!(
                "xds: at most {MAX_NAMES_PER_TYPE} names per resource type on one stream"
            )));
        }
        let names: BTreeSet<String> = request.resource_names.into_iter().collect();
        let changed = !self.types[kind].asked || names != self.types[kind].names;
        if changed {
            self.resubscribe(kind, names);
        }
        if changed || fresh {
            // A fresh request (no nonce) gets the current state even when nothing changed.
            self.send(kind, fresh).await?;
        }
        Ok(())
    }

    fn check_node(&mut self, request: &DiscoveryRequest) -> Result<(), Status> {
        let node = request.node.as_ref();
        if self.ctx.check_node_id && node.map(|n| n.id.as_str()) != Some(self.ctx.node_id.as_str()) {
            tracing::warn!(peer = self.peer.as_str(), "xds: refused a client with another node id");
            return Err(Status::permission_denied("xds: this server answers only its own bootstrap's node id"));
        }
        if let Some(node) = node {
            let version = match &node.user_agent_version_type {
                Some(envoy_types::pb::envoy::config::core::v3::node::UserAgentVersionType::UserAgentVersion(v)) => {
                    v.as_str()
                }
                _ => "",
            };
            self.ring_hash_ok = resources::client_takes_ring_hash(&node.user_agent_name, version);
            tracing::debug!(
                peer = self.peer.as_str(),
                node = node.id.as_str(),
                agent = node.user_agent_name.as_str(),
                version,
                "xds: client"
            );
        }
        self.node_seen = true;
        Ok(())
    }

    /// Holds the entries `names` need for `kind` and lets go of the ones no type needs any more.
    fn resubscribe(&mut self, kind: usize, names: BTreeSet<String>) {
        let bit = 1u8 << kind;
        let needs_entry = kind != LISTENERS;
        let old = std::mem::replace(&mut self.types[kind].names, names);
        self.types[kind].asked = true;
        if !needs_entry {
            return;
        }
        for name in old.difference(&self.types[kind].names) {
            if let Some((entry, mask)) = self.held.get_mut(name) {
                *mask &= !bit;
                if *mask == 0 {
                    let entry = Arc::clone(entry);
                    self.held.remove(name);
                    self.ctx.registry.release(&entry);
                }
            }
        }
        let added: Vec<String> = self.types[kind].names.difference(&old).cloned().collect();
        for name in added {
            match self.held.get_mut(&name) {
                Some((_, mask)) => *mask |= bit,
                None => {
                    let entry = self.ctx.registry.acquire(&name);
                    entry.subscribe(&self.changed);
                    self.held.insert(name, (entry, bit));
                }
            }
        }
    }

    async fn push_changes(&mut self) -> Result<(), Status> {
        for kind in [CLUSTERS, ASSIGNMENTS] {
            if self.types[kind].asked {
                self.send(kind, false).await?;
            }
        }
        Ok(())
    }

    /// Sends `kind`'s current state unless it equals what was last sent (or `force`).
    async fn send(&mut self, kind: usize, force: bool) -> Result<(), Status> {
        let resources = self.resources(kind);
        if kind == ASSIGNMENTS && resources.is_empty() && !self.types[kind].names.is_empty() {
            // No list yet for any name asked: the client waits rather than hearing "nothing".
            return Ok(());
        }
        let mut hasher = DefaultHasher::new();
        for any in &resources {
            any.value.hash(&mut hasher);
        }
        let fingerprint = hasher.finish();
        let state = &mut self.types[kind];
        if !force && state.sent == Some(fingerprint) {
            return Ok(());
        }
        state.version += 1;
        let nonce = NEXT_NONCE.fetch_add(1, Ordering::Relaxed).to_string();
        let response = DiscoveryResponse {
            version_info: state.version.to_string(),
            resources,
            type_url: TYPES[kind].to_string(),
            nonce: nonce.clone(),
            ..Default::default()
        };
        state.nonce = Some(nonce);
        state.sent = Some(fingerprint);
        self.out.send(Ok(response)).await.map_err(|_| Status::cancelled("the client went away"))?;
        bump(&STATS.xds_pushes);
        Ok(())
    }

    fn resources(&self, kind: usize) -> Vec<Any> {
        let names = &self.types[kind].names;
        let entry = |name: &String| self.held.get(name).map(|(e, _)| e);
        match kind {
            LISTENERS => names.iter().map(|n| resources::listener_any(n)).collect(),
            CLUSTERS => names
                .iter()
                .map(|n| {
                    let wanted = entry(n).and_then(|e| e.snapshot()).map_or(Balancing::RoundRobin, |s| s.balancing);
                    let balancing = if wanted == Balancing::RingHash && !self.ring_hash_ok {
                        Balancing::RoundRobin
                    } else {
                        wanted
                    };
                    resources::cluster_any(n, balancing)
                })
                .collect(),
            _ => names
                .iter()
                .filter_map(|n| entry(n).and_then(|e| e.snapshot()).map(|s| resources::assignment_any(n, &s.endpoints)))
                .collect(),
        }
    }

    fn release_all(&mut self) {
        for (_, (entry, _)) in self.held.drain() {
            self.ctx.registry.release(&entry);
        }
    }
}

fn short_type(kind: usize) -> &'static str {
    ["Listener", "Cluster", "ClusterLoadAssignment"][kind]
}
