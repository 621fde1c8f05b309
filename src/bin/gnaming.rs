//! `gnaming`: the operator's tool — what a target resolves to now (`resolve`), every change as it
//! happens (`watch`), a registration held until Ctrl-C (`register`), and the local xDS agent that
//! serves discovery to any gRPC stack's xDS client (`xds-agent`); the long-running ones can serve
//! their stats to Prometheus (`--metrics`, [`metrics`]).

// Beside this file, not in src/bin/, where cargo would take it for a program of its own.
#[path = "gnaming/metrics.rs"]
mod metrics;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gnaming::etcd::{ClusterConfig, Registration, RegistrationOptions};
use gnaming::update::{AddressFamily, EndpointKind};
use gnaming::xds::{XdsOptions, XdsServer};
use gnaming::{Error, ErrorKind, Resolver, ResolverOptions, Update};
use serde_json::{json, Value};

const USAGE: &str = "\
gnaming: service discovery from the command line

usage:
  gnaming resolve TARGET [--json] [--timeout SECONDS]   print the address list once
  gnaming watch TARGET [--json]                         print every update until Ctrl-C
  gnaming register SERVICE ADDR [--ttl SECONDS] [--metadata JSON] [--wait SECONDS]
                                                        register until Ctrl-C, then deregister
  gnaming xds-agent [--listen ADDR] [--bootstrap-out FILE] [--default-scheme SCHEME]
                                                        serve xds:///NAME to gRPC xDS clients until Ctrl-C
  gnaming COMMAND --help                                help for one command
  gnaming --version

options for every command:
  --etcd ENDPOINTS      etcd endpoints, comma separated (default: $GNAMING_ETCD_ENDPOINTS, else 127.0.0.1:2379)
  --nameserver IP:PORT  DNS server for dns: targets (default: the system's)

options of watch, register and xds-agent:
  --metrics IP:PORT     serve the process's stats to Prometheus at http://IP:PORT/metrics
                        (a loopback address unless --metrics-allow-remote is given)

exit codes: 0 ok, 1 failure, 2 bad usage or bad target, 3 server unavailable";

const RESOLVE_HELP: &str = "\
usage: gnaming resolve TARGET [--json] [--timeout SECONDS] [--etcd ENDPOINTS] [--nameserver IP:PORT]

Prints the complete address list TARGET resolves to now, one entry a line (address, family, weight,
copy, metadata), or one JSON object with --json. Waits at most --timeout seconds (default 10) for the
first answer. Exits 3 when the source cannot be reached.

examples:
  gnaming resolve 'pass:///127.0.0.1:50051#2,127.0.0.1:50052'
  gnaming resolve etcd:///echo --etcd 127.0.0.1:2379 --json
  gnaming resolve dns://127.0.0.1:5353/echo.test:50051";

const WATCH_HELP: &str = "\
usage: gnaming watch TARGET [--json] [--metrics IP:PORT [--metrics-allow-remote]] [--etcd ENDPOINTS]
                     [--nameserver IP:PORT]

Prints every update of TARGET with a UTC timestamp until Ctrl-C: the state (ok, or a transient error
while the last good list is kept) and the complete list. --json prints one JSON object a line.";

const REGISTER_HELP: &str = "\
usage: gnaming register SERVICE ADDR [--ttl SECONDS] [--metadata JSON] [--wait SECONDS] [--etcd ENDPOINTS]
                        [--metrics IP:PORT [--metrics-allow-remote]]

Registers ADDR (host:port) under SERVICE in etcd, keeps the lease alive, and on Ctrl-C (or SIGTERM)
deletes the key so that watchers see the removal at once. --ttl is the lease TTL (default 10).
--metadata is JSON stored with the address (a numeric \"weight\" sets the entry's weight). Exits 3
when not registered within --wait seconds (default 10).";

const XDS_AGENT_HELP: &str = "\
usage: gnaming xds-agent [--listen 127.0.0.1:0 | --listen unix:PATH | --listen unix:] [--bootstrap-out FILE]
                         [--default-scheme etcd] [--allow-non-loopback] [--node-id-check]
                         [--metrics IP:PORT [--metrics-allow-remote]] [--etcd ENDPOINTS]
                         [--nameserver IP:PORT]

Serves every target gRPC's xDS clients ask for over ADS (state of the world), so that a program in any
language gets etcd and DNS discovery with no libgnaming code: GRPC_XDS_BOOTSTRAP=FILE and the target
xds:///echo (etcd:///echo; any full target works too: xds:///dns:///host:443).

  --listen ADDR           loopback IP:PORT (default 127.0.0.1:0, any free port), unix:PATH (mode 0600),
                          or unix: for a socket in a new private directory
  --bootstrap-out FILE    write the clients' bootstrap JSON there (atomically, mode 0644) once listening;
                          without it the bootstrap is printed on stdout
  --default-scheme S      the scheme of bare names (default etcd)
  --allow-non-loopback    allow a --listen address other than loopback (the server answers anyone)
  --node-id-check         answer only clients whose bootstrap carries this agent's node id
  --metrics IP:PORT       serve the agent's stats (streams, pushes, ACKs, NACKs, resolvers, etcd watches)
                          to Prometheus at http://IP:PORT/metrics, said on stderr when listening; a
                          loopback address (port 0: any free port)
  --metrics-allow-remote  allow a --metrics address other than loopback (anyone who reaches it reads them)

Prints `xds-agent listening on ADDR bootstrap FILE` when ready, logs on stderr (GNAMING_LOG, default
info), and exits 0 on SIGTERM or Ctrl-C after closing every stream and resolver.";

/// The `--metrics` paragraph of the long-running commands' help.
const METRICS_HELP: &str = "\
--metrics IP:PORT serves the process's stats to Prometheus at http://IP:PORT/metrics (GET, text format
0.0.4) and says so on stderr; the address must be loopback (port 0: any free port) unless
--metrics-allow-remote is given.";

/// Options that take no value.
const FLAGS: &[&str] = &["allow-non-loopback", "node-id-check", "metrics-allow-remote"];

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

fn usage(message: impl Into<String>) -> Failure {
    Failure(2, format!("{}\n(see gnaming --help)", message.into()))
}

/// Parsed command line: positional arguments and `--name value` / `--flag` options.
struct Args {
    positional: Vec<String>,
    json: bool,
    help: bool,
    values: Vec<(String, String)>,
}

impl Args {
    fn parse(raw: impl Iterator<Item = String>, with_value: &[&str]) -> Result<Args, Failure> {
        let mut args = Args { positional: vec![], json: false, help: false, values: vec![] };
        let mut raw = raw.peekable();
        while let Some(arg) = raw.next() {
            match arg.as_str() {
                "--json" => args.json = true,
                "--help" | "-h" => args.help = true,
                name if name.starts_with("--") => {
                    let name = name.trim_start_matches("--");
                    let (name, inline) = match name.split_once('=') {
                        Some((n, v)) => (n.to_string(), Some(v.to_string())),
                        None => (name.to_string(), None),
                    };
                    if FLAGS.contains(&name.as_str()) && with_value.contains(&name.as_str()) {
                        if inline.is_some() {
                            return Err(usage(format!("--{name} takes no value")));
                        }
                        args.values.push((name, String::new()));
                        continue;
                    }
                    if !with_value.contains(&name.as_str()) && !["etcd", "nameserver"].contains(&name.as_str()) {
                        return Err(usage(format!("unknown option --{name}")));
                    }
                    let value = match inline {
                        Some(v) => v,
                        None => raw.next().ok_or_else(|| usage(format!("--{name} needs a value")))?,
                    };
                    args.values.push((name, value));
                }
                _ => args.positional.push(arg),
            }
        }
        Ok(args)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn seconds(&self, name: &str, default: f64) -> Result<Duration, Failure> {
        match self.value(name) {
            None => Ok(Duration::from_secs_f64(default)),
            Some(v) => match v.parse::<f64>() {
                Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
                _ => Err(usage(format!("--{name} takes a number of seconds from 0 to 86400, got '{v}'"))),
            },
        }
    }

    /// Applies --etcd (the default cluster) and returns resolver options with --nameserver.
    fn common(&self) -> Result<ResolverOptions, Failure> {
        if let Some(endpoints) = self.value("etcd") {
            let config = ClusterConfig { endpoints: ClusterConfig::parse_endpoints(endpoints)?, ..Default::default() };
            gnaming::etcd::cluster::register("", config)?;
        }
        let mut options = ResolverOptions::default();
        if let Some(ns) = self.value("nameserver") {
            let addr = ns.parse().map_err(|_| usage(format!("--nameserver takes IP:PORT, got '{ns}'")))?;
            options.dns.nameserver = Some(addr);
        }
        Ok(options)
    }

    /// Checks --metrics and --metrics-allow-remote: bad usage (exit 2) before anything starts.
    fn metrics_address(&self) -> Result<Option<SocketAddr>, Failure> {
        let allow_remote = self.value("metrics-allow-remote").is_some();
        match self.value("metrics") {
            None if allow_remote => Err(usage("--metrics-allow-remote needs --metrics")),
            None => Ok(None),
            Some(text) => metrics::parse_address(text, allow_remote).map(Some).map_err(usage),
        }
    }
}

/// Serves the stats at `address` (from `Args::metrics_address`) and says where on stderr, so that a
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
    let mut raw = std::env::args().skip(1);
    let command = raw.next();
    let outcome = match command.as_deref() {
        None | Some("--help") | Some("-h") | Some("help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some("--version") => {
            println!("gnaming {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some("resolve") => resolve(raw),
        Some("watch") => watch(raw),
        Some("register") => register(raw),
        Some("xds-agent") => xds_agent(raw),
        Some(other) => Err(usage(format!("unknown command '{other}'"))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("gnaming: {message}");
            ExitCode::from(code)
        }
    }
}

fn one_target(args: &Args) -> Result<&str, Failure> {
    match args.positional.as_slice() {
        [target] => Ok(target),
        [] => Err(usage("missing TARGET")),
        _ => Err(usage(format!("expected one TARGET, got {}", args.positional.len()))),
    }
}

fn resolve(raw: impl Iterator<Item = String>) -> Result<(), Failure> {
    let args = Args::parse(raw, &["timeout"])?;
    if args.help {
        println!("{RESOLVE_HELP}");
        return Ok(());
    }
    let target = one_target(&args)?;
    let timeout = args.seconds("timeout", 10.0)?;
    let options = args.common()?;
    let resolver = Resolver::start(target, &options, None)?;
    let update = resolver.next(Some(timeout)).map_err(|e| match e.kind() {
        ErrorKind::Timeout => Failure(3, format!("no answer for {target} within {timeout:?}")),
        _ => e.into(),
    })?;
    resolver.close();
    print_update(target, &update, args.json);
    match update.error_message() {
        Some(message) => Err(Failure(3, format!("{target}: {message}"))),
        None => Ok(()),
    }
}

fn watch(raw: impl Iterator<Item = String>) -> Result<(), Failure> {
    let args = Args::parse(raw, &["metrics", "metrics-allow-remote"])?;
    if args.help {
        println!("{WATCH_HELP}\n\n{METRICS_HELP}");
        return Ok(());
    }
    let target = one_target(&args)?.to_string();
    let options = args.common()?;
    let metrics = args.metrics_address()?;
    let json = args.json;
    let shown = target.clone();
    let handler = move |update: &Arc<Update>| print_update(&shown, update, json);
    let signals = Signals::install()?;
    serve_metrics(metrics)?;
    let resolver = Resolver::start(&target, &options, Some(Box::new(handler)))?;
    signals.wait();
    resolver.close();
    Ok(())
}

fn register(raw: impl Iterator<Item = String>) -> Result<(), Failure> {
    let args = Args::parse(raw, &["ttl", "metadata", "wait", "metrics", "metrics-allow-remote"])?;
    if args.help {
        println!("{REGISTER_HELP}\n\n{METRICS_HELP}");
        return Ok(());
    }
    let [service, address] = args.positional.as_slice() else {
        return Err(usage("expected SERVICE and ADDR"));
    };
    args.common()?;
    let metadata = match args.value("metadata") {
        None => None,
        Some(text) => {
            Some(serde_json::from_str::<Value>(text).map_err(|e| usage(format!("--metadata is not valid JSON: {e}")))?)
        }
    };
    let options = RegistrationOptions { ttl: args.seconds("ttl", 10.0)?, metadata, ..Default::default() };
    let wait = args.seconds("wait", 10.0)?;
    let metrics = args.metrics_address()?;
    let signals = Signals::install()?;
    serve_metrics(metrics)?;
    let registration = Registration::start(service, address, &options)?;
    if let Err(e) = registration.wait(Some(wait)) {
        let _ = registration.close(Duration::from_secs(1));
        return Err(match e.kind() {
            ErrorKind::Timeout => Failure(3, format!("not registered within {wait:?}: is etcd reachable?")),
            _ => e.into(),
        });
    }
    println!("{} registered {}", timestamp(), registration.key());
    signals.wait();
    registration.close(Duration::from_secs(3))?;
    println!("{} deregistered {}", timestamp(), registration.key());
    Ok(())
}

fn xds_agent(raw: impl Iterator<Item = String>) -> Result<(), Failure> {
    let args = Args::parse(
        raw,
        &[
            "listen",
            "bootstrap-out",
            "default-scheme",
            "allow-non-loopback",
            "node-id-check",
            "metrics",
            "metrics-allow-remote",
        ],
    )?;
    if args.help {
        println!("{XDS_AGENT_HELP}");
        return Ok(());
    }
    if !args.positional.is_empty() {
        return Err(usage(format!("xds-agent takes no positional arguments, got '{}'", args.positional.join(" "))));
    }
    if std::env::var_os("GNAMING_LOG").is_none() {
        std::env::set_var("GNAMING_LOG", "info");
    }
    let mut options = XdsOptions { resolver: args.common()?, ..Default::default() };
    options.resolver.client_language = "xds".into();
    if let Some(listen) = args.value("listen") {
        options.listen = listen.to_string();
    }
    options.allow_non_loopback = args.value("allow-non-loopback").is_some();
    options.check_node_id = args.value("node-id-check").is_some();
    if let Some(scheme) = args.value("default-scheme") {
        options.default_scheme = scheme.to_string();
    }
    // Bad options are usage errors (exit 2), caught before anything starts listening.
    gnaming::xds::names::check_scheme(&options.default_scheme).map_err(|e| usage(e.message()))?;
    gnaming::xds::server::check_listen(&options.listen, options.allow_non_loopback).map_err(|e| usage(e.message()))?;
    let metrics = args.metrics_address()?;
    let bootstrap_out = args.value("bootstrap-out").map(std::path::PathBuf::from);
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

/// Writes `text` to `path` through a temporary file and a rename, so a reader never sees half of it.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
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
            .endpoints
            .iter()
            .map(|e| {
                json!({
                    "addr": e.address,
                    "family": family(e.family),
                    "kind": match e.kind { EndpointKind::Backend => "backend", EndpointKind::Balancer => "balancer" },
                    "weight": e.weight,
                    "copy": e.copy,
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
    println!("{} {target}: {} addresses, {state}", timestamp(), update.endpoints.len());
    for e in &update.endpoints {
        let kind = if e.kind == EndpointKind::Balancer { " balancer" } else { "" };
        let metadata = e.metadata.as_deref().map(|m| format!(" metadata={m}")).unwrap_or_default();
        println!("  {:<28} {:<4} weight={} copy={}{kind}{metadata}", e.address, family(e.family), e.weight, e.copy);
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
