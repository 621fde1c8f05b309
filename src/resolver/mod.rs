//! Resolvers: parse a target, run its scheme's backend as a task on the runtime, and hand each
//! complete list to a callback or a pull queue. Backends publish through [`ResolverContext`], which
//! applies the [`policy`] (selectors, zone, subset, empty lists, health checking), keeps the last good
//! list through errors and drops updates that change nothing; with `resolve_host_names`, [`names`]
//! stands between a backend and its delivery. With a cache directory, [`cache`] keeps each source's
//! last good list on disk and serves it when the source is unreachable at start.

pub mod cache;
pub mod delivery;
pub mod health;
pub mod names;
pub mod policy;
pub mod static_list;
pub mod subset;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;

pub use delivery::UpdateHandler;

use crate::error::{Error, ErrorKind};
use crate::runtime::{self, Closable};
use crate::target::Target;
use crate::update::{Address, ResolverState, Update};
use cache::{CacheFile, CacheOptions, Cached, Source, Writer};
use delivery::{Delivery, Jobs};
use policy::{EmptyPolicy, Policy};

/// Parses `target` and returns it with `options` whose policy holds the target's query too.
pub fn parse_target(target: &str, options: &ResolverOptions) -> Result<(Target, ResolverOptions), Error> {
    let (parsed, query) = Target::parse_with_policy(target)?;
    let mut options = options.clone();
    options.policy.merge(&query).map_err(|e| {
        Error::new(ErrorKind::InvalidTarget, format!("invalid target '{}': {}", target.escape_debug(), e.message()))
    })?;
    Ok((parsed, options))
}

/// Settings for one resolver; every scheme reads the part that concerns it.
#[derive(Debug, Clone)]
pub struct ResolverOptions {
    /// The language of the gRPC stack the updates go to ("c", "c++", "go", "python"...), used to
    /// choose among service configs that name languages.
    pub client_language: String,
    pub dns: crate::dns::DnsOptions,
    pub etcd: crate::etcd::EtcdResolverOptions,
    /// Look up the `host:port` names in lists (etcd values, `pass:` items) with the core's DNS client
    /// and `dns` options, so that consumers get IP addresses only: each name becomes one entry per
    /// address, with the name's weight, copy, kind and metadata. Opaque strings (`passthrough:`) stay
    /// names. A name that cannot be resolved is a transient error that keeps the last good list.
    pub resolve_host_names: bool,
    /// Selectors, zone preference and the empty-list policy; a target's `?query` adds to them.
    pub policy: Policy,
    /// The cold-start cache: where each source's last good list is kept, and for how long it is served.
    pub cache: CacheOptions,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            client_language: "c".into(),
            dns: Default::default(),
            etcd: Default::default(),
            resolve_host_names: false,
            policy: Policy::default(),
            cache: CacheOptions::default(),
        }
    }
}

/// A backend's running body.
pub(crate) type BackendTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What a backend task holds: where to publish, and how it hears `resolve_now`.
pub struct ResolverContext {
    resolve_now: Arc<Notify>,
    options: Arc<ResolverOptions>,
    /// The options' policy with its environment defaults, applied to every list published.
    policy: Policy,
    out: Publisher,
    cold: Option<ColdStart>,
}

/// A resolver's side of the cold-start cache.
struct ColdStart {
    writer: Arc<Writer>,
    /// The source's list last handed to the writer, so that an unchanged re-list writes nothing.
    stored: Option<(Vec<Address>, Option<String>)>,
    /// The cached list, read before the backend runs; served until the source first answers.
    cached: Arc<Mutex<Option<Cached>>>,
    /// The source error the cached list was last served with: the same error again changes nothing.
    served_for: Option<String>,
}

impl ResolverContext {
    pub fn options(&self) -> &ResolverOptions {
        &self.options
    }

    /// Publishes a fresh complete list after the policy, unless that equals the last one published.
    /// With `empty=keep`, a list the policy leaves empty is a transient error that keeps the last list.
    /// With `health`, the service config handed on asks the stack to check health.
    /// With a cache, the source's list (before the policy) is written behind the delivery when it
    /// differs from the last one written and the consumer gets it as a good list.
    pub fn publish(&mut self, endpoints: Vec<Address>, service_config: Option<String>) {
        let reported = endpoints.len();
        let mut to_store = None;
        if let Some(cold) = &mut self.cold {
            // The source answered: the cached list is never served again.
            cold.cached.lock().take();
            let changed = cold.stored.as_ref().is_none_or(|(e, c)| *e != endpoints || *c != service_config);
            to_store = changed.then(|| (endpoints.clone(), service_config.clone()));
        }
        let kept = self.policy.select(endpoints);
        if kept.is_empty() && self.policy.empty == Some(EmptyPolicy::Keep) {
            let why = match reported {
                0 => "the registry reported an empty list".to_string(),
                n => format!("none of the {n} entries the registry reported matches the selectors"),
            };
            self.out.publish_error(format!("{why}; keeping the last list (empty=keep)"));
            return;
        }
        if let (Some(cold), Some((endpoints, service_config))) = (&mut self.cold, to_store) {
            cold.writer.store(endpoints.clone(), service_config.clone());
            cold.stored = Some((endpoints, service_config));
        }
        let service_config = self.handed_service_config(service_config);
        self.out.publish(kept, service_config)
    }

    /// The service config the stack gets: the source's, with health checking when the policy asks.
    fn handed_service_config(&self, service_config: Option<String>) -> Option<String> {
        match &self.policy.health {
            Some(service) => health::with_health_check(service_config, service),
            None => service_config,
        }
    }

    /// Publishes a transient error: the last good list stays (empty if there never was one). Before
    /// the source's first answer, the cached list (if any) is that list, with its age in the message.
    pub fn publish_error(&mut self, message: impl Into<String>) {
        let message = message.into();
        if !self.serve_cached(&message) {
            self.out.publish_error(message)
        }
    }

    /// Delivers the cached list after the policy, in a transient error saying how old it is; false
    /// when there is none to serve (no cache, the source answered already, or the policy keeps
    /// nothing of it under `empty=keep`).
    fn serve_cached(&mut self, message: &str) -> bool {
        let Some(cold) = &self.cold else { return false };
        let Some(cached) = cold.cached.lock().clone() else { return false };
        if cold.served_for.as_deref() == Some(message) {
            return true;
        }
        let kept = self.policy.select(cached.endpoints.clone());
        if kept.is_empty() && self.policy.empty == Some(EmptyPolicy::Keep) {
            return false;
        }
        let age = cache::age_text(cached.age(SystemTime::now()));
        let why = format!("serving the cached list written {age} ago: {message}");
        let service_config = self.handed_service_config(cached.service_config);
        self.out.publish_stale(kept, service_config, why);
        if let Some(cold) = &mut self.cold {
            cold.served_for = Some(message.to_string());
        }
        true
    }

    /// Completes when `resolve_now` was called since the last time this completed.
    pub async fn resolve_now_requested(&self) {
        self.resolve_now.notified().await
    }

    /// What [`ResolverContext::resolve_now_requested`] waits on, for a backend whose context lives
    /// elsewhere (an etcd resolver's is with its watch).
    pub(crate) fn resolve_now_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.resolve_now)
    }
}

/// Where a publisher's updates go.
enum Sink {
    Delivery(Arc<Delivery>),
    /// To the [`names`] stage, which delivers after looking up the names.
    Names(watch::Sender<Option<Arc<Update>>>),
}

/// Numbers updates, keeps the last good list through errors and drops repeats.
pub(crate) struct Publisher {
    sink: Sink,
    sequence: u64,
    /// Shared with the updates that carry it.
    last_good: Option<(Arc<Vec<Address>>, Option<String>)>,
    last_state: Option<ResolverState>,
}

impl Publisher {
    fn new(sink: Sink) -> Self {
        Publisher { sink, sequence: 0, last_good: None, last_state: None }
    }

    /// Publishes a fresh complete list, unless it equals the last one published.
    pub fn publish(&mut self, endpoints: Vec<Address>, service_config: Option<String>) {
        let unchanged = self.last_state == Some(ResolverState::Ok)
            && self.last_good.as_ref().is_some_and(|(e, c)| **e == endpoints && *c == service_config);
        if unchanged {
            return;
        }
        let endpoints = Arc::new(endpoints);
        self.last_good = Some((Arc::clone(&endpoints), service_config.clone()));
        self.send(ResolverState::Ok, endpoints, service_config);
    }

    /// Whether a list was published: a good one, or the cold-start cache's.
    pub fn has_list(&self) -> bool {
        self.last_good.is_some()
    }

    /// Publishes a list that is not the source's current one (the cold-start cache) in a transient
    /// error: later errors keep it, as they keep a good list, until the source gives one.
    pub fn publish_stale(&mut self, endpoints: Vec<Address>, service_config: Option<String>, message: String) {
        let endpoints = Arc::new(endpoints);
        self.last_good = Some((Arc::clone(&endpoints), service_config.clone()));
        self.send(ResolverState::TransientError(message), endpoints, service_config);
    }

    /// Publishes a transient error: the last good list stays (empty if there never was one).
    pub fn publish_error(&mut self, message: impl Into<String>) {
        let state = ResolverState::TransientError(message.into());
        if self.last_state.as_ref() == Some(&state) {
            return;
        }
        let (endpoints, service_config) = self.last_good.clone().unwrap_or_default();
        self.send(state, endpoints, service_config);
    }

    fn send(&mut self, state: ResolverState, endpoints: Arc<Vec<Address>>, service_config: Option<String>) {
        self.sequence += 1;
        self.last_state = Some(state.clone());
        let update = Update { sequence: self.sequence, state, addresses: endpoints, service_config };
        match &self.sink {
            Sink::Delivery(delivery) => {
                crate::etcd::stats::bump(&crate::etcd::stats::STATS.updates_delivered);
                delivery.publish(update);
            }
            Sink::Names(stage) => {
                stage.send_replace(Some(Arc::new(update)));
            }
        }
    }
}

/// A running resolver. Dropping it closes it.
pub struct Resolver {
    shared: Arc<Shared>,
}

struct Shared {
    target: Target,
    delivery: Arc<Delivery>,
    resolve_now: Arc<Notify>,
    /// The [`names`] stage's own `resolve_now`, when it runs.
    names_now: Option<Arc<Notify>>,
    task: Mutex<Option<AbortHandle>>,
    pid: u32,
    /// Closed right after the delivery: a pull consumer's closure (a push consumer's handler is owned
    /// by the delivery itself), so that `close` and a runtime shutdown release both alike.
    also_close: Option<Arc<dyn Closable>>,
    /// The cache writer, flushed on close so that a process closing its resolvers before it exits
    /// leaves its last list on disk.
    cache: Option<Arc<Writer>>,
}

impl Closable for Shared {
    fn close(&self) {
        if runtime::is_own(self.pid) {
            if let Some(task) = self.task.lock().take() {
                task.abort();
            }
            self.delivery.close();
            if let Some(writer) = &self.cache {
                writer.flush(cache::FLUSH_TIMEOUT);
            }
        } else {
            self.delivery.abandon();
        }
        if let Some(other) = &self.also_close {
            other.close();
        }
    }
}

impl Resolver {
    /// Parses `target` and starts resolving it. Updates go to `handler`, or wait for [`Resolver::next`]
    /// when it is `None`. On error the handler has been dropped.
    pub fn start(
        target: &str,
        options: &ResolverOptions,
        handler: Option<Box<dyn UpdateHandler>>,
    ) -> Result<Self, Error> {
        let (target, options) = parse_target(target, options)?;
        Self::start_parsed(target, &options, handler)
    }

    pub fn start_parsed(
        target: Target,
        options: &ResolverOptions,
        handler: Option<Box<dyn UpdateHandler>>,
    ) -> Result<Self, Error> {
        Self::start_closing(target, options, handler, None)
    }

    /// As [`Resolver::start_parsed`]; `also_close` is closed whenever the resolver is (by `close`, a
    /// runtime shutdown, or a failed start), right after its delivery.
    pub(crate) fn start_closing(
        target: Target,
        options: &ResolverOptions,
        handler: Option<Box<dyn UpdateHandler>>,
        also_close: Option<Arc<dyn Closable>>,
    ) -> Result<Self, Error> {
        let close_also = |also_close: &Option<Arc<dyn Closable>>| {
            if let Some(other) = also_close {
                other.close();
            }
        };
        let home = match runtime::home() {
            Ok(home) => home,
            Err(e) => {
                close_also(&also_close);
                return Err(e);
            }
        };
        let delivery = Delivery::new(handler, Jobs::on(home.handle.clone()));
        let resolve_now = Arc::new(Notify::new());
        let options = Arc::new(options.clone());
        // Passthrough strings go to the connector verbatim, and dns: lists hold no names.
        let resolve_names = options.resolve_host_names && !matches!(target, Target::Passthrough(_) | Target::Dns(_));
        let (sink, names_stage) = if resolve_names {
            let (tx, rx) = watch::channel(None);
            let now = Arc::new(Notify::new());
            let stage = names::run(
                rx,
                Arc::clone(&now),
                Publisher::new(Sink::Delivery(Arc::clone(&delivery))),
                options.dns.clone(),
            );
            (Sink::Names(tx), Some((stage, now)))
        } else {
            (Sink::Delivery(Arc::clone(&delivery)), None)
        };
        let policy = options.policy.resolved();
        // An etcd target's cluster, held until the backend holds it too, so that it is made once.
        let mut cluster = None;
        let writer = cache_writer(&target, &options, &mut cluster);
        let cached = Arc::new(Mutex::new(None));
        let cold = writer.as_ref().map(|writer| ColdStart {
            writer: Arc::clone(writer),
            stored: None,
            cached: Arc::clone(&cached),
            served_for: None,
        });
        let ctx =
            ResolverContext { resolve_now: Arc::clone(&resolve_now), options, policy, out: Publisher::new(sink), cold };
        let body = match backend(&target, ctx) {
            Ok(body) => body,
            Err(e) => {
                delivery.close();
                close_also(&also_close);
                return Err(e);
            }
        };
        drop(cluster);
        let body: BackendTask = match &writer {
            // The cached list is read off the runtime's workers before the backend first runs, so it
            // is there for the first error; the source itself is already being contacted.
            Some(writer) => {
                let writer = Arc::clone(writer);
                Box::pin(async move {
                    let read = tokio::task::spawn_blocking(move || writer.file().load(SystemTime::now())).await;
                    *cached.lock() = read.ok().flatten();
                    body.await
                })
            }
            None => body,
        };
        let (body, names_now): (BackendTask, _) = match names_stage {
            Some((stage, now)) => (
                Box::pin(async move {
                    tokio::join!(body, stage);
                }),
                Some(now),
            ),
            None => (body, None),
        };
        let shared = Arc::new(Shared {
            target,
            delivery,
            resolve_now,
            names_now,
            task: Mutex::new(None),
            pid: std::process::id(),
            also_close,
            cache: writer,
        });
        // Hold the task slot while tracking and spawning, so that a shutdown's close, which may come as
        // soon as the resolver is tracked, cannot miss the abort handle.
        let mut slot = shared.task.lock();
        if let Err(e) = runtime::track(&shared, &home) {
            // A shutdown began since `home`: it would never close this resolver, so it does not start.
            drop(slot);
            shared.close();
            return Err(e);
        }
        *slot = Some(home.handle.spawn(body).abort_handle());
        drop(slot);
        tracing::debug!(scheme = shared.target.scheme(), "resolver started");
        Ok(Resolver { shared })
    }

    pub fn target(&self) -> &Target {
        &self.shared.target
    }

    /// Whether this resolver was started by the parent of this (forked) process: it is inert here.
    pub fn is_inherited(&self) -> bool {
        !runtime::is_own(self.shared.pid)
    }

    /// Asks the backend to look again now (rate limited by the backend).
    pub fn resolve_now(&self) {
        self.shared.resolve_now.notify_one();
        if let Some(names) = &self.shared.names_now {
            names.notify_one();
        }
    }

    /// For resolvers started without a handler: waits for the next update (`None`: forever).
    pub fn next(&self, timeout: Option<Duration>) -> Result<Arc<Update>, Error> {
        self.shared.delivery.next(timeout.unwrap_or(Duration::MAX))
    }

    /// Stops the resolver: see [`delivery`] for the guarantees. Idempotent and thread-safe.
    pub fn close(&self) {
        self.shared.close();
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.close();
    }
}

/// The cache writer of `target`'s source when a cache directory is set and the target has a source
/// (static lists need none). `cluster` receives an etcd target's cluster, to be kept until the
/// backend holds it.
fn cache_writer(
    target: &Target,
    options: &ResolverOptions,
    cluster: &mut Option<Arc<crate::etcd::cluster::Cluster>>,
) -> Option<Arc<Writer>> {
    let dir = options.cache.resolved_dir()?;
    let source = Source::of(target, &options.dns, || {
        let Target::Etcd(t) = target else { return None };
        let found = crate::etcd::cluster::for_ref(&t.cluster).ok()?;
        let members = (0..found.member_count()).map(|i| found.member_url(i).to_string()).collect();
        *cluster = Some(found);
        Some(members)
    })?;
    Some(Writer::new(CacheFile::new(&dir, source, options.cache.max_age)))
}

fn backend(target: &Target, ctx: ResolverContext) -> Result<BackendTask, Error> {
    match target {
        Target::Etcd(t) => crate::etcd::resolver_task(t, ctx),
        Target::Dns(t) => crate::dns::resolver_task(t, ctx),
        Target::Zk(t) => crate::zk::resolver_task(t, ctx),
        other => Ok(static_list::resolver_task(other, ctx)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::update::AddressFamily;

    fn pull_context() -> (ResolverContext, Arc<Delivery>) {
        let delivery = Delivery::new(None, Jobs::on(runtime::handle().unwrap()));
        let ctx = ResolverContext {
            resolve_now: Arc::new(Notify::new()),
            options: Arc::new(ResolverOptions::default()),
            policy: Policy::default(),
            out: Publisher::new(Sink::Delivery(Arc::clone(&delivery))),
            cold: None,
        };
        (ctx, delivery)
    }

    /// A pull context whose cold-start cache lives in a fresh directory, holding `cached` (written
    /// `age` ago) when given, as if read before the backend ran.
    fn cached_context(
        name: &str,
        policy: Policy,
        cached: Option<(&[&str], Duration)>,
    ) -> (ResolverContext, Arc<Delivery>, Arc<Writer>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("gnaming-ctx-cache-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let source = Source { target: format!("etcd:///{name}"), against: "http://127.0.0.1:1".into() };
        let writer = Writer::new(CacheFile::new(&dir, source, cache::DEFAULT_MAX_AGE));
        let cached = cached.map(|(addrs, age)| Cached {
            written: SystemTime::now() - age,
            endpoints: list(addrs),
            service_config: Some("{}".into()),
        });
        let (mut ctx, d) = pull_context();
        ctx.policy = policy;
        ctx.cold = Some(ColdStart {
            writer: Arc::clone(&writer),
            stored: None,
            cached: Arc::new(Mutex::new(cached)),
            served_for: None,
        });
        (ctx, d, writer, dir)
    }

    #[test]
    fn before_the_source_answers_an_error_serves_the_cached_list_with_its_age_then_the_live_list_follows() {
        let (mut ctx, d, writer, dir) =
            cached_context("serve", Policy::default(), Some((&["1.1.1.1:1"], Duration::from_secs(12))));
        ctx.publish_error("etcd unreachable");
        let u = d.next(SHORT).unwrap();
        assert_eq!(u.error_message(), Some("serving the cached list written 12 s ago: etcd unreachable"));
        assert_eq!(addrs(&u), vec!["1.1.1.1:1"], "the cached list must be served");
        assert_eq!(u.service_config.as_deref(), Some("{}"));
        ctx.publish_error("etcd unreachable");
        assert_eq!(d.next(SHORT).unwrap_err().kind(), ErrorKind::Timeout, "the same error was served again");
        ctx.publish(list(&["1.1.1.1:1"]), Some("{}".into()));
        let u = d.next(SHORT).unwrap();
        assert!(u.is_ok(), "the live list, equal to the cached one, must clear the error");
        ctx.publish(list(&["2.2.2.2:2"]), None);
        assert_eq!(addrs(&d.next(SHORT).unwrap()), vec!["2.2.2.2:2"]);
        ctx.publish_error("etcd unreachable again");
        let u = d.next(SHORT).unwrap();
        assert_eq!(u.error_message(), Some("etcd unreachable again"), "once live, errors keep the live list");
        assert_eq!(addrs(&u), vec!["2.2.2.2:2"]);
        assert!(writer.flush(cache::FLUSH_TIMEOUT));
        let on_disk = writer.file().read(SystemTime::now()).unwrap().unwrap();
        assert_eq!(on_disk.endpoints, list(&["2.2.2.2:2"]), "the last good list is on disk");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_cached_list_passes_through_the_policy() {
        let keep = Policy { empty: Some(EmptyPolicy::Keep), ..Policy::default() };
        let mut selected = keep.clone();
        selected.selectors.insert("version".into(), "v9".into());
        let (mut ctx, d, _, dir) = cached_context("policy", selected, Some((&["1.1.1.1:1"], Duration::ZERO)));
        ctx.publish_error("down");
        let u = d.next(SHORT).unwrap();
        assert_eq!((u.error_message(), u.addresses.len()), (Some("down"), 0), "nothing selected is nothing served");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn only_changed_good_lists_are_written_and_an_empty_list_kept_by_empty_keep_is_not() {
        let keep = Policy { empty: Some(EmptyPolicy::Keep), ..Policy::default() };
        let (mut ctx, d, writer, dir) = cached_context("writes", keep, None);
        ctx.publish_error("down");
        assert!(d.next(SHORT).unwrap().addresses.is_empty(), "no cache, no list");
        ctx.publish(list(&["1.1.1.1:1"]), None);
        assert!(writer.flush(cache::FLUSH_TIMEOUT));
        let path = writer.file().path().to_path_buf();
        assert!(path.exists(), "a good list is written");
        std::fs::remove_file(&path).unwrap();
        ctx.publish(list(&["1.1.1.1:1"]), None);
        ctx.publish(list(&[]), None);
        assert!(writer.flush(cache::FLUSH_TIMEOUT));
        assert!(!path.exists(), "an unchanged list and an empty one that empty=keep kept were written");
        ctx.publish(list(&["1.1.1.1:1", "2.2.2.2:2"]), None);
        assert!(writer.flush(cache::FLUSH_TIMEOUT));
        assert_eq!(writer.file().read(SystemTime::now()).unwrap().unwrap().endpoints.len(), 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn list(addrs: &[&str]) -> Vec<Address> {
        addrs.iter().map(|a| Address::backend(a.to_string(), AddressFamily::Ipv4)).collect()
    }

    fn addrs(u: &Update) -> Vec<&str> {
        u.addresses.iter().map(|e| e.address.as_str()).collect()
    }

    const SHORT: Duration = Duration::from_millis(20);

    #[test]
    fn an_error_keeps_the_last_good_list_and_says_why() {
        let (mut ctx, d) = pull_context();
        ctx.publish(list(&["1.1.1.1:1", "2.2.2.2:2"]), Some("{}".into()));
        assert!(d.next(SHORT).unwrap().is_ok());
        ctx.publish_error("etcd unreachable");
        let u = d.next(SHORT).unwrap();
        assert_eq!(u.error_message(), Some("etcd unreachable"));
        assert_eq!(addrs(&u), vec!["1.1.1.1:1", "2.2.2.2:2"], "the last good list must be kept");
        assert_eq!(u.service_config.as_deref(), Some("{}"));
    }

    #[test]
    fn an_error_before_any_list_delivers_no_addresses() {
        let (mut ctx, d) = pull_context();
        ctx.publish_error("no answer");
        let u = d.next(SHORT).unwrap();
        assert!(u.addresses.is_empty() && !u.is_ok());
    }

    #[test]
    fn unchanged_lists_and_repeated_errors_are_not_published_again() {
        let (mut ctx, d) = pull_context();
        ctx.publish(list(&["1.1.1.1:1"]), None);
        assert_eq!(d.next(SHORT).unwrap().sequence, 1);
        ctx.publish(list(&["1.1.1.1:1"]), None);
        assert_eq!(d.next(SHORT).unwrap_err().kind(), ErrorKind::Timeout, "an unchanged list was published");
        ctx.publish_error("down");
        ctx.publish_error("down");
        assert_eq!(d.next(SHORT).unwrap().sequence, 2);
        assert_eq!(d.next(SHORT).unwrap_err().kind(), ErrorKind::Timeout, "a repeated error was published");
        ctx.publish(list(&["1.1.1.1:1"]), None);
        let u = d.next(SHORT).unwrap();
        assert!(u.is_ok(), "recovery with the same list must still be published to clear the error");
        assert_eq!(u.sequence, 3);
    }

    #[test]
    fn with_health_every_update_and_the_kept_list_carry_the_health_check_config() {
        let (mut ctx, d) = pull_context();
        ctx.policy.health = Some("echo.Echo".into());
        ctx.publish(list(&["1.1.1.1:1"]), None);
        let sc = d.next(SHORT).unwrap().service_config.clone().expect("a service config");
        assert!(sc.contains(r#""healthCheckConfig":{"serviceName":"echo.Echo"}"#), "{sc}");
        ctx.publish_error("down");
        assert_eq!(d.next(SHORT).unwrap().service_config.as_deref(), Some(sc.as_str()), "the kept list's config");
        ctx.publish(list(&["1.1.1.1:1"]), Some(r#"{"loadBalancingPolicy":"round_robin"}"#.into()));
        let sc = d.next(SHORT).unwrap().service_config.clone().unwrap();
        assert!(sc.contains("healthCheckConfig") && sc.contains(r#""loadBalancingPolicy":"round_robin""#), "{sc}");
    }
}
