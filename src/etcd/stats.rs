//! Process-wide counters a host can read (`gn_stats_json`, `gn_stats_prometheus`): the updates every
//! resolver published, what the etcd resolvers, registrations and xDS servers did, and what they hold
//! open now. The `stats!` table below is the one place a stat is named, typed and explained; the JSON
//! and the Prometheus text are both read from it, so the two cannot drift apart.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Whether a stat only grows (counted since the process started) or goes up and down (held now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One stat as a reader sees it: its JSON key, its kind and a sentence saying what it counts.
#[derive(Debug)]
pub struct Definition {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    read: fn(&Stats) -> u64,
}

impl Definition {
    /// The Prometheus name: `gnaming_` and the key, counters ending in `_total` as the convention asks.
    pub fn prometheus_name(&self) -> String {
        match self.kind {
            Kind::Counter if !self.name.ends_with("_total") => format!("gnaming_{}_total", self.name),
            _ => format!("gnaming_{}", self.name),
        }
    }
}

// Counters are AtomicU64 (only `bump`ed); gauges are AtomicI64 moved by `Gauge` guards, read as 0
// when a race shows them below zero for a moment.
macro_rules! stats {
    (@atomic Counter) => { AtomicU64 };
    (@atomic Gauge) => { AtomicI64 };
    (@read Counter, $atomic:expr) => { $atomic.load(Ordering::Relaxed) };
    (@read Gauge, $atomic:expr) => { $atomic.load(Ordering::Relaxed).max(0) as u64 };
    ($($name:ident: $kind:ident, $help:literal;)*) => {
        /// Monotonic counters and current gauges; all relaxed, they are for people and dashboards.
        #[derive(Default)]
        pub struct Stats {
            $(pub $name: stats!(@atomic $kind),)*
        }

        pub static STATS: Stats = Stats {
            $($name: <stats!(@atomic $kind)>::new(0),)*
        };

        /// Every stat, in the order they are shown.
        pub static DEFINITIONS: &[Definition] = &[
            $(Definition {
                name: stringify!($name),
                kind: Kind::$kind,
                help: $help,
                read: |s| stats!(@read $kind, s.$name),
            },)*
        ];
    };
}

stats! {
    updates_delivered: Counter, "Address list updates resolvers published to their callbacks or pull queues.";
    watch_restarts: Counter, "etcd watch streams that failed and were opened again.";
    relists: Counter, "Full reads of a watched etcd prefix after its first one.";
    compactions_seen: Counter,
        "Times etcd compacted away a revision a watch or a paged read still needed, forcing a new read.";
    rewinds_seen: Counter,
        "Times an etcd cluster answered at a revision behind one a watch had already seen (a cluster restored from a backup), forcing a new read.";
    lease_grants: Counter, "etcd leases granted for registrations.";
    lease_renewals: Counter, "etcd lease keep-alives that renewed a registration's lease.";
    lease_losses: Counter, "etcd leases of registrations that expired or could not be renewed.";
    reregistrations: Counter, "Registrations written again under a new lease after they had been registered.";
    watches_active: Gauge, "etcd prefix watches open now, each shared by the resolvers of one prefix.";
    watch_streams_active: Gauge, "etcd watch streams open now, each shared by the prefix watches read through one member.";
    keepalive_streams: Gauge, "etcd lease keep-alive streams open now.";
    registrations_active: Gauge, "Registrations started and not yet closed.";
    registrations_registered: Gauge, "Registrations whose key is in etcd now.";
    clusters_connected: Gauge, "etcd cluster clients held open now.";
    xds_streams_total: Counter, "ADS streams opened by xDS clients.";
    xds_pushes: Counter, "xDS responses sent to xDS clients.";
    xds_acks: Counter, "xDS responses xDS clients accepted (ACK).";
    xds_nacks: Counter, "xDS responses xDS clients rejected (NACK).";
    xds_servers_active: Gauge, "xDS servers running now.";
    xds_streams_active: Gauge, "ADS streams of xDS clients open now.";
    xds_resolvers_active: Gauge,
        "Resolvers the xDS servers hold open now, one per target their clients asked for.";
}

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

/// Every stat with its value now.
pub fn snapshot() -> Vec<(&'static Definition, u64)> {
    DEFINITIONS.iter().map(|d| (d, (d.read)(&STATS))).collect()
}

/// Every stat now as one JSON object keyed by name.
pub fn to_json() -> String {
    json_text(&snapshot())
}

/// Every stat now in the Prometheus text exposition format 0.0.4.
pub fn to_prometheus() -> String {
    prometheus_text(&snapshot())
}

/// `stats` as one JSON object keyed by name.
pub fn json_text(stats: &[(&Definition, u64)]) -> String {
    let object: serde_json::Map<String, serde_json::Value> =
        stats.iter().map(|(d, value)| (d.name.to_string(), (*value).into())).collect();
    serde_json::Value::Object(object).to_string()
}

/// `stats` in the Prometheus text exposition format 0.0.4: for each, `# HELP`, `# TYPE` and one
/// sample without labels.
pub fn prometheus_text(stats: &[(&Definition, u64)]) -> String {
    let mut text = String::new();
    for (d, value) in stats {
        let name = d.prometheus_name();
        let kind = match d.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        // The format's HELP escapes: a backslash and a line feed.
        let help = d.help.replace('\\', "\\\\").replace('\n', "\\n");
        // Writing to a String cannot fail.
        let _ = write!(text, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(name: &'static str, kind: Kind, help: &'static str) -> Definition {
        Definition { name, kind, help, read: |_| 0 }
    }

    #[test]
    fn every_stat_has_a_unique_plain_name_and_a_one_line_sentence_of_help() {
        let mut names: Vec<&str> = DEFINITIONS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DEFINITIONS.len(), "a name appears twice: {names:?}");
        for d in DEFINITIONS {
            assert!(d.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "name {:?}", d.name);
            assert!(d.help.len() > 20 && d.help.ends_with('.') && !d.help.contains('\n'), "{}: {:?}", d.name, d.help);
        }
    }

    #[test]
    fn counters_end_in_total_once_and_gauges_never() {
        for d in DEFINITIONS {
            let name = d.prometheus_name();
            assert!(name.starts_with("gnaming_") && !name.ends_with("_total_total"), "{name}");
            assert_eq!(name.ends_with("_total"), d.kind == Kind::Counter, "{name} is a {:?}", d.kind);
        }
        let names: Vec<String> = DEFINITIONS.iter().map(Definition::prometheus_name).collect();
        assert!(names.contains(&"gnaming_updates_delivered_total".to_string()), "{names:?}");
        assert!(names.contains(&"gnaming_xds_streams_total".to_string()), "{names:?}");
        assert!(names.contains(&"gnaming_watches_active".to_string()), "{names:?}");
    }

    #[test]
    fn prometheus_text_gives_help_type_and_sample_per_stat_and_escapes_help() {
        let counter = definition("pushes", Kind::Counter, "Responses sent.");
        let gauge = definition("open", Kind::Gauge, "A back\\slash and\na line feed.");
        let text = prometheus_text(&[(&counter, 7), (&gauge, 0)]);
        assert_eq!(
            text,
            "# HELP gnaming_pushes_total Responses sent.\n\
             # TYPE gnaming_pushes_total counter\n\
             gnaming_pushes_total 7\n\
             # HELP gnaming_open A back\\\\slash and\\na line feed.\n\
             # TYPE gnaming_open gauge\n\
             gnaming_open 0\n"
        );
    }

    #[test]
    fn json_and_prometheus_show_the_same_stats_with_the_same_values() {
        let stats: Vec<(&Definition, u64)> =
            DEFINITIONS.iter().zip(1u64..).map(|(d, i)| (d, i * 1_000_000_007)).collect();
        let json: serde_json::Value = serde_json::from_str(&json_text(&stats)).unwrap();
        let text = prometheus_text(&stats);
        assert_eq!(json.as_object().unwrap().len(), DEFINITIONS.len());
        for (d, value) in &stats {
            assert_eq!(json[d.name].as_u64(), Some(*value), "{} in {json}", d.name);
            let sample = format!("\n{} {value}\n", d.prometheus_name());
            assert!(text.contains(&sample), "{sample:?} missing in:\n{text}");
        }
        assert_eq!(text.lines().count(), 3 * DEFINITIONS.len(), "{text}");
    }

    #[test]
    fn a_gauge_below_zero_for_a_moment_reads_as_zero_and_counters_read_in_full() {
        let stats = Stats::default();
        stats.watches_active.store(-1, Ordering::Relaxed);
        stats.relists.store(u64::MAX, Ordering::Relaxed);
        let read = |name: &str| (DEFINITIONS.iter().find(|d| d.name == name).unwrap().read)(&stats);
        assert_eq!(read("watches_active"), 0);
        assert_eq!(read("relists"), u64::MAX);
    }
}
