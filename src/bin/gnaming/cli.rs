//! The command line's grammar: every command, option, default and help text, parsed by clap, which
//! also turns it into the shell completion scripts (`gnaming completions SHELL`).
//!
//! Values that can be checked alone (seconds, JSON, IP:PORT) are checked here, so that a bad one exits
//! 2 naming the option before anything starts; checks that need the whole command (a loopback
//! `--metrics` unless `--metrics-allow-remote`, a valid `--listen`) stay with the command.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueHint};
use gnaming::etcd::value::ValueFormat;
use serde_json::Value;

const EXIT_CODES: &str = "exit codes: 0 ok, 1 failure, 2 bad usage or bad target, 3 server unavailable";

const TOP_AFTER_HELP: &str = "\
options of every command but completions:
  --etcd ENDPOINTS      etcd endpoints, comma separated (default: $GNAMING_ETCD_ENDPOINTS, else 127.0.0.1:2379)
  --nameserver IP:PORT  DNS server for dns: targets (default: the system's)

options of watch, register and xds-agent:
  --metrics IP:PORT     serve the process's stats to Prometheus at http://IP:PORT/metrics
                        (a loopback address unless --metrics-allow-remote is given)

exit codes: 0 ok, 1 failure, 2 bad usage or bad target, 3 server unavailable";

const METRICS_HELP: &str = "\
--metrics IP:PORT serves the process's stats to Prometheus at http://IP:PORT/metrics (GET, text format
0.0.4) and says so on stderr; the address must be loopback (port 0: any free port) unless
--metrics-allow-remote is given.";

/// gnaming: service discovery from the command line
#[derive(Parser)]
#[command(
    name = "gnaming",
    version,
    about = "gnaming: service discovery from the command line",
    override_usage = "\
gnaming resolve TARGET [--json] [--timeout SECONDS]   print the address list once
       gnaming watch TARGET [--json]                         print every update until Ctrl-C
       gnaming register SERVICE ADDR [--ttl SECONDS] [--metadata JSON] [--wait SECONDS]
                        [--warmup SECONDS] [--drain SECONDS]
                                                             register until Ctrl-C, then deregister
       gnaming xds-agent [--listen ADDR] [--bootstrap-out FILE] [--default-scheme SCHEME]
                                                             serve xds:///NAME to gRPC xDS clients until Ctrl-C
       gnaming stats [TARGET]... [--wait SECONDS] [--prometheus]
                                                             what resolving TARGETs opens and does
       gnaming completions bash|zsh|fish                     the shell's completion script
       gnaming COMMAND --help                                help for one command
       gnaming --version",
    after_help = TOP_AFTER_HELP,
    // The last of a repeated option counts, as it always has (`alias g='gnaming --etcd X'; g ... --etcd Y`).
    args_override_self = true,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Print the address list TARGET resolves to now
    #[command(
        override_usage = "gnaming resolve TARGET [--json] [--timeout SECONDS] [--etcd ENDPOINTS] [--nameserver IP:PORT]",
        long_about = "\
Prints the complete address list TARGET resolves to now, one entry a line (address, family, weight,
copy, metadata), or one JSON object with --json. Waits at most --timeout seconds for the first answer.
Exits 3 when the source cannot be reached.",
        after_help = "\
examples:
  gnaming resolve 'pass:///127.0.0.1:50051#2,127.0.0.1:50052'
  gnaming resolve etcd:///echo --etcd 127.0.0.1:2379 --json
  gnaming resolve dns://127.0.0.1:5353/echo.test:50051

exit codes: 0 ok, 1 failure, 2 bad usage or bad target, 3 server unavailable"
    )]
    Resolve {
        /// The target, such as etcd:///echo, dns:///host:443 or pass:///127.0.0.1:50051
        #[arg(value_name = "TARGET", value_hint = ValueHint::Other)]
        target: String,
        /// Print one JSON object
        #[arg(long)]
        json: bool,
        /// Wait at most this long for the first answer
        #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds, allow_negative_numbers = true)]
        timeout: Duration,
        #[command(flatten)]
        common: Common,
    },

    /// Print every update of TARGET until Ctrl-C
    #[command(
        override_usage = "\
gnaming watch TARGET [--json] [--metrics IP:PORT [--metrics-allow-remote]] [--etcd ENDPOINTS]
                     [--nameserver IP:PORT]",
        long_about = "\
Prints every update of TARGET with a UTC timestamp until Ctrl-C (or SIGTERM): the state (ok, or a
transient error while the last good list is kept) and the complete list. --json prints one JSON
object a line.",
        after_help = format!(
            "{METRICS_HELP}\n\nexamples:\n  gnaming watch etcd:///echo\n  \
             gnaming watch etcd:///echo --json --metrics 127.0.0.1:9464\n\n{EXIT_CODES}"
        )
    )]
    Watch {
        /// The target, such as etcd:///echo
        #[arg(value_name = "TARGET")]
        target: String,
        /// Print one JSON object a line
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        metrics: Metrics,
        #[command(flatten)]
        common: Common,
    },

    /// Register ADDR under SERVICE in etcd (or ZooKeeper) until Ctrl-C, then deregister
    #[command(
        override_usage = "\
gnaming register SERVICE ADDR [--ttl SECONDS] [--metadata JSON] [--wait SECONDS] [--etcd ENDPOINTS]
                        [--format etcd|kratos|go-micro] [--warmup SECONDS] [--drain SECONDS]
                        [--metrics IP:PORT [--metrics-allow-remote]]",
        long_about = "\
Registers ADDR (host:port) under SERVICE in etcd, keeps the lease alive, and on Ctrl-C (or SIGTERM)
deletes the key so that watchers see the removal at once. Exits 3 when not registered within --wait
seconds (counted after --warmup). With --warmup it writes nothing to etcd for that long first; with
--drain, on Ctrl-C or SIGTERM it deletes the key, then waits that long before exiting, so that clients
stop picking ADDR while the server behind it still answers. --format kratos or go-micro writes that
framework's document under its key layout instead (/microservices/SERVICE/<id>, or
/micro/registry/SERVICE/SERVICE-<id>; a SERVICE starting with '/' is the key prefix itself), so that
its own discovery finds ADDR; etcd:////microservices/SERVICE resolves it. A SERVICE written as a zk:
target (zk://host:port,.../path/to/service, or zk:///path/to/service with GNAMING_ZK_SERVERS)
registers an ephemeral Curator node under that path in ZooKeeper instead, removed on exit; the same
string resolves it.",
        after_help = format!(
            "{METRICS_HELP}\n\nexamples:\n  gnaming register echo 127.0.0.1:50051\n  \
             gnaming register echo 127.0.0.1:50051 --ttl 5 --metadata '{{\"weight\":3}}' --etcd 127.0.0.1:2379\n  \
             gnaming register echo 127.0.0.1:50051 --warmup 5 --drain 2\n  \
             gnaming register echo 127.0.0.1:50051 --format kratos --metadata '{{\"version\":\"v2\"}}'\n  \
             gnaming register zk://127.0.0.1:2181/services/echo 127.0.0.1:50051\n\n\
             {EXIT_CODES}"
        )
    )]
    Register {
        /// The service name, the key prefix in etcd (echo, or a path such as prod/echo), or a zk: target
        #[arg(value_name = "SERVICE")]
        service: String,
        /// The address to register, host:port
        #[arg(value_name = "ADDR")]
        address: String,
        /// The lease TTL: how long the key outlives this process should it die without deregistering
        #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds, allow_negative_numbers = true)]
        ttl: Duration,
        /// JSON stored with the address (a numeric "weight" sets the entry's weight)
        #[arg(long, value_name = "JSON", value_parser = json)]
        metadata: Option<Value>,
        /// Exit 3 when not registered within this long
        #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds, allow_negative_numbers = true)]
        wait: Duration,
        /// The document and key layout to write: etcd (etcd's naming JSON), kratos or go-micro
        #[arg(long, value_name = "FORMAT", default_value = "etcd", value_parser = value_format)]
        format: ValueFormat,
        /// Write nothing to etcd for this long first, while the server warms up
        #[arg(long, value_name = "SECONDS", value_parser = seconds, allow_negative_numbers = true)]
        warmup: Option<Duration>,
        /// On Ctrl-C or SIGTERM, delete the key, then wait this long for clients to stop picking ADDR
        #[arg(long, value_name = "SECONDS", value_parser = seconds, allow_negative_numbers = true)]
        drain: Option<Duration>,
        #[command(flatten)]
        metrics: Metrics,
        #[command(flatten)]
        common: Common,
    },

    /// Serve xds:///NAME to gRPC xDS clients until Ctrl-C
    #[command(
        override_usage = "\
gnaming xds-agent [--listen 127.0.0.1:0 | --listen unix:PATH | --listen unix:] [--bootstrap-out FILE]
                         [--default-scheme etcd] [--allow-non-loopback] [--node-id-check]
                         [--metrics IP:PORT [--metrics-allow-remote]] [--etcd ENDPOINTS]
                         [--nameserver IP:PORT]",
        long_about = "\
Serves every target gRPC's xDS clients ask for over ADS (state of the world), so that a program in any
language gets etcd and DNS discovery with no libgnaming code: GRPC_XDS_BOOTSTRAP=FILE and the target
xds:///echo (etcd:///echo; any full target works too: xds:///dns:///host:443).",
        after_help = format!(
            "Prints `xds-agent listening on ADDR bootstrap FILE` when ready, logs on stderr (GNAMING_LOG, default\n\
             info), and exits 0 on SIGTERM or Ctrl-C after closing every stream and resolver.\n\n\
             examples:\n  gnaming xds-agent --bootstrap-out /run/gnaming/xds.json\n  \
             gnaming xds-agent --listen unix: --bootstrap-out xds.json --metrics 127.0.0.1:9464\n\n{EXIT_CODES}"
        )
    )]
    XdsAgent {
        /// Loopback IP:PORT (port 0: any free port), unix:PATH (mode 0600), or unix: for a socket in a
        /// new private directory
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        listen: String,
        /// Write the clients' bootstrap JSON there (atomically, mode 0644) once listening; without it the
        /// bootstrap is printed on stdout
        #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
        bootstrap_out: Option<std::path::PathBuf>,
        /// The scheme of bare names (xds:///echo is etcd:///echo by default)
        #[arg(long, value_name = "SCHEME", default_value = "etcd")]
        default_scheme: String,
        /// Allow a --listen address other than loopback (the server answers anyone)
        #[arg(long)]
        allow_non_loopback: bool,
        /// Answer only clients whose bootstrap carries this agent's node id
        #[arg(long)]
        node_id_check: bool,
        #[command(flatten)]
        metrics: Metrics,
        #[command(flatten)]
        common: Common,
    },

    /// Resolve TARGETs, then print what that opened and did (this process's stats)
    #[command(
        override_usage = "\
gnaming stats [TARGET]... [--wait SECONDS] [--prometheus] [--etcd ENDPOINTS] [--nameserver IP:PORT]",
        long_about = "\
Resolves every TARGET, waits for each one's first answer (at most --wait seconds in all), and then,
with the resolvers still open, prints the stats of this process: what resolving those targets costs and
does (etcd cluster connections and prefix watches open, updates delivered, watch restarts, ...), as one
JSON object keyed by name, or with --prometheus in the Prometheus text format that --metrics serves
(gnaming_* counters and gauges with their help lines). The stats are per process, so this is a probe of
these targets alone; to watch a running program's, scrape its --metrics. Without a TARGET it prints
every stat at zero: the list of what there is. Exits 3 when a target gets no answer or an error as its
first answer (its stats are printed all the same).",
        after_help = format!(
            "examples:\n  gnaming stats etcd:///echo etcd:///cache --etcd 127.0.0.1:2379\n  \
             gnaming stats --prometheus\n\n{EXIT_CODES}"
        )
    )]
    Stats {
        /// Targets to resolve first, such as etcd:///echo
        #[arg(value_name = "TARGET")]
        targets: Vec<String>,
        /// Print the Prometheus text exposition format 0.0.4 instead of JSON
        #[arg(long)]
        prometheus: bool,
        /// Wait at most this long in all for the targets' first answers
        #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds, allow_negative_numbers = true)]
        wait: Duration,
        #[command(flatten)]
        common: Common,
    },

    /// Print the shell's completion script for gnaming
    #[command(
        override_usage = "gnaming completions SHELL",
        long_about = "\
Prints the completion script of SHELL for gnaming on stdout. `make install` installs them where each
shell looks; by hand:
  bash: gnaming completions bash > ~/.local/share/bash-completion/completions/gnaming
  zsh:  gnaming completions zsh > ~/.zfunc/_gnaming   (with fpath+=(~/.zfunc) before compinit)
  fish: gnaming completions fish > ~/.config/fish/completions/gnaming.fish",
        after_help = EXIT_CODES
    )]
    Completions {
        /// bash, zsh or fish (elvish and powershell too)
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

/// Options every command that resolves or registers takes.
#[derive(Args)]
pub struct Common {
    /// etcd endpoints, comma separated (default: $GNAMING_ETCD_ENDPOINTS, else 127.0.0.1:2379)
    #[arg(long, value_name = "ENDPOINTS")]
    pub etcd: Option<String>,
    /// DNS server for dns: targets (default: the system's)
    #[arg(long, value_name = "IP:PORT", value_parser = nameserver)]
    pub nameserver: Option<SocketAddr>,
}

/// `--metrics` of the long-running commands.
#[derive(Args)]
pub struct Metrics {
    /// Serve the stats at http://IP:PORT/metrics (loopback; port 0: any free port)
    #[arg(long, value_name = "IP:PORT")]
    pub metrics: Option<String>,
    /// Allow a --metrics address other than loopback (anyone who reaches it reads them)
    #[arg(long, requires = "metrics")]
    pub metrics_allow_remote: bool,
}

fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("takes a number of seconds from 0 to 86400, got '{text}'")),
    }
}

fn json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
}

fn value_format(text: &str) -> Result<ValueFormat, String> {
    ValueFormat::from_name(text)
}

fn nameserver(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| format!("takes IP:PORT, got '{text}'"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_grammar_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
