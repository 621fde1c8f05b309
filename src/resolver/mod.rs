//! Resolvers: parse a target, run its scheme's backend as a task on the runtime, and hand each
//! complete list to a callback or a pull queue. Backends publish through [`ResolverContext`], which
//! applies the [`policy`] (selectors, zone, subset, empty lists, health checking), keeps the last good
//! list through errors and drops updates that change nothing; with `resolve_host_names`, [`names`]
//! stands between a backend and its delivery.

pub mod delivery;
pub mod health;
pub mod names;
pub mod policy;
pub mod static_list;
pub mod subset;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;

pub use delivery::UpdateHandler;

use crate::error::{Error, ErrorKind};
use crate::runtime::{self, Closable};
use crate::target::Target;
use crate::update::{Endpoint, ResolverState, Update};
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
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            client_language: "c".into(),
            dns: Default::default(),
            etcd: Default::default(),
            resolve_host_names: false,
            policy: Policy::default(),
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
}

impl ResolverContext {
    pub fn options(&self) -> &ResolverOptions {
        &self.options
    }

    /// Publishes a fresh complete list after the policy, unless that equals the last one published.
    /// With `empty=keep`, a list the policy leaves empty is a transient error that keeps the last list.
    /// With `health`, the service config handed on asks the stack to check health.
    pub fn publish(&mut self, endpoints: Vec<Endpoint>, service_config: Option<String>) {
        let reported = endpoints.len();
        let kept = self.policy.select(endpoints);
        if kept.is_empty() && self.policy.empty == Some(EmptyPolicy::Keep) {
            let why = match reported {
                0 => "the registry reported an empty list".to_string(),
                n => format!("none of the {n} entries the registry reported matches the selectors"),
            };
            self.out.publish_error(format!("{why}; keeping the last list (empty=keep)"));
            return;
        }
        let service_config = match &self.policy.health {
            Some(service) => health::with_health_check(service_config, service),
            None => service_config,
        };
        self.out.publish(kept, service_config)
    }

    /// Publishes a transient error: the last good list stays (empty if there never was one).
    pub fn publish_error(&mut self, message: impl Into<String>) {
        self.out.publish_error(message)
    }

    /// Completes when `resolve_now` was called since the last time this completed.
    pub async fn resolve_now_requested(&self) {
        self.resolve_now.notified().await
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
    last_good: Option<(Vec<Endpoint>, Option<String>)>,
    last_state: Option<ResolverState>,
}

impl Publisher {
    fn new(sink: Sink) -> Self {
        Publisher { sink, sequence: 0, last_good: None, last_state: None }
    }

    /// Publishes a fresh complete list, unless it equals the last one published.
    pub fn publish(&mut self, endpoints: Vec<Endpoint>, service_config: Option<String>) {
        let unchanged = self.last_state == Some(ResolverState::Ok)
            && self.last_good.as_ref().is_some_and(|(e, c)| *e == endpoints && *c == service_config);
        if unchanged {
            return;
        }
        self.last_good = Some((endpoints.clone(), service_config.clone()));
        self.send(ResolverState::Ok, endpoints, service_config);
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

    fn send(&mut self, state: ResolverState, endpoints: Vec<Endpoint>, service_config: Option<String>) {
        self.sequence += 1;
        self.last_state = Some(state.clone());
        let update = Update { sequence: self.sequence, state, endpoints, service_config };
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
}

impl Closable for Shared {
    fn close(&self) {
        if runtime::is_own(self.pid) {
            if let Some(task) = self.task.lock().take() {
                task.abort();
            }
            self.delivery.close();
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
        let ctx = ResolverContext { resolve_now: Arc::clone(&resolve_now), options, policy, out: Publisher::new(sink) };
        let body = match backend(&target, ctx) {
            Ok(body) => body,
            Err(e) => {
                delivery.close();
                close_also(&also_close);
                return Err(e);
            }
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

fn backend(target: &Target, ctx: ResolverContext) -> Result<BackendTask, Error> {
    match target {
        Target::Etcd(t) => crate::etcd::resolver_task(t, ctx),
        Target::Dns(t) => crate::dns::resolver_task(t, ctx),
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
        };
        (ctx, delivery)
    }

    fn list(addrs: &[&str]) -> Vec<Endpoint> {
        addrs.iter().map(|a| Endpoint::backend(a.to_string(), AddressFamily::Ipv4)).collect()
    }

    fn addrs(u: &Update) -> Vec<&str> {
        u.endpoints.iter().map(|e| e.address.as_str()).collect()
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
        assert!(u.endpoints.is_empty() && !u.is_ok());
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
