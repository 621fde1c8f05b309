//! DNS: the `dns:` resolver task — when to look (first at once, then on TTL expiry, on a rate-limited
//! `resolve_now`, and with backoff after errors) and what to publish; the lookups are in [`lookup`],
//! TXT service config choices in [`service_config`].

pub mod lookup;
pub mod service_config;

use std::future::pending;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::Rng;
use tokio::time::{sleep_until, Instant};

use crate::error::Error;
use crate::resolver::{BackendTask, ResolverContext};
use crate::target::{DnsTarget, Host, DNS_SERVER_DEFAULT_PORT};
use crate::update::Address;
use lookup::{Client, ClientConfig, Plan};
use service_config::Chooser;

/// SRV label of the backend mode when none is configured.
pub const DEFAULT_SRV_LABEL: &str = "_grpc._tcp";

/// Resolver settings specific to `dns:` targets. The defaults follow gRPC, plus a TTL-driven refresh.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// The DNS server for targets whose authority names none (`dns:///host`); `None` reads the system
    /// configuration. A server in the target (`dns://10.0.0.1:53/host`) wins over this.
    pub nameserver: Option<SocketAddr>,
    /// Least time between the starts of two lookups that `resolve_now` asks for (gRPC: 30 s).
    pub min_resolve_interval: Duration,
    /// Look again when the shortest TTL of the records expires, clamped to `refresh_min..=refresh_max`.
    pub ttl_refresh: bool,
    pub refresh_min: Duration,
    pub refresh_max: Duration,
    /// Retry delay after the first failed round; each further failure multiplies it by
    /// `backoff_multiplier`, up to `backoff_max`, and every delay is spread by ±`backoff_jitter`.
    pub backoff_initial: Duration,
    pub backoff_multiplier: f64,
    pub backoff_max: Duration,
    pub backoff_jitter: f64,
    /// How long one query waits for an answer, and how many times it is sent.
    pub query_timeout: Duration,
    pub query_attempts: u32,
    /// Look up the TXT service config at `_grpc_config.<host>`.
    pub service_config: bool,
    /// Add grpclb balancers from the SRV records at `_grpclb._tcp.<host>`.
    pub grpclb: bool,
    /// Take the backends from the SRV records at `<label>.<host>` (with their ports and weights)
    /// instead of the host's A/AAAA records.
    pub srv_backends: Option<String>,
    /// Matched against `clientHostname` in service config choices; `None` uses this machine's name.
    pub client_hostname: Option<String>,
}

impl Default for DnsOptions {
    fn default() -> Self {
        DnsOptions {
            nameserver: None,
            min_resolve_interval: Duration::from_secs(30),
            ttl_refresh: true,
            refresh_min: Duration::from_secs(30),
            refresh_max: Duration::from_secs(30 * 60),
            backoff_initial: Duration::from_secs(1),
            backoff_multiplier: 1.6,
            backoff_max: Duration::from_secs(120),
            backoff_jitter: 0.2,
            query_timeout: Duration::from_secs(5),
            query_attempts: 2,
            service_config: true,
            grpclb: false,
            srv_backends: None,
            client_hostname: None,
        }
    }
}

/// Longest time any DNS option may name: a day. Longer values are surely a unit mistake.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

impl DnsOptions {
    /// Checks that the options make sense together; the error names the bad one.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::invalid_argument(format!("dns options: {m}")));
        let durations = [
            ("min_resolve_interval", self.min_resolve_interval),
            ("refresh_min", self.refresh_min),
            ("refresh_max", self.refresh_max),
            ("backoff_initial", self.backoff_initial),
            ("backoff_max", self.backoff_max),
            ("query_timeout", self.query_timeout),
        ];
        for (name, value) in durations {
            if value > MAX_DURATION {
                return bad(format!("{name} is {value:?}, more than a day"));
            }
        }
        if self.refresh_min.is_zero() || self.refresh_min > self.refresh_max {
            return bad(format!(
                "the refresh range {:?}..{:?} must start above zero and not end before it starts",
                self.refresh_min, self.refresh_max
            ));
        }
        if self.backoff_initial.is_zero() || self.backoff_initial > self.backoff_max {
            return bad(format!(
                "backoff_initial {:?} must be above zero and at most backoff_max {:?}",
                self.backoff_initial, self.backoff_max
            ));
        }
        if !(1.0..=10.0).contains(&self.backoff_multiplier) {
            return bad(format!("backoff_multiplier must be from 1 to 10, got {}", self.backoff_multiplier));
        }
        if !(0.0..=1.0).contains(&self.backoff_jitter) {
            return bad(format!("backoff_jitter must be from 0 to 1, got {}", self.backoff_jitter));
        }
        if self.query_timeout.is_zero() || !(1..=10).contains(&self.query_attempts) {
            return bad(format!(
                "query_timeout must be above zero ({:?}) and query_attempts from 1 to 10 ({})",
                self.query_timeout, self.query_attempts
            ));
        }
        if let Some(label) = &self.srv_backends {
            check_srv_label(label)
                .map_err(|m| Error::invalid_argument(format!("dns options: SRV label '{label}': {m}")))?;
        }
        if self.client_hostname.as_deref() == Some("") {
            return bad("client_hostname is empty".into());
        }
        Ok(())
    }
}

/// An SRV label such as `_grpc._tcp`: dot-separated DNS labels, no leading or trailing dot.
pub fn check_srv_label(label: &str) -> Result<(), String> {
    if label.is_empty() || label.len() > 200 {
        return Err("must have 1 to 200 characters".into());
    }
    for part in label.split('.') {
        if part.is_empty() || part.len() > 63 {
            return Err("each dot-separated part must have 1 to 63 characters".into());
        }
        if let Some(c) = part.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
            return Err(format!("contains {c:?}"));
        }
    }
    Ok(())
}

/// Parses a DNS server address: `ip`, `ip:port` or `[v6]:port`; the port defaults to 53.
pub fn parse_nameserver(text: &str) -> Result<SocketAddr, Error> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DNS_SERVER_DEFAULT_PORT));
    }
    Err(Error::invalid_argument(format!(
        "DNS server '{text}' is not an IP address with an optional port (10.0.0.1, 10.0.0.1:53, [::1]:53)"
    )))
}

pub(crate) fn resolver_task(target: &DnsTarget, mut ctx: ResolverContext) -> Result<BackendTask, Error> {
    let name = match &target.host {
        Host::Ip(ip) => {
            // An IP literal stands for itself: nothing to look up, ever.
            let endpoint = Address::from_socket_addr(SocketAddr::new(*ip, target.port));
            return Ok(Box::pin(async move { ctx.publish(vec![endpoint], None) }));
        }
        Host::Name(name) => name.clone(),
    };
    let options = ctx.options().dns.clone();
    options.validate()?;
    let client_config = ClientConfig::new(target.server, &options)?;
    let chooser = options.service_config.then(|| Chooser {
        language: ctx.options().client_language.clone(),
        hostname: options.client_hostname.clone().unwrap_or_else(local_hostname),
        dice: rand::rng().random_range(1..=100),
    });
    let plan = Plan {
        host: name,
        port: target.port,
        srv_backends: options.srv_backends.clone(),
        grpclb: options.grpclb,
        chooser,
    };
    Ok(Box::pin(async move {
        match Client::new(&client_config) {
            Ok(client) => run(ctx, client, plan, options).await,
            Err(e) => ctx.publish_error(e.message()),
        }
    }))
}

/// What the loop waits for after a round.
enum Next {
    /// After a good round: the TTL refresh (if on), or a rate-limited `resolve_now`.
    Refresh(Option<Instant>),
    /// After a failed round: the backoff retry; `resolve_now` does not cut it short.
    Retry(Instant),
}

async fn run(mut ctx: ResolverContext, client: Client, plan: Plan, options: DnsOptions) {
    let mut backoff = Backoff::new(&options);
    loop {
        let started = Instant::now();
        let next = match client.resolve(&plan).await {
            Ok(answer) => {
                backoff.reset();
                ctx.publish(answer.endpoints, answer.service_config);
                let ttl = answer.ttl.unwrap_or(options.refresh_max).clamp(options.refresh_min, options.refresh_max);
                Next::Refresh(options.ttl_refresh.then(|| Instant::now() + ttl))
            }
            Err(message) => {
                tracing::debug!("{message}");
                ctx.publish_error(message);
                Next::Retry(Instant::now() + backoff.next_delay())
            }
        };
        wait(&ctx, next, started + options.min_resolve_interval).await;
    }
}

/// Returns when the next round is due. A `resolve_now` (outside backoff) makes a round due at
/// `earliest_on_demand`; further requests before then are folded into that one.
async fn wait(ctx: &ResolverContext, next: Next, earliest_on_demand: Instant) {
    let (timer, in_backoff) = match next {
        Next::Refresh(at) => (at, false),
        Next::Retry(at) => (Some(at), true),
    };
    let mut on_demand = None;
    loop {
        let due = timer.into_iter().chain(on_demand).min();
        tokio::select! {
            _ = async { match due { Some(at) => sleep_until(at).await, None => pending().await } } => return,
            _ = ctx.resolve_now_requested() => {
                if !in_backoff {
                    on_demand.get_or_insert(earliest_on_demand);
                }
            }
        }
    }
}

/// Exponential backoff with jitter, as gRPC's connection backoff.
struct Backoff {
    initial: f64,
    multiplier: f64,
    max: f64,
    jitter: f64,
    current: Option<f64>,
}

impl Backoff {
    fn new(options: &DnsOptions) -> Self {
        Backoff {
            initial: options.backoff_initial.as_secs_f64(),
            multiplier: options.backoff_multiplier,
            max: options.backoff_max.as_secs_f64(),
            jitter: options.backoff_jitter,
            current: None,
        }
    }

    fn reset(&mut self) {
        self.current = None;
    }

    fn next_delay(&mut self) -> Duration {
        let base = match self.current {
            None => self.initial,
            Some(previous) => (previous * self.multiplier).min(self.max),
        };
        self.current = Some(base);
        let spread = if self.jitter > 0.0 { rand::rng().random_range(-self.jitter..=self.jitter) } else { 0.0 };
        Duration::from_secs_f64(base * (1.0 + spread))
    }
}

/// This machine's host name, for `clientHostname` choices and the default client id; empty if the
/// system will not say.
pub(crate) fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_the_multiplier_up_to_the_cap_and_resets() {
        let options = DnsOptions { backoff_jitter: 0.0, ..Default::default() };
        let mut backoff = Backoff::new(&options);
        let delays: Vec<f64> = (0..12).map(|_| backoff.next_delay().as_secs_f64()).collect();
        assert!(
            (delays[0] - 1.0).abs() < 1e-9 && (delays[1] - 1.6).abs() < 1e-9 && (delays[2] - 2.56).abs() < 1e-9,
            "{delays:?}"
        );
        assert!((delays[11] - 120.0).abs() < 1e-9, "{delays:?}");
        backoff.reset();
        assert!((backoff.next_delay().as_secs_f64() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn backoff_jitter_stays_within_twenty_percent() {
        let mut backoff = Backoff::new(&DnsOptions::default());
        for _ in 0..200 {
            backoff.reset();
            let d = backoff.next_delay().as_secs_f64();
            assert!((0.8..=1.2).contains(&d), "{d}");
        }
    }

    #[test]
    fn defaults_follow_grpc_and_validate() {
        let o = DnsOptions::default();
        assert_eq!(o.min_resolve_interval, Duration::from_secs(30));
        assert_eq!((o.refresh_min, o.refresh_max), (Duration::from_secs(30), Duration::from_secs(1800)));
        assert!(o.service_config && !o.grpclb && o.srv_backends.is_none());
        o.validate().unwrap();
    }

    #[test]
    fn contradictory_options_are_rejected_with_the_reason() {
        let cases: Vec<(DnsOptions, &str)> = vec![
            (
                DnsOptions {
                    refresh_min: Duration::from_secs(9),
                    refresh_max: Duration::from_secs(8),
                    ..Default::default()
                },
                "refresh range",
            ),
            (DnsOptions { refresh_min: Duration::ZERO, ..Default::default() }, "refresh range"),
            (DnsOptions { backoff_initial: Duration::from_secs(200), ..Default::default() }, "backoff_initial"),
            (DnsOptions { backoff_multiplier: 0.5, ..Default::default() }, "backoff_multiplier"),
            (DnsOptions { backoff_jitter: 1.5, ..Default::default() }, "backoff_jitter"),
            (DnsOptions { query_attempts: 0, ..Default::default() }, "query_attempts"),
            (DnsOptions { min_resolve_interval: Duration::from_secs(90_000), ..Default::default() }, "more than a day"),
            (DnsOptions { srv_backends: Some("_grpc..tcp".into()), ..Default::default() }, "1 to 63"),
            (DnsOptions { srv_backends: Some("_grpc._tcp.".into()), ..Default::default() }, "1 to 63"),
            (DnsOptions { srv_backends: Some("_gr pc".into()), ..Default::default() }, "' '"),
            (DnsOptions { client_hostname: Some(String::new()), ..Default::default() }, "client_hostname"),
        ];
        for (options, needle) in cases {
            let e = options.validate().unwrap_err();
            assert!(e.message().contains(needle), "expected {needle:?} in {e}");
        }
    }

    #[test]
    fn nameservers_parse_with_and_without_port() {
        assert_eq!(parse_nameserver("127.0.0.1:5353").unwrap(), "127.0.0.1:5353".parse().unwrap());
        assert_eq!(parse_nameserver("127.0.0.1").unwrap(), "127.0.0.1:53".parse().unwrap());
        assert_eq!(parse_nameserver("[::1]:54").unwrap(), "[::1]:54".parse().unwrap());
        assert_eq!(parse_nameserver("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert!(parse_nameserver("ns.example.com").unwrap_err().message().contains("not an IP address"));
    }
}
