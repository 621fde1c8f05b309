//! Shared pieces of the etcd integration tests: real etcd clusters through the harness CLI
//! (tests/harness/etcd_cluster.py), a direct etcd client for the "someone else" side, and an update
//! collector with bounded waits that print expected and observed address lists.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gnaming::etcd::cluster::{self, ClusterConfig};
use gnaming::{ErrorKind, Resolver, ResolverOptions, Update};

/// A real etcd cluster on loopback, torn down on drop (and by the harness if this process dies).
pub struct EtcdCluster {
    pub dir: PathBuf,
    pub endpoints: Vec<String>,
}

fn harness() -> String {
    format!("{}/tests/harness/etcd_cluster.py", env!("CARGO_MANIFEST_DIR"))
}

impl EtcdCluster {
    pub fn start(members: usize) -> Self {
        Self::start_with(members, &[])
    }

    pub fn start_with(members: usize, extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("gnaming-etcd-test-{}-{}", std::process::id(), unique()));
        let out = Command::new("python3")
            .arg(harness())
            .args(["start", "--dir"])
            .arg(&dir)
            .args(["--members", &members.to_string(), "--watch-pid", &std::process::id().to_string()])
            .args(extra)
            .output()
            .expect("python3 runs the etcd harness");
        assert!(out.status.success(), "etcd cluster did not start: {}", String::from_utf8_lossy(&out.stderr));
        let endpoints = String::from_utf8(out.stdout).unwrap().trim().split(',').map(str::to_string).collect();
        EtcdCluster { dir, endpoints }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("python3")
            .arg(harness())
            .arg(args[0])
            .arg("--dir")
            .arg(&self.dir)
            .args(&args[1..])
            .output()
            .expect("python3 runs the etcd harness");
        assert!(out.status.success(), "harness {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn signal(&self, member: usize, signal: &str) {
        self.cli(&["signal", "--member", &member.to_string(), "--signal", signal]);
    }

    pub fn restart(&self, member: usize) {
        self.cli(&["restart", "--member", &member.to_string()]);
    }

    pub fn stop_all(&self) {
        self.cli(&["stop-all"]);
    }

    pub fn start_all(&self) {
        self.cli(&["start-all"]);
    }

    pub fn compact(&self) -> i64 {
        self.cli(&["compact"]).trim().parse().expect("compact prints the revision")
    }

    /// Saves a snapshot of the cluster's data into `file` (etcdctl snapshot save).
    pub fn snapshot(&self, file: &std::path::Path) {
        self.cli(&["snapshot", "--file", file.to_str().expect("a UTF-8 path")]);
    }

    /// Restarts every member from the snapshot in `file`, on the same ports: the cluster goes back
    /// to the snapshot's revision, as after a restore from backup.
    pub fn restore(&self, file: &std::path::Path) {
        self.cli(&["restore", "--file", file.to_str().expect("a UTF-8 path")]);
    }

    /// Registers this cluster under `name` for targets `etcd://name/...` and registrations.
    pub fn register_as(&self, name: &str) {
        let config = ClusterConfig {
            endpoints: self.endpoints.clone(),
            request_timeout: Duration::from_secs(1),
            dial_timeout: Duration::from_millis(500),
            ..Default::default()
        };
        cluster::register(name, config).expect("cluster registers");
    }

    /// A plain etcd client for the "someone else" side of a test.
    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect(&self.endpoints, None).await.expect("test client connects")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        let _ = Command::new("python3").arg(harness()).arg("stop").arg("--dir").arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Every log line the library (and the crates under it) emits from now on at `level` and above, as
/// "Level target: message"; the process's one sink, so a test binary uses one capture at a time.
#[derive(Default)]
pub struct LogCapture(parking_lot::Mutex<Vec<String>>);

impl gnaming::log::LogSink for LogCapture {
    fn log(&self, level: gnaming::log::Level, target: &str, message: &str) {
        self.0.lock().push(format!("{level:?} {target}: {message}"));
    }
}

impl LogCapture {
    pub fn start(level: gnaming::log::Level) -> Arc<LogCapture> {
        let capture = Arc::new(LogCapture::default());
        gnaming::log::set_sink(Some(capture.clone()), level);
        capture
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().clone()
    }
}

/// A tokio runtime for the test's own etcd client calls.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Every update of one resolver, in order, with when the callback received it.
pub struct Updates {
    rx: Receiver<(Instant, Arc<Update>)>,
    pub seen: Vec<Arc<Update>>,
    /// When each of `seen` reached the callback: timing checks read these, so a test thread
    /// that wakes late on a loaded machine does not count against the library.
    pub arrivals: Vec<Instant>,
    pub resolver: Resolver,
}

pub fn resolve(target: &str) -> Updates {
    resolve_with(target, &ResolverOptions::default())
}

pub fn resolve_with(target: &str, options: &ResolverOptions) -> Updates {
    let (tx, rx) = channel();
    let handler = move |u: &Arc<Update>| {
        let _ = tx.send((Instant::now(), Arc::clone(u)));
    };
    let resolver = Resolver::start(target, options, Some(Box::new(handler))).expect("resolver starts");
    Updates { rx, seen: Vec::new(), arrivals: Vec::new(), resolver }
}

/// Takes a pull resolver's updates until one satisfies `want`, waiting at most `patience`; fails naming
/// what was expected and every update that came, as `show` writes one.
pub fn next_until(
    resolver: &Resolver,
    patience: Duration,
    expected: &str,
    show: impl Fn(&Update) -> String,
    want: impl Fn(&Update) -> bool,
) -> Arc<Update> {
    let deadline = Instant::now() + patience;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match resolver.next(Some(left)) {
            Ok(update) if want(&update) => return update,
            Ok(update) => seen.push(show(&update)),
            Err(e) if e.kind() == ErrorKind::Timeout => break,
            Err(e) => panic!("next(): {e}"),
        }
    }
    panic!("expected {expected} within {patience:?}; observed updates: {seen:#?}");
}

/// The addresses of an update, sorted, with `#copy` when there are copies.
pub fn addrs(u: &Update) -> Vec<String> {
    let mut v: Vec<String> = u
        .addresses
        .iter()
        .map(|e| if e.copy_index > 0 { format!("{}#{}", e.address, e.copy_index) } else { e.address.to_string() })
        .collect();
    v.sort();
    v
}

pub fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

impl Updates {
    /// Waits for an update that satisfies `pred`; panics naming `what` and the last list seen.
    pub fn wait_for(&mut self, timeout: Duration, what: &str, pred: impl Fn(&Update) -> bool) -> Arc<Update> {
        let deadline = Instant::now() + timeout;
        if let Some(last) = self.seen.last() {
            if pred(last) {
                return Arc::clone(last);
            }
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((at, u)) => {
                    self.seen.push(Arc::clone(&u));
                    self.arrivals.push(at);
                    if pred(&u) {
                        return u;
                    }
                }
                Err(_) => {
                    let last = self.seen.last().map(|u| (addrs(u), u.state.clone()));
                    panic!("expected {what} within {timeout:?}; observed last: {last:?}");
                }
            }
        }
    }

    /// Waits for an OK update whose sorted addresses equal `expected`.
    pub fn wait_list(&mut self, timeout: Duration, expected: &[String]) -> Arc<Update> {
        let what = format!("the list {expected:?}");
        self.wait_for(timeout, &what, |u| u.is_ok() && addrs(u) == expected)
    }

    /// Takes what arrived without waiting.
    pub fn drain(&mut self) {
        while let Ok((at, u)) = self.rx.try_recv() {
            self.seen.push(u);
            self.arrivals.push(at);
        }
    }
}
