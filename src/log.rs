//! Logging: the library logs through `tracing`; `GNAMING_LOG` (a level, or `target=level` pairs with
//! an optional default, e.g. `info` or `warn,gnaming::etcd=debug`) sends it to stderr, and a host may install one sink that receives every
//! event up to a level it chooses.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Once};

use parking_lot::RwLock;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt};
use tracing_subscriber::Registry;

/// Severity, most severe first; a sink with maximum `Info` receives Error, Warn and Info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl Level {
    fn of(level: &tracing::Level) -> Level {
        match *level {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::TRACE => Level::Trace,
        }
    }
}

/// Receives log events; may be called from several threads at once.
pub trait LogSink: Send + Sync {
    fn log(&self, level: Level, target: &str, message: &str);
}

static SINK: RwLock<Option<Arc<dyn LogSink>>> = RwLock::new(None);
static SINK_LEVEL: AtomicU8 = AtomicU8::new(Level::Off as u8);
static INIT: Once = Once::new();

/// Installs the library's subscriber once per process. If the process already has a global
/// `tracing` subscriber (a Rust host), events go to that one instead.
pub fn init() {
    INIT.call_once(|| {
        let stderr = std::env::var("GNAMING_LOG").ok().filter(|v| !v.is_empty()).map(|spec| {
            let filter = spec.parse::<Targets>().unwrap_or_else(|e| {
                eprintln!("gnaming: GNAMING_LOG={spec:?} is not a valid filter ({e}); logging warnings");
                Targets::new().with_default(LevelFilter::WARN)
            });
            tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter)
        });
        let host = HostLayer.with_filter(SinkLevel);
        let _ = tracing::subscriber::set_global_default(Registry::default().with(stderr).with(host));
    });
}

/// Replaces the host sink (`None` removes it). The old sink is released when its running calls end.
pub fn set_sink(sink: Option<Arc<dyn LogSink>>, max_level: Level) {
    init();
    let level = if sink.is_some() { max_level } else { Level::Off };
    let old = std::mem::replace(&mut *SINK.write(), sink);
    SINK_LEVEL.store(level as u8, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
    drop(old);
}

struct HostLayer;

/// Lets through the events up to the host sink's level, and tells `tracing` that level: with no sink
/// (or a low level) every callsite above it is then switched off where it stands, once, instead of
/// being asked on every hit. h2 and hyper hit trace-level callsites on every frame of every stream.
/// `set_sink` rebuilds the callsites' interest whenever the level changes.
struct SinkLevel;

impl SinkLevel {
    fn passes(meta: &Metadata<'_>) -> bool {
        Level::of(meta.level()) as u8 <= SINK_LEVEL.load(Ordering::Relaxed)
    }
}

impl<S> Filter<S> for SinkLevel {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        Self::passes(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if Self::passes(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match SINK_LEVEL.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }
}

impl<S: Subscriber> Layer<S> for HostLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(sink) = SINK.read().clone() else { return };
        let mut text = MessageText::default();
        event.record(&mut text);
        let meta = event.metadata();
        let _scope = crate::runtime::CallbackScope::enter();
        let call = std::panic::AssertUnwindSafe(|| sink.log(Level::of(meta.level()), meta.target(), &text.0));
        let _ = std::panic::catch_unwind(call);
    }
}

/// The event's message followed by its other fields as `name=value`.
#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}
