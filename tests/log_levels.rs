//! The library's log filter tells `tracing` the most verbose level it passes, so that callsites above
//! it (h2 and hyper have trace-level ones on every frame) are switched off once, not asked per hit.

use std::sync::{Arc, Mutex};

use gnaming::log::{Level, LogSink};
use tracing::level_filters::LevelFilter;

#[derive(Default)]
struct Seen(Mutex<Vec<(Level, String)>>);

impl LogSink for Seen {
    fn log(&self, level: Level, _target: &str, message: &str) {
        self.0.lock().unwrap().push((level, message.to_string()));
    }
}

#[test]
fn with_no_sink_every_level_is_off_and_a_sink_sets_the_level_to_its_own() {
    assert!(std::env::var_os("GNAMING_LOG").is_none(), "run without GNAMING_LOG: it adds its own level");
    gnaming::log::init();
    assert_eq!(LevelFilter::current(), LevelFilter::OFF, "nothing listens, yet some level is on");

    let seen = Arc::new(Seen::default());
    gnaming::log::set_sink(Some(seen.clone()), Level::Warn);
    assert_eq!(LevelFilter::current(), LevelFilter::WARN);
    tracing::warn!("kept");
    tracing::info!("dropped");
    assert_eq!(*seen.0.lock().unwrap(), [(Level::Warn, "kept".to_string())]);

    gnaming::log::set_sink(Some(seen.clone()), Level::Debug);
    assert_eq!(LevelFilter::current(), LevelFilter::DEBUG);
    tracing::debug!("now kept");
    assert_eq!(seen.0.lock().unwrap().len(), 2, "the raised level did not reach a callsite seen before");

    gnaming::log::set_sink(None, Level::Off);
    assert_eq!(LevelFilter::current(), LevelFilter::OFF);
}
