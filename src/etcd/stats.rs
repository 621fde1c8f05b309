//! Process-wide counters a host can read (`gn_stats_json`): the updates every resolver published,
//! what the etcd resolvers and registrations did, and what they hold open now.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Monotonic counters and current gauges; all relaxed, they are for people and dashboards.
#[derive(Default)]
pub struct Stats {
    pub updates_delivered: AtomicU64,
    pub watch_restarts: AtomicU64,
    pub relists: AtomicU64,
    pub compactions_seen: AtomicU64,
    pub lease_grants: AtomicU64,
    pub lease_renewals: AtomicU64,
    pub lease_losses: AtomicU64,
    pub reregistrations: AtomicU64,
    pub watches_active: AtomicI64,
    pub keepalive_streams: AtomicI64,
    pub registrations_active: AtomicI64,
    pub registrations_registered: AtomicI64,
    pub clusters_connected: AtomicI64,
    pub xds_streams_total: AtomicU64,
    pub xds_pushes: AtomicU64,
    pub xds_acks: AtomicU64,
    pub xds_nacks: AtomicU64,
    pub xds_servers_active: AtomicI64,
    pub xds_streams_active: AtomicI64,
    pub xds_resolvers_active: AtomicI64,
}

pub static STATS: Stats = Stats {
    updates_delivered: AtomicU64::new(0),
    watch_restarts: AtomicU64::new(0),
    relists: AtomicU64::new(0),
    compactions_seen: AtomicU64::new(0),
    lease_grants: AtomicU64::new(0),
    lease_renewals: AtomicU64::new(0),
    lease_losses: AtomicU64::new(0),
    reregistrations: AtomicU64::new(0),
    watches_active: AtomicI64::new(0),
    keepalive_streams: AtomicI64::new(0),
    registrations_active: AtomicI64::new(0),
    registrations_registered: AtomicI64::new(0),
    clusters_connected: AtomicI64::new(0),
    xds_streams_total: AtomicU64::new(0),
    xds_pushes: AtomicU64::new(0),
    xds_acks: AtomicU64::new(0),
    xds_nacks: AtomicU64::new(0),
    xds_servers_active: AtomicI64::new(0),
    xds_streams_active: AtomicI64::new(0),
    xds_resolvers_active: AtomicI64::new(0),
};

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds one to a gauge until the guard drops, so early returns and aborted tasks cannot leak it.
pub(crate) struct Gauge(&'static AtomicI64);

impl Gauge {
    pub(crate) fn up(gauge: &'static AtomicI64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Gauge(gauge)
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every counter as one JSON object.
pub fn to_json() -> String {
    let s = &STATS;
    let u = |c: &AtomicU64| serde_json::Value::from(c.load(Ordering::Relaxed));
    let g = |c: &AtomicI64| serde_json::Value::from(c.load(Ordering::Relaxed).max(0));
    serde_json::json!({
        "updates_delivered": u(&s.updates_delivered),
        "watch_restarts": u(&s.watch_restarts),
        "relists": u(&s.relists),
        "compactions_seen": u(&s.compactions_seen),
        "lease_grants": u(&s.lease_grants),
        "lease_renewals": u(&s.lease_renewals),
        "lease_losses": u(&s.lease_losses),
        "reregistrations": u(&s.reregistrations),
        "watches_active": g(&s.watches_active),
        "keepalive_streams": g(&s.keepalive_streams),
        "registrations_active": g(&s.registrations_active),
        "registrations_registered": g(&s.registrations_registered),
        "clusters_connected": g(&s.clusters_connected),
        "xds_streams_total": u(&s.xds_streams_total),
        "xds_pushes": u(&s.xds_pushes),
        "xds_acks": u(&s.xds_acks),
        "xds_nacks": u(&s.xds_nacks),
        "xds_servers_active": g(&s.xds_servers_active),
        "xds_streams_active": g(&s.xds_streams_active),
        "xds_resolvers_active": g(&s.xds_resolvers_active),
    })
    .to_string()
}
