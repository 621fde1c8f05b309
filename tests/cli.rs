//! The `gnaming` command line: each command against real etcd members, bad input, `watch` seeing a
//! registration made by `register`, `--metrics` served over HTTP, `stats` counting what resolving
//! opens, and the shell completion scripts (bash's run by bash).
// It runs the `gnaming` binary, which needs the feature `cli`. The gate is here, not in Cargo.toml
// ([[test]] required-features), so that the manifest still parses where tests/ is absent (the
// Python sdist carries Cargo.toml, build.rs, src/ and include/ only).
#![cfg(feature = "cli")]

mod common;
mod zk_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use common::EtcdCluster;
use serde_json::Value;

/// Runs `gnaming` to its end, killed after 60 s (exit 124) should a command that must fail start serving.
fn gnaming(args: &[&str]) -> Output {
    Command::new("timeout").arg("60").arg(env!("CARGO_BIN_EXE_gnaming")).args(args).output().expect("gnaming runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `gnaming` whose stdout lines (and stderr lines, when asked for) arrive on channels.
struct Running {
    child: Child,
    lines: Receiver<String>,
    errors: Option<Receiver<String>>,
}

/// Every line `stream` gives, on a channel.
fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// The first line within `timeout` that satisfies `pred`; fails with every line seen.
fn wait_line_on(lines: &Receiver<String>, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if pred(&line) => return line,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("no line {what} within {timeout:?}; saw:\n{}", seen.join("\n"));
}

impl Running {
    fn start(args: &[&str]) -> Running {
        Running::spawn(args, false)
    }

    fn start_reading_stderr(args: &[&str]) -> Running {
        Running::spawn(args, true)
    }

    fn spawn(args: &[&str], read_stderr: bool) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gnaming"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(if read_stderr { Stdio::piped() } else { Stdio::inherit() })
            .spawn()
            .expect("gnaming runs");
        let lines = lines_of(child.stdout.take().unwrap());
        let errors = child.stderr.take().map(lines_of);
        Running { child, lines, errors }
    }

    fn wait_line(&self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_line_on(&self.lines, timeout, what, pred)
    }

    fn wait_stderr_line(&self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_line_on(self.errors.as_ref().expect("started reading stderr"), timeout, what, pred)
    }

    /// The address of `--metrics` from the line the command writes on stderr.
    fn metrics_address(&self) -> String {
        let line = self
            .wait_stderr_line(Duration::from_secs(10), "naming the metrics URL", |l| l.contains("metrics on http://"));
        let url = line.split("metrics on http://").nth(1).unwrap();
        url.strip_suffix("/metrics").unwrap_or_else(|| panic!("not a /metrics URL: {line}")).to_string()
    }

    fn terminate(self) -> std::process::ExitStatus {
        self.stop(libc::SIGTERM)
    }

    fn stop(self, signal: i32) -> std::process::ExitStatus {
        self.signal(signal);
        self.wait_exit(signal)
    }

    fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn wait_exit(mut self, signal: i32) -> std::process::ExitStatus {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("gnaming did not exit within 10 s of signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn addresses(line: &str) -> Vec<(String, u64)> {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    v["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["addr"].as_str().unwrap().to_string(), a["weight"].as_u64().unwrap()))
        .collect()
}

#[test]
fn resolve_prints_a_static_list_as_text_and_as_json() {
    let out = gnaming(&["resolve", "pass:///127.0.0.1:50051#2,[::1]:50052"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let entries: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(entries.iter().filter(|l| l.contains("127.0.0.1:50051")).count(), 2, "{stdout}");
    assert!(stdout.contains("copy=1") && stdout.contains("[::1]:50052"), "{stdout}");

    let out = gnaming(&["resolve", "ipv4:127.0.0.1:1", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["state"], "ok");
    assert_eq!(v["addresses"][0]["addr"], "127.0.0.1:1");
    assert_eq!(v["addresses"][0]["family"], "ipv4");
}

#[test]
fn bad_input_exits_2_with_the_reason() {
    let cases: &[(&[&str], &str)] = &[
        (&["resolve", "pass:///a:1#0"], "the number of connections"),
        (&["resolve"], "not provided:\n  <TARGET>"),
        (&["resolve", "nope:x"], "unknown scheme 'nope'"),
        (&["resolve", "pass:///a:1", "--timeout", "-1"], "for '--timeout <SECONDS>': takes a number of seconds"),
        (&["resolve", "pass:///a:1", "--timeout", "soon"], "invalid value 'soon' for '--timeout <SECONDS>'"),
        (&["resolve", "pass:///a:1", "--nameserver", "dns.example"], "for '--nameserver <IP:PORT>': takes IP:PORT"),
        (&["watch", "a", "b"], "unexpected argument 'b'"),
        (&["register", "svc"], "not provided:\n  <ADDR>"),
        (&["register", "svc", "127.0.0.1:1", "--metadata", "{bad"], "not valid JSON"),
        (&["register", "svc", "127.0.0.1:1", "--ttl", "0.5", "--etcd", "127.0.0.1:1"], "below the minimum"),
        (&["register", "svc", "127.0.0.1:1", "--etcd", "no-port"], "no-port"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["resolve", "pass:///a:1", "--bogus"], "unexpected argument '--bogus'"),
        (&["xds-agent", "--listen", "0.0.0.0:0"], "non-loopback"),
        (&["xds-agent", "--listen", "example.com:1"], "must be an IP address"),
        (&["xds-agent", "--default-scheme", "nope"], "unknown default scheme"),
        (&["xds-agent", "--allow-non-loopback=yes"], "unexpected value 'yes' for '--allow-non-loopback'"),
        (&["xds-agent", "extra"], "unexpected argument 'extra'"),
        (&["xds-agent", "--metrics", "0.0.0.0:9464"], "not a loopback address"),
        (&["xds-agent", "--metrics", "192.0.2.1:9464"], "add --metrics-allow-remote"),
        (&["xds-agent", "--metrics", "example.com:9464"], "--metrics takes IP:PORT"),
        (&["xds-agent", "--metrics-allow-remote"], "not provided:\n  --metrics <IP:PORT>"),
        (&["xds-agent", "--metrics-allow-remote=yes", "--metrics", "127.0.0.1:0"], "unexpected value 'yes'"),
        (&["watch", "pass:///a:1", "--metrics", "[::]:9464"], "not a loopback address"),
        (&["register", "svc", "127.0.0.1:1", "--metrics", "0.0.0.0:0"], "not a loopback address"),
        (&["resolve", "pass:///a:1", "--metrics", "127.0.0.1:0"], "unexpected argument '--metrics'"),
        (&["stats", "nope:x"], "unknown scheme 'nope'"),
        (&["stats", "--wait", "0"], "for '--wait <SECONDS>': takes a number of seconds"),
        (&["completions", "tcsh"], "invalid value 'tcsh' for '<SHELL>'"),
        (&["register", "svc", "127.0.0.1:1", "--format", "micro"], "unknown registration format 'micro'"),
    ];
    for (args, needle) in cases {
        let out = gnaming(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {stderr}");
        assert!(stderr.contains(needle), "{args:?}: expected {needle:?} in: {stderr}");
    }
}

/// Every command, with an argument it must have (none when it needs none).
const COMMANDS: &[(&str, Option<&str>)] = &[
    ("resolve", Some("<TARGET>")),
    ("watch", Some("<TARGET>")),
    ("register", Some("<SERVICE>")),
    ("xds-agent", None),
    ("stats", None),
    ("completions", Some("<SHELL>")),
];

#[test]
fn unknown_options_and_missing_arguments_exit_2_naming_them_in_every_command() {
    for (command, required) in COMMANDS {
        let out = gnaming(&[command, "--no-such-option"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command} --no-such-option: stderr {stderr}");
        assert!(stderr.contains("unexpected argument '--no-such-option'"), "{command}: {stderr}");
        assert!(stderr.contains(&format!("Usage: gnaming {command} ")), "{command}: the usage line in: {stderr}");
        assert!(out.stdout.is_empty(), "{command}: {}", text(&out.stdout));
        if let Some(required) = required {
            let out = gnaming(&[command]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command}: stderr {stderr}");
            assert!(stderr.contains("not provided") && stderr.contains(required), "{command}: {required} in: {stderr}");
        }
    }
    // An option that takes a value, given none, in each command that has one.
    for args in [
        &["resolve", "pass:///a:1", "--timeout"][..],
        &["watch", "pass:///a:1", "--metrics"],
        &["register", "svc", "127.0.0.1:1", "--ttl"],
        &["xds-agent", "--listen"],
        &["stats", "--wait"],
        &["stats", "--etcd"],
    ] {
        let out = gnaming(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {stderr}");
        let option = args.last().unwrap();
        assert!(stderr.contains(&format!("a value is required for '{option} <")), "{args:?}: {stderr}");
    }
}

#[test]
fn every_command_has_help_with_its_usage_options_and_exit_codes() {
    for args in [&[][..], &["--help"], &["help"]] {
        let out = gnaming(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let stdout = text(&out.stdout);
        for (command, _) in COMMANDS {
            assert!(stdout.contains(&format!("gnaming {command} ")), "{args:?}: {command} in: {stdout}");
        }
        assert!(stdout.contains("$GNAMING_ETCD_ENDPOINTS") && stdout.contains("exit codes: 0 ok"), "{stdout}");
    }
    for (command, _) in COMMANDS {
        for help in ["--help", "-h"] {
            let out = gnaming(&[command, help]);
            assert_eq!(out.status.code(), Some(0), "{command} {help}");
            let stdout = text(&out.stdout);
            assert!(stdout.contains(&format!("Usage: gnaming {command} ")), "{command} {help}: {stdout}");
            assert!(stdout.contains("exit codes: 0 ok, 1 failure, 2 bad usage"), "{command} {help}: {stdout}");
        }
    }
    let stdout = text(&gnaming(&["resolve", "--help"]).stdout);
    assert!(stdout.contains("gnaming resolve 'pass:///127.0.0.1:50051#2,127.0.0.1:50052'"), "an example: {stdout}");
    assert!(stdout.contains("[default: 10]"), "the default timeout: {stdout}");
    let stdout = text(&gnaming(&["xds-agent", "--help"]).stdout);
    assert!(stdout.contains("[default: 127.0.0.1:0]") && stdout.contains("[default: etcd]"), "{stdout}");
    let out = gnaming(&["--version"]);
    assert_eq!(text(&out.stdout), format!("gnaming {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn unreachable_etcd_exits_3_with_a_clear_error() {
    let out = gnaming(&["resolve", "etcd:///svc", "--etcd", "127.0.0.1:1", "--timeout", "5"]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("127.0.0.1:1"), "{}", text(&out.stderr));
    let out = gnaming(&["register", "svc", "127.0.0.1:9", "--etcd", "127.0.0.1:1", "--wait", "1"]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not registered within"), "{}", text(&out.stderr));
}

#[test]
fn watch_sees_a_registration_made_by_register_and_its_removal_on_sigterm() {
    let cluster = EtcdCluster::start(3);
    let etcd = cluster.endpoints.join(",");
    let watch = Running::start(&["watch", "etcd:///cli/echo", "--etcd", &etcd, "--json"]);
    watch.wait_line(Duration::from_secs(10), "with the empty start list", |l| addresses(l).is_empty());

    let register = Running::start(&[
        "register",
        "cli/echo",
        "127.0.0.1:7001",
        "--ttl",
        "5",
        "--metadata",
        r#"{"weight":3}"#,
        "--etcd",
        &etcd,
    ]);
    register
        .wait_line(Duration::from_secs(10), "saying registered", |l| l.contains("registered cli/echo/127.0.0.1:7001"));
    let expected = vec![("127.0.0.1:7001".to_string(), 3)];
    watch.wait_line(Duration::from_secs(10), "with the registered address of weight 3", |l| addresses(l) == expected);

    let out = gnaming(&["resolve", "etcd:///cli/echo", "--etcd", &etcd, "--json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(addresses(&text(&out.stdout)), expected);

    let status = register.terminate();
    assert!(status.success(), "register exited with {status}");
    watch.wait_line(Duration::from_secs(2), "with the address removed", |l| addresses(l).is_empty());
    assert!(watch.terminate().success());
}

#[test]
fn register_with_a_zk_service_registers_in_zookeeper_sigterm_removes_the_node_and_sigkill_lets_it_expire() {
    let ensemble = zk_support::Ensemble::start(1);
    let service = format!("zk://{}/cli/zecho", ensemble.servers);
    let watch = Running::start(&["watch", &service, "--json"]);
    watch.wait_line(Duration::from_secs(15), "with the empty start list", |l| addresses(l).is_empty());

    let register = Running::start(&["register", &service, "127.0.0.1:7004", "--metadata", r#"{"weight":2}"#]);
    register.wait_line(Duration::from_secs(15), "saying registered under the service's node", |l| {
        l.contains("registered /cli/zecho/")
    });
    let expected = vec![("127.0.0.1:7004".to_string(), 2)];
    watch.wait_line(Duration::from_secs(10), "with the registered address of weight 2", |l| addresses(l) == expected);

    let status = register.terminate();
    assert!(status.success(), "register exited with {status}");
    watch.wait_line(Duration::from_secs(10), "with the node removed", |l| addresses(l).is_empty());

    // SIGKILL closes nothing: the node goes when ZooKeeper expires the session, a TTL (2 s) later.
    let killed = Running::start(&["register", &service, "127.0.0.1:7005", "--ttl", "2"]);
    killed.wait_line(Duration::from_secs(15), "saying registered", |l| l.contains("registered /cli/zecho/"));
    let expected = vec![("127.0.0.1:7005".to_string(), 1)];
    watch.wait_line(Duration::from_secs(10), "with the second registration", |l| addresses(l) == expected);
    let at = Instant::now();
    killed.stop(libc::SIGKILL);
    watch.wait_line(Duration::from_secs(10), "with the killed process's node expired", |l| addresses(l).is_empty());
    let gone = at.elapsed();
    assert!(gone >= Duration::from_secs(1), "the node went {gone:?} after SIGKILL, before its session could expire");
    assert!(watch.terminate().success());
}

#[test]
fn register_in_the_kratos_format_writes_kratos_key_layout_which_resolves() {
    let cluster = EtcdCluster::start(1);
    let etcd = cluster.endpoints.join(",");
    let args = ["register", "cli-kratos", "127.0.0.1:7003", "--format", "kratos", "--etcd", &etcd];
    let register = Running::start(&args);
    register.wait_line(Duration::from_secs(10), "saying registered under Kratos's layout", |l| {
        l.contains("registered /microservices/cli-kratos/")
    });
    let out = gnaming(&["resolve", "etcd:////microservices/cli-kratos", "--etcd", &etcd, "--json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(addresses(&text(&out.stdout)), vec![("127.0.0.1:7003".to_string(), 1)]);
    assert!(register.terminate().success());
}

#[test]
fn register_writes_after_its_warm_up_and_on_sigterm_deletes_then_drains_before_exiting() {
    let cluster = EtcdCluster::start(3);
    let etcd = cluster.endpoints.join(",");
    let watch = Running::start(&["watch", "etcd:///cli/drain", "--etcd", &etcd, "--json"]);
    watch.wait_line(Duration::from_secs(10), "with the empty start list", |l| addresses(l).is_empty());

    let started = Instant::now();
    let args = ["register", "cli/drain", "127.0.0.1:7002", "--warmup", "1", "--drain", "1", "--etcd", &etcd];
    let mut register = Running::start(&args);
    register.wait_line(Duration::from_secs(10), "saying it warms up", |l| {
        l.contains("warming up cli/drain/127.0.0.1:7002")
    });
    let expected = vec![("127.0.0.1:7002".to_string(), 1)];
    watch.wait_line(Duration::from_secs(10), "with the registered address", |l| addresses(l) == expected);
    let shown = started.elapsed();
    assert!(shown >= Duration::from_secs(1), "the address showed {shown:?} after the start, within the 1 s warm-up");
    register.wait_line(Duration::from_secs(10), "saying registered", |l| l.contains("registered cli/drain/"));

    let signalled = Instant::now();
    register.signal(libc::SIGTERM);
    register
        .wait_line(Duration::from_secs(10), "saying it drains", |l| l.contains("draining cli/drain/127.0.0.1:7002"));
    watch.wait_line(Duration::from_secs(1), "with the address removed", |l| addresses(l).is_empty());
    let removed = signalled.elapsed();
    assert!(register.is_running(), "register exited {removed:?} after SIGTERM, before its 1 s drain ended");
    register.wait_line(Duration::from_secs(10), "saying deregistered", |l| l.contains("deregistered cli/drain/"));
    let status = register.wait_exit(libc::SIGTERM);
    let exited = signalled.elapsed();
    assert!(status.success(), "register exited with {status}");
    assert!(exited >= Duration::from_secs(1), "register exited {exited:?} after SIGTERM, within its 1 s drain");
    assert!(watch.terminate().success());
}

#[test]
fn register_refuses_a_bad_warm_up_or_drain() {
    for (args, needle) in [
        (["register", "svc", "127.0.0.1:1", "--drain", "0"], "for '--drain <SECONDS>': takes a number of seconds"),
        (["register", "svc", "127.0.0.1:1", "--warmup", "soon"], "invalid value 'soon' for '--warmup <SECONDS>'"),
    ] {
        let out = gnaming(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {stderr}");
        assert!(stderr.contains(needle), "{args:?}: expected {needle:?} in: {stderr}");
    }
}

#[test]
fn the_xds_agent_writes_its_bootstrap_serves_and_cleans_up_on_sigterm() {
    agent_serves_and_cleans_up_on(libc::SIGTERM, "term");
}

#[test]
fn the_xds_agent_cleans_up_on_ctrl_c_too() {
    agent_serves_and_cleans_up_on(libc::SIGINT, "int");
}

fn agent_serves_and_cleans_up_on(signal: i32, tag: &str) {
    let dir = std::env::temp_dir().join(format!("gnaming-cli-xds-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bootstrap.json");
    let agent = Running::start(&["xds-agent", "--listen", "unix:", "--bootstrap-out", file.to_str().unwrap()]);
    let line =
        agent.wait_line(Duration::from_secs(10), "saying it listens", |l| l.starts_with("xds-agent listening on "));
    let address = line.split_whitespace().nth(3).expect("an address").to_string();
    assert!(address.starts_with("unix:/"), "{line}");
    let bootstrap: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(bootstrap["xds_servers"][0]["server_uri"], address.as_str());
    assert!(bootstrap["node"]["locality"].is_object(), "Node's xDS client needs a locality: {bootstrap}");
    use std::os::unix::fs::PermissionsExt;
    let socket = std::path::PathBuf::from(address.trim_start_matches("unix:"));
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);
    let status = agent.stop(signal);
    assert_eq!(status.code(), Some(0), "signal {signal} must end the agent cleanly");
    assert!(!file.exists(), "the agent removes its bootstrap file");
    assert!(!socket.exists(), "the agent removes its socket");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One HTTP/1.1 request on loopback, answered and closed within 10 s: the status line, the headers
/// (lower-case names) and the body.
fn http(address: &str, request_line: &str) -> (String, Vec<(String, String)>, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap_or_else(|e| panic!("connect {address}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "{request_line}\r\nHost: {address}\r\nUser-Agent: cli-test\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap_or_else(|e| panic!("{request_line}: no whole answer: {e}"));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end in {answer:?}"));
    let mut head = head.split("\r\n");
    let status = head.next().unwrap().to_string();
    let headers = head
        .map(|h| h.split_once(": ").unwrap_or_else(|| panic!("bad header {h:?}")))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn the_xds_agent_serves_its_stats_at_metrics_and_404_elsewhere() {
    let dir = std::env::temp_dir().join(format!("gnaming-cli-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bootstrap.json");
    let agent = Running::start_reading_stderr(&[
        "xds-agent",
        "--listen",
        "127.0.0.1:0",
        "--bootstrap-out",
        file.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
    ]);
    let address = agent.metrics_address();
    assert!(address.starts_with("127.0.0.1:") && !address.ends_with(":0"), "{address}");
    agent.wait_line(Duration::from_secs(10), "saying it listens", |l| l.starts_with("xds-agent listening on "));

    let (status, headers, body) = http(&address, "GET /metrics HTTP/1.1");
    assert_eq!(status, "HTTP/1.1 200 OK", "{headers:?}\n{body}");
    assert_eq!(header(&headers, "content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(header(&headers, "content-length"), Some(body.len().to_string().as_str()));
    for d in gnaming::etcd::stats::DEFINITIONS {
        let kind = match d.kind {
            gnaming::etcd::stats::Kind::Counter => "counter",
            gnaming::etcd::stats::Kind::Gauge => "gauge",
        };
        let (help, type_line) =
            (format!("# HELP {} ", d.prometheus_name()), format!("# TYPE {} {kind}", d.prometheus_name()));
        assert!(
            body.lines().any(|l| l.starts_with(&help)) && body.lines().any(|l| l == type_line),
            "{} in:\n{body}",
            d.name
        );
    }
    // The agent's own numbers: its one xDS server, no stream yet.
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines.contains(&"gnaming_xds_servers_active 1"), "{body}");
    assert!(lines.contains(&"gnaming_xds_streams_active 0"), "{body}");

    let (status, _, _) = http(&address, "GET / HTTP/1.1");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _, _) = http(&address, "GET /metrics/x HTTP/1.1");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    assert_eq!(agent.terminate().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn watch_serves_its_stats_at_metrics_too() {
    let watch = Running::start_reading_stderr(&["watch", "pass:///127.0.0.1:1", "--json", "--metrics", "localhost:0"]);
    let address = watch.metrics_address();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    watch.wait_line(Duration::from_secs(10), "with the static list", |l| addresses(l).len() == 1);
    let (status, _, body) = http(&address, "GET /metrics HTTP/1.1");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.lines().any(|l| l == "gnaming_updates_delivered_total 1"), "{body}");
    assert!(watch.terminate().success());
}

/// `gnaming stats` run to its end: the exit code, its stdout and its stderr.
fn stats_of(args: &[&str]) -> (Option<i32>, String, String) {
    let out = gnaming(&[&["stats"][..], args].concat());
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn stats_counts_the_connection_and_watches_resolving_etcd_targets_opens() {
    let cluster = EtcdCluster::start(3);
    let etcd = cluster.endpoints.join(",");
    // Two resolvers of one prefix share its watch; a third prefix has its own; all share one cluster.
    let targets = ["etcd:///cli/stats/a", "etcd:///cli/stats/a", "etcd:///cli/stats/b"];
    let (code, stdout, stderr) = stats_of(&[&targets[..], &["--etcd", &etcd]].concat());
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    let expected =
        [("clusters_connected", 1), ("watches_active", 2), ("updates_delivered", 3), ("xds_servers_active", 0)];
    for (name, value) in expected {
        assert_eq!(v[name], value, "{name} in {stdout}");
    }
    let names = gnaming::etcd::stats::DEFINITIONS.iter().map(|d| d.name);
    assert_eq!(v.as_object().unwrap().len(), names.len(), "every stat, no other: {stdout}");
    for name in names {
        assert!(v[name].is_u64(), "{name} in {stdout}");
    }

    let (code, stdout, stderr) = stats_of(&[&targets[..], &["--etcd", &etcd, "--prometheus"]].concat());
    assert_eq!(code, Some(0), "stderr: {stderr}");
    for d in gnaming::etcd::stats::DEFINITIONS {
        let name = d.prometheus_name();
        assert!(stdout.lines().any(|l| l == format!("# HELP {name} {}", d.help)), "{name} help in:\n{stdout}");
        assert!(stdout.lines().any(|l| l.starts_with(&format!("# TYPE {name} "))), "{name} type in:\n{stdout}");
    }
    let lines: Vec<&str> = stdout.lines().collect();
    for sample in ["gnaming_clusters_connected 1", "gnaming_watches_active 2", "gnaming_updates_delivered_total 3"] {
        assert!(lines.contains(&sample), "{sample} in:\n{stdout}");
    }
}

#[test]
fn stats_without_targets_lists_every_stat_at_zero() {
    let (code, stdout, stderr) = stats_of(&[]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    let object = v.as_object().unwrap();
    assert_eq!(object.len(), gnaming::etcd::stats::DEFINITIONS.len(), "{stdout}");
    assert!(object.values().all(|value| value == 0), "{stdout}");
}

#[test]
fn stats_exits_3_naming_an_unreachable_target_and_still_prints_the_stats() {
    let (code, stdout, stderr) =
        stats_of(&["pass:///127.0.0.1:1", "etcd:///cli/stats", "--etcd", "127.0.0.1:1", "--wait", "5"]);
    assert_eq!(code, Some(3), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("etcd:///cli/stats") && stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("pass:///"), "the answered target is not named: {stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    assert_eq!(v["updates_delivered"], 2, "{stdout}");
}

/// The completion script of `shell`, which must name every command.
fn completion_script(shell: &str) -> String {
    let out = gnaming(&["completions", shell]);
    assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
    let script = text(&out.stdout);
    for (command, _) in COMMANDS {
        assert!(script.contains(command), "{shell}: {command} in the script");
    }
    script
}

#[test]
fn the_bash_completion_completes_commands_and_options_in_bash() {
    let script = completion_script("bash");
    let dir = std::env::temp_dir().join(format!("gnaming-cli-completion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gnaming.bash");
    std::fs::write(&file, script).unwrap();
    // What bash offers after `gnaming x` and after `gnaming stats --p`, the way it calls the function
    // `complete -p gnaming` names.
    let program = r#"
        source "$1" || exit 1
        spec=$(complete -p gnaming) || exit 1
        fn=$(sed -n 's/.*-F \([^ ]*\) .*/\1/p' <<<"$spec")
        offer() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
                  "$fn" gnaming "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"; echo "${COMPREPLY[*]}"; }
        echo "spec: $spec"
        echo "x: $(offer gnaming x)"
        echo "stats --p: $(offer gnaming stats --p)"
    "#;
    let out = Command::new("timeout")
        .args(["20", "bash", "--norc", "--noprofile", "-c", program, "bash"])
        .arg(&file)
        .output()
        .expect("bash runs");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let offered = |prefix: &str| -> Vec<String> {
        let line =
            stdout.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("{prefix} in {stdout}"));
        line.split_whitespace().map(String::from).collect()
    };
    assert_eq!(offered("x: "), ["xds-agent"], "{stdout}");
    assert_eq!(offered("stats --p: "), ["--prometheus"], "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zsh_and_fish_get_their_own_completion_scripts() {
    assert!(completion_script("zsh").starts_with("#compdef gnaming\n"));
    let fish = completion_script("fish");
    assert!(fish.lines().any(|l| l.starts_with("complete -c gnaming ") && l.contains("-a \"xds-agent\"")), "{fish}");
}
