//! ZooKeeper pieces shared by the zk integration tests: real ensembles through the harness CLI
//! (tests/harness/zk_ensemble.py) and a plain ZooKeeper client for the "someone else" side.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use zookeeper_client::{Acls, Client, CreateMode};

/// A real ZooKeeper ensemble on loopback, torn down on drop (and by the harness if this process dies).
pub struct Ensemble {
    pub dir: PathBuf,
    pub servers: String,
}

fn harness() -> String {
    format!("{}/tests/harness/zk_ensemble.py", env!("CARGO_MANIFEST_DIR"))
}

impl Ensemble {
    pub fn start(servers: usize) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("gnaming-zk-test-{}-{n}", std::process::id()));
        let out = Command::new("python3")
            .arg(harness())
            .args(["start", "--dir"])
            .arg(&dir)
            .args(["--servers", &servers.to_string(), "--watch-pid", &std::process::id().to_string()])
            .output()
            .expect("python3 runs the ZooKeeper harness");
        assert!(out.status.success(), "ensemble did not start: {}", String::from_utf8_lossy(&out.stderr));
        Ensemble { dir, servers: String::from_utf8(out.stdout).unwrap().trim().to_string() }
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("python3")
            .arg(harness())
            .arg(args[0])
            .arg("--dir")
            .arg(&self.dir)
            .args(&args[1..])
            .output()
            .expect("python3 runs the ZooKeeper harness");
        assert!(out.status.success(), "harness {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn server(&self, i: usize) -> &str {
        self.servers.split(',').nth(i).expect("server index")
    }

    pub fn others(&self, i: usize) -> String {
        self.servers.split(',').enumerate().filter(|(j, _)| *j != i).map(|(_, s)| s).collect::<Vec<_>>().join(",")
    }

    pub fn leader(&self) -> usize {
        self.cli(&["leader"]).trim().parse().expect("leader prints an index")
    }

    /// Sends server `i` a signal: KILL, STOP, CONT or TERM.
    pub fn signal(&self, i: usize, signal: &str) {
        self.cli(&["signal", "--server", &i.to_string(), "--signal", signal]);
    }

    pub fn kill(&self, i: usize) {
        self.signal(i, "KILL");
    }

    pub fn restart(&self, i: usize) {
        self.cli(&["restart", "--server", &i.to_string()]);
    }

    pub fn stop_all(&self) {
        self.cli(&["stop-all"]);
    }

    pub fn start_all(&self) {
        self.cli(&["start-all"]);
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        let _ = Command::new("python3").arg(harness()).arg("stop").arg("--dir").arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The "someone else" side: a plain ZooKeeper client on a runtime of its own, whose writes retry
/// through leader elections (bounded), taking an earlier attempt that did land as done.
pub struct Writer {
    pub rt: tokio::runtime::Runtime,
    pub client: Client,
}

impl Writer {
    pub fn connect(servers: &str) -> Self {
        // A worker thread keeps the session's pings going while the test thread sleeps.
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let client = rt.block_on(Client::connect(servers)).expect("test client connects");
        Writer { rt, client }
    }

    pub fn retry<T>(&self, what: &str, op: impl Fn(&Client) -> Result<T, zookeeper_client::Error>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        for attempt in 0.. {
            match op(&self.client) {
                Ok(v) => return v,
                Err(e) if Instant::now() < deadline && attempt < 200 => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
        unreachable!()
    }

    pub fn mkdir(&self, path: &str) {
        let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
        self.retry(path, |c| self.rt.block_on(c.mkdir(path, &options)));
    }

    pub fn create(&self, path: &str, data: &str) {
        let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
        self.retry(path, |c| match self.rt.block_on(c.create(path, data.as_bytes(), &options)) {
            Err(zookeeper_client::Error::NodeExists) => Ok(()),
            other => other.map(|_| ()),
        });
    }

    /// An ephemeral node of this client's session.
    pub fn create_ephemeral(&self, path: &str, data: &str) {
        let options = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        self.retry(path, |c| self.rt.block_on(c.create(path, data.as_bytes(), &options)).map(|_| ()));
    }

    /// The node's data and the session that owns it (0: not ephemeral); `None` when it does not exist.
    /// Synced first: this client's server may not have applied a write another server took yet.
    pub fn node(&self, path: &str) -> Option<(String, i64)> {
        self.retry(path, |c| self.rt.block_on(c.sync("/")));
        self.retry(path, |c| match self.rt.block_on(c.get_data(path)) {
            Ok((data, stat)) => Ok(Some((String::from_utf8(data).unwrap(), stat.ephemeral_owner))),
            Err(zookeeper_client::Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        })
    }

    pub fn delete(&self, path: &str) {
        self.retry(path, |c| match self.rt.block_on(c.delete(path, None)) {
            Err(zookeeper_client::Error::NoNode) => Ok(()),
            other => other,
        });
    }

    pub fn set(&self, path: &str, data: &str) {
        self.retry(path, |c| self.rt.block_on(c.set_data(path, data.as_bytes(), None)).map(|_| ()));
    }

    /// The addresses ZooKeeper holds under `path` (children's data as bare `host:port`), sorted.
    pub fn addresses(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        for child in self.retry(path, |c| self.rt.block_on(c.list_children(path))) {
            let (data, _) = self.retry(path, |c| self.rt.block_on(c.get_data(&format!("{path}/{child}"))));
            out.push(String::from_utf8(data).unwrap());
        }
        out.sort();
        out
    }
}
