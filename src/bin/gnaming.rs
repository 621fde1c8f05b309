//! `gnaming`: the operator's tool — what a target resolves to now (`resolve`), every change as it
//! happens (`watch`), a registration held until Ctrl-C (`register`), the local xDS agent that serves
//! discovery to any gRPC stack's xDS client (`xds-agent`), what resolving some targets opens and does
//! (`stats`) and its shell completions (`completions`); the grammar and help texts are in [`cli`], the
//! long-running commands serve their stats to Prometheus with `--metrics` ([`metrics`]).

// Beside this file, not in src/bin/, where cargo would take them for programs of their own.
#[path = "gnaming/cli.rs"]
mod cli;
#[path = "gnaming/metrics.rs"]
mod metrics;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{CommandFactory, Parser};
use gnaming::etcd::{ClusterConfig, RegistrationOptions};
use gnaming::registration::Registration;
use gnaming::update::{AddressFamily, AddressKind};
use gnaming::xds::{XdsOptions, XdsServer};
use gnaming::{Error, ErrorKind, Resolver, ResolverOptions, Update};
use serde_json::{json, Value};

use cli::{Cli, Command, Common, Metrics};

/// A failure with the exit code it maps to.
struct Failure(u8, String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match e.kind() {
            ErrorKind::InvalidTarget | ErrorKind::UnsupportedScheme | ErrorKind::InvalidArgument => 2,
            ErrorKind::Unavailable | ErrorKind::Timeout => 3,
            _ => 1,
        };
        Failure(code, e.message().to_string())
    }
}

/// Bad usage found once the command line parsed: a value that is wrong only with the others.
fn usage(message: impl Into<String>) -> Failure {
    Failure(2, format!("{}\n(see gnaming --help)", message.into()))
}

impl Common {
    /// Applies --etcd (the default cluster) and returns resolver options with --nameserver.
    fn apply(&self) -> Result<ResolverOptions, Failure> {
        if let Some(endpoints) = &self.etcd {
            let config = ClusterConfig { endpoints: ClusterConfig::parse_endpoints(endpoints)?, ..Default::default() };
            gnaming::etcd::cluster::register("", config)?;
        }
        let mut options = ResolverOptions::default();
        options.dns.nameserver = self.nameserver;
        Ok(options)
    }
}

impl Metrics {
    /// Checks the address: bad usage (exit 2) before anything starts.
    fn address(&self) -> Result<Option<SocketAddr>, Failure> {
        let allow_remote = self.metrics_allow_remote;
        self.metrics.as_deref().map(|text| metrics::parse_address(text, allow_remote).map_err(usage)).transpose()
    }
}

/// Serves the stats at `address` (from `Metrics::address`) and says where on stderr, so that a
/// command's stdout stays what it was.
fn serve_metrics(address: Option<SocketAddr>) -> Result<(), Failure> {
    if let Some(address) = address {
        let bound =
            metrics::serve(address).map_err(|e| Failure(1, format!("cannot serve metrics on {address}: {e}")))?;
        eprintln!("gnaming: metrics on http://{bound}/metrics");
    }
    Ok(())
}

fn main() -> ExitCode {
    // Help and --version on stdout with 0; a command line clap refuses on stderr, naming what is wrong,
    // with 2, the exit code of bad usage.
    let outcome = match Cli::parse().command {
        None => {
            let _ = Cli::command().print_help();
            Ok(())
        }
        Some(Command::Resolve { target, json, timeout, common }) => resolve(&target, json, timeout, &common),
        Some(Command::Watch { target, json, metrics, common }) => watch(target, json, &metrics, &common),
        Some(Command::Register { service, address, ttl, metadata, wait, format, warmup, drain, metrics, common }) => {
            let options =
                RegistrationOptions { ttl, metadata, format, warmup: warmup.unwrap_or_default(), ..Default::default() };
            common.apply().and_then(|_| register(&service, &address, options, wait, drain, &metrics))
        }
        Some(Command::XdsAgent {
            listen,
            bootstrap_out,
            default_scheme,
            allow_non_loopback,
            node_id_check,
            metrics,
            common,
        }) => common.apply().and_then(|resolver| {
            let options = XdsOptions {
                resolver: ResolverOptions { client_language: "xds".into(), ..resolver },
                listen,
                allow_non_loopback,
                check_node_id: node_id_check,
                default_scheme,
            };
            xds_agent(options, bootstrap_out, &metrics)
        }),
        Some(Command::Stats { targets, prometheus, wait, common }) => stats(&targets, prometheus, wait, &common),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "gnaming", &mut std::io::stdout());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("gnaming: {message}");
            ExitCode::from(code)
        }
    }
}

fn resolve(target: &str, json: bool, timeout: Duration, common: &Common) -> Result<(), Failure> {
    let options = common.apply()?;
    let resolver = Resolver::start(target, &options, None)?;
    let update = resolver.next(Some(timeout)).map_err(|e| match e.kind() {
        ErrorKind::Timeout => Failure(3, format!("no answer for {target} within {timeout:?}")),
        _ => e.into(),
    })?;
    resolver.close();
    print_update(target, &update, json);
    match update.error_message() {
        Some(message) => Err(Failure(3, format!("{target}: {message}"))),
        None => Ok(()),
    }
}

fn watch(target: String, json: bool, metrics: &Metrics, common: &Common) -> Result<(), Failure> {
    let options = common.apply()?;
    let metrics = metrics.address()?;
    let shown = target.clone();
    let handler = move |update: &Arc<Update>| print_update(&shown, update, json);
    let signals = Signals::install()?;
    serve_metrics(metrics)?;
    let resolver = Resolver::start(&target, &options, Some(Box::new(handler)))?;
    signals.wait();
    resolver.close();
    Ok(())
}

/// Registers after the warm-up and holds the registration until a signal, then deregisters, draining
/// first when asked. A signal during the warm-up or the first wait ends it at once, having written nothing
/// or removed what it wrote.
fn register(
    service: &str,
    address: &str,
    options: RegistrationOptions,
    wait: Duration,
    drain: Option<Duration>,
    metrics: &Metrics,
) -> Result<(), Failure> {
    let metrics = metrics.address()?;
    let mut signals = Signals::install()?;
    serve_metrics(metrics)?;
    let registration = Registration::start(service, address, &options)?;
    if !options.warmup.is_zero() {
        println!("{} warming up {} for {:?}", timestamp(), registration.key(), options.warmup);
    }
    // The C wait cannot watch for signals: wait in slices and look in between.
    let deadline = Instant::now() + options.warmup + wait;
    loop {
        let slice = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(100));
        match registration.wait(Some(slice)) {
            Ok(()) => break,
            Err(e) if e.kind() == ErrorKind::Timeout && Instant::now() < deadline => {
                if signals.came() {
                    registration.close(Duration::from_secs(3))?;
                    println!("{} deregistered {}", timestamp(), registration.key());
                    return Ok(());
                }
            }
            Err(e) => {
                let _ = registration.close(Duration::from_secs(1));
                return Err(match e.kind() {
                    ErrorKind::Timeout => Failure(
                        3,
                        format!("not registered within {wait:?}: is the registry (etcd or ZooKeeper) reachable?"),
                    ),
                    _ => e.into(),
                });
            }
        }
    }
    println!("{} registered {}", timestamp(), registration.key());
    signals.wait();
    match drain {
        Some(drain) => {
            println!("{} draining {} for {drain:?}", timestamp(), registration.key());
            let _ = std::io::Write::flush(&mut std::io::stdout());
            registration.drain(drain, Duration::from_secs(3))?;
        }
        None => registration.close(Duration::from_secs(3))?,
    }
    println!("{} deregistered {}", timestamp(), registration.key());
    Ok(())
}

fn xds_agent(options: XdsOptions, bootstrap_out: Option<PathBuf>, metrics: &Metrics) -> Result<(), Failure> {
    if std::env::var_os("GNAMING_LOG").is_none() {
        std::env::set_var("GNAMING_LOG", "info");
    }
    // Bad options are usage errors (exit 2), caught before anything starts listening.
    gnaming::xds::names::check_scheme(&options.default_scheme).map_err(|e| usage(e.message()))?;
    gnaming::xds::server::check_listen(&options.listen, options.allow_non_loopback).map_err(|e| usage(e.message()))?;
    let metrics = metrics.address()?;
    let signals = Signals::install()?;
    serve_metrics(metrics)?;
    let server = XdsServer::start(&options)?;
    match &bootstrap_out {
        Some(path) => {
            write_atomically(path, server.bootstrap_json())
                .map_err(|e| Failure(1, format!("cannot write the bootstrap to {}: {e}", path.display())))?;
            println!("xds-agent listening on {} bootstrap {}", server.address(), path.display());
        }
        None => {
            println!("xds-agent listening on {} bootstrap -", server.address());
            println!("{}", server.bootstrap_json());
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    signals.wait();
    tracing::info!("xds-agent: stopping");
    server.close();
    if let Some(path) = &bootstrap_out {
        // Only our own file: a newer agent may have replaced it since.
        if std::fs::read_to_string(path).is_ok_and(|text| text == server.bootstrap_json()) {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

/// Starts a resolver per target, waits (within `wait` in all) for each one's first answer, and prints
/// the process's stats while they are all still open, so the gauges (clusters, watches) count them.
/// A target without a good first answer is said on stderr and makes it exit 3, after the stats.
fn stats(targets: &[String], prometheus: bool, wait: Duration, common: &Common) -> Result<(), Failure> {
    let options = common.apply()?;
    // Every target is checked before any starts: a bad one is bad usage, not a probe's finding.
    let resolvers = targets
        .iter()
        .map(|target| Resolver::start(target, &options, None).map(|r| (target, r)))
        .collect::<Result<Vec<_>, _>>()?;
    let deadline = Instant::now() + wait;
    let mut unanswered = Vec::new();
    for (target, resolver) in &resolvers {
        let left = deadline.saturating_duration_since(Instant::now());
        match resolver.next(Some(left)) {
            Ok(update) => {
                if let Some(message) = update.error_message() {
                    unanswered.push(format!("{target}: {message}"));
                }
            }
            Err(e) if e.kind() == ErrorKind::Timeout => {
                unanswered.push(format!("no answer for {target} within {wait:?}"))
            }
            Err(e) => unanswered.push(format!("{target}: {}", e.message())),
        }
    }
    let text = if prometheus { gnaming::etcd::stats::to_prometheus() } else { gnaming::etcd::stats::to_json() };
    for (_, resolver) in resolvers {
        resolver.close();
    }
    print!("{text}");
    if !prometheus {
        println!();
    }
    match unanswered.as_slice() {
        [] => Ok(()),
        [one] => Err(Failure(3, one.clone())),
        many => Err(Failure(
            3,
            format!("{} of {} targets without an answer:\n  {}", many.len(), targets.len(), many.join("\n  ")),
        )),
    }
}

/// Writes `text` to `path` through a temporary file and a rename, so a reader never sees half of it.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let name = path.file_name().ok_or_else(|| std::io::Error::other("not a file name"))?;
    let tmp = path.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// SIGINT and SIGTERM, caught from the moment `install` returns: a command installs them before it
/// says it is ready, so a signal sent right after that line still ends it cleanly.
struct Signals {
    runtime: tokio::runtime::Runtime,
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, Failure> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure(1, format!("cannot wait for signals: {e}")))?;
        let _entered = runtime.enter();
        let interrupt = signal(SignalKind::interrupt()).map_err(|e| Failure(1, format!("cannot catch SIGINT: {e}")))?;
        let terminate =
            signal(SignalKind::terminate()).map_err(|e| Failure(1, format!("cannot catch SIGTERM: {e}")))?;
        drop(_entered);
        Ok(Signals { runtime, interrupt, terminate })
    }

    /// Whether one of them has come (without waiting).
    fn came(&mut self) -> bool {
        let (interrupt, terminate) = (&mut self.interrupt, &mut self.terminate);
        self.runtime.block_on(async {
            // A timeout polls its future before its deadline: a signal already caught is seen.
            tokio::time::timeout(Duration::ZERO, async {
                tokio::select! {
                    _ = interrupt.recv() => {},
                    _ = terminate.recv() => {},
                }
            })
            .await
            .is_ok()
        })
    }

    /// Blocks this (non-runtime) thread until one of them comes.
    fn wait(mut self) {
        self.runtime.block_on(async {
            tokio::select! {
                _ = self.interrupt.recv() => {},
                _ = self.terminate.recv() => {},
            }
        });
    }
}

fn print_update(target: &str, update: &Update, json: bool) {
    if json {
        let addresses: Vec<Value> = update
            .addresses
            .iter()
            .map(|e| {
                json!({
                    "addr": e.address.as_str(),
                    "family": family(e.family),
                    "kind": match e.kind { AddressKind::Backend => "backend", AddressKind::Balancer => "balancer" },
                    "weight": e.weight,
                    "copy_index": e.copy_index,
                    "metadata": e.metadata.as_deref().and_then(|m| serde_json::from_str::<Value>(m).ok()),
                })
            })
            .collect();
        let line = json!({
            "time": timestamp(),
            "target": target,
            "sequence": update.sequence,
            "state": if update.is_ok() { "ok" } else { "transient_error" },
            "error": update.error_message(),
            "service_config": update.service_config.as_deref().and_then(|c| serde_json::from_str::<Value>(c).ok()),
            "addresses": addresses,
        });
        println!("{line}");
        return;
    }
    let state = match update.error_message() {
        None => "ok".to_string(),
        Some(m) => format!("transient error (keeping the last list): {m}"),
    };
    println!("{} {target}: {} addresses, {state}", timestamp(), update.addresses.len());
    for e in update.addresses.iter() {
        let kind = if e.kind == AddressKind::Balancer { " balancer" } else { "" };
        let metadata = e.metadata.as_deref().map(|m| format!(" metadata={m}")).unwrap_or_default();
        println!(
            "  {:<28} {:<4} weight={} copy={}{kind}{metadata}",
            e.address,
            family(e.family),
            e.weight,
            e.copy_index
        );
    }
    if let Some(config) = &update.service_config {
        println!("  service config: {config}");
    }
}

fn family(f: AddressFamily) -> &'static str {
    match f {
        AddressFamily::Ipv4 => "ipv4",
        AddressFamily::Ipv6 => "ipv6",
        AddressFamily::Unix => "unix",
        AddressFamily::Name => "name",
    }
}

/// UTC time as `2026-01-02T03:04:05.678Z`, without a date crate.
fn timestamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let (secs, millis) = (now.as_secs() as i64, now.subsec_millis());
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
