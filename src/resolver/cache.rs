//! The cold-start cache: the last good list of each target in a file of its own, written atomically
//! behind delivery, and read back to serve a resolver whose source is unreachable at start.
//!
//! The file holds the source's complete list, before the policy: the policy is applied again to what
//! is read, so every resolver of one source shares a file whatever its selectors, zone or `#N`
//! consumers, and a changed selector or `GNAMING_ZONE` is honoured at the next start instead of
//! replaying a list chosen under the old one. It is written only when the resolver delivers a good
//! (OK) list from it, so under `empty=keep` an emptied registry leaves the last non-empty list on disk.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::target::{Host, Target};
use crate::update::{Address, AddressFamily, AddressKind};

/// The environment variable that gives the cache directory when the resolver options do not.
pub const CACHE_DIR_ENV: &str = "GNAMING_CACHE_DIR";
/// How old a cached list may be and still be served.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The file format this library writes and reads; a file of another version is ignored.
pub const FORMAT_VERSION: u64 = 1;
/// A cache file larger than this is not read: no list a source gives comes near it.
const MAX_FILE_BYTES: u64 = 64 << 20;
/// How long closing a resolver waits for its cache write in flight.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Where and how long cached lists are kept; part of the resolver options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// The directory of the cache files; `None` takes `GNAMING_CACHE_DIR`, and without it there is no
    /// cache.
    pub dir: Option<PathBuf>,
    /// A cached list older than this is ignored.
    pub max_age: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions { dir: None, max_age: DEFAULT_MAX_AGE }
    }
}

impl CacheOptions {
    /// The directory a resolver starting now uses: the option, else `GNAMING_CACHE_DIR`, else none.
    pub fn resolved_dir(&self) -> Option<PathBuf> {
        self.dir.clone().or_else(|| std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()).map(PathBuf::from))
    }
}

/// What one source is, for the cache: the canonical target (scheme, name, `#N`; no query, since the
/// policy is applied after reading) and what it resolves against (the etcd members, the DNS server).
/// Both are written into the file and checked on reading, so a digest collision or a file copied
/// from elsewhere is never served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub target: String,
    pub against: String,
}

impl Source {
    /// The identity of `target`'s source, or `None` for targets that hold their list themselves
    /// (`pass:`, `ipv4:`, `unix:`, a `dns:` IP literal...): they never fail, so they need no cache.
    /// `etcd_members` gives the member URLs of an etcd target's cluster (`None`: unknown cluster,
    /// which fails the start anyway).
    pub fn of(
        target: &Target,
        dns: &crate::dns::DnsOptions,
        etcd_members: impl FnOnce() -> Option<Vec<String>>,
    ) -> Option<Source> {
        match target {
            Target::Etcd(t) => {
                let mut members = etcd_members()?;
                // The same members named in another order are the same cluster.
                members.sort();
                let copies = if t.copies > 1 { format!("#{}", t.copies) } else { String::new() };
                Some(Source { target: format!("etcd:///{}{copies}", t.service), against: members.join(",") })
            }
            Target::Dns(t) => {
                let Host::Name(name) = &t.host else { return None };
                let server =
                    t.server.or(dns.nameserver).map_or("the system configuration".to_string(), |s| s.to_string());
                let mut against = format!("nameserver {server}");
                if let Some(label) = &dns.srv_backends {
                    against.push_str(&format!(", SRV {label}"));
                }
                if dns.grpclb {
                    against.push_str(", grpclb");
                }
                if !dns.service_config {
                    against.push_str(", no service config");
                }
                Some(Source { target: format!("dns:///{name}:{}", t.port), against })
            }
            Target::Zk(t) => {
                let ensemble = crate::zk::ensemble::for_ref(&t.ensemble).ok()?;
                let (servers, chroot) = ensemble.servers_and_chroot();
                // The same servers named in another order are the same ensemble; credentials may
                // see other nodes, so the user is part of the source (never the password).
                let mut servers: Vec<&str> = servers.split(',').collect();
                servers.sort_unstable();
                let mut against = format!("servers {}", servers.join(","));
                if !chroot.is_empty() {
                    against.push_str(&format!(", chroot {chroot}"));
                }
                if let Some((user, _)) = &ensemble.digest {
                    against.push_str(&format!(", digest user {user}"));
                }
                let copies = if t.copies > 1 { format!("#{}", t.copies) } else { String::new() };
                Some(Source { target: format!("zk:///{}{copies}", t.path.trim_start_matches('/')), against })
            }
            _ => None,
        }
    }

    /// The file name: the scheme and a stable digest (FNV-1a, 128 bits) of the identity.
    fn file_name(&self) -> String {
        let scheme = self.target.split(':').next().unwrap_or_default();
        format!("{scheme}-{:032x}.json", fnv1a_128(format!("{}\n{}", self.target, self.against).as_bytes()))
    }
}

fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes.iter().fold(OFFSET, |hash, b| (hash ^ u128::from(*b)).wrapping_mul(PRIME))
}

/// A list read back from a cache file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub written: SystemTime,
    pub endpoints: Vec<Address>,
    pub service_config: Option<String>,
}

impl Cached {
    /// How long ago the list was written; zero for a file from the future (a clock set back).
    pub fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.written).unwrap_or_default()
    }
}

/// "12 s", "5 min", "3 h": an age as people read it in a message.
pub fn age_text(age: Duration) -> String {
    match age.as_secs() {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

#[derive(Serialize, Deserialize)]
struct Document {
    format: u64,
    target: String,
    source: String,
    written_unix_ms: u64,
    service_config: Option<String>,
    entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    address: String,
    family: String,
    kind: String,
    weight: u32,
    copy: u32,
    metadata: Option<String>,
}

const FAMILIES: [(AddressFamily, &str); 4] = [
    (AddressFamily::Ipv4, "ipv4"),
    (AddressFamily::Ipv6, "ipv6"),
    (AddressFamily::Unix, "unix"),
    (AddressFamily::Name, "name"),
];
const KINDS: [(AddressKind, &str); 2] = [(AddressKind::Backend, "backend"), (AddressKind::Balancer, "balancer")];

impl Entry {
    fn of(e: &Address) -> Self {
        Entry {
            address: e.address.to_string(),
            family: FAMILIES.iter().find(|(f, _)| *f == e.family).expect("every family is named").1.into(),
            kind: KINDS.iter().find(|(k, _)| *k == e.kind).expect("every kind is named").1.into(),
            weight: e.weight,
            copy: e.copy_index,
            metadata: e.metadata.as_ref().map(|m| m.to_string()),
        }
    }

    /// The endpoint, if the entry is one the library could have written.
    fn endpoint(self) -> Result<Address, String> {
        let family = FAMILIES.iter().find(|(_, n)| *n == self.family).map(|(f, _)| *f);
        let family = family.ok_or_else(|| format!("entry '{}': unknown family '{}'", self.address, self.family))?;
        let kind = KINDS.iter().find(|(_, n)| *n == self.kind).map(|(k, _)| *k);
        let kind = kind.ok_or_else(|| format!("entry '{}': unknown kind '{}'", self.address, self.kind))?;
        let ip = self.address.parse::<std::net::SocketAddr>().ok();
        let fits = match family {
            AddressFamily::Ipv4 => ip.is_some_and(|a| a.is_ipv4()),
            AddressFamily::Ipv6 => ip.is_some_and(|a| a.is_ipv6()),
            AddressFamily::Unix | AddressFamily::Name => !self.address.is_empty() && !self.address.contains('\0'),
        };
        if !fits || self.weight == 0 {
            return Err(format!("entry '{}' is no {} address with a weight of 1 or more", self.address, self.family));
        }
        if let Some(m) = &self.metadata {
            serde_json::from_str::<Value>(m).map_err(|e| format!("entry '{}': metadata: {e}", self.address))?;
        }
        Ok(Address {
            address: self.address.into(),
            family,
            kind,
            weight: self.weight,
            copy_index: self.copy,
            metadata: self.metadata.map(Into::into),
        })
    }
}

/// One source's cache file.
#[derive(Debug)]
pub struct CacheFile {
    dir: PathBuf,
    path: PathBuf,
    source: Source,
    max_age: Duration,
}

/// Makes the temporary files of concurrent writers in one process differ.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl CacheFile {
    pub fn new(dir: &Path, source: Source, max_age: Duration) -> Self {
        CacheFile { dir: dir.to_path_buf(), path: dir.join(source.file_name()), source, max_age }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached list, `Ok(None)` when there is no file, or why the file is not served: unreadable,
    /// corrupt, of another format version, for another source, or older than the max age.
    pub fn read(&self, now: SystemTime) -> Result<Option<Cached>, String> {
        let mut bytes = Vec::new();
        // One byte past the limit tells a file that is too large from one that just fits.
        let read = File::open(&self.path).and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes));
        match read {
            Ok(_) if bytes.len() as u64 > MAX_FILE_BYTES => {
                return Err(format!("is larger than {MAX_FILE_BYTES} bytes"));
            }
            Ok(_) => {}
            Err(e) if e.kind() == IoErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot be read: {e}")),
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("is corrupt: {e}"))?;
        match value.get("format").and_then(Value::as_u64) {
            Some(FORMAT_VERSION) => {}
            Some(other) => return Err(format!("has format version {other}, not {FORMAT_VERSION}")),
            None => return Err("is corrupt: no format version".into()),
        }
        let doc: Document = serde_json::from_value(value).map_err(|e| format!("is corrupt: {e}"))?;
        if doc.target != self.source.target || doc.source != self.source.against {
            return Err(format!(
                "was written for another target: '{}' against {}, not '{}' against {}",
                doc.target, doc.source, self.source.target, self.source.against
            ));
        }
        let written = UNIX_EPOCH + Duration::from_millis(doc.written_unix_ms);
        let entries = doc.entries.into_iter().map(Entry::endpoint).collect::<Result<Vec<_>, _>>();
        let cached = Cached {
            written,
            endpoints: entries.map_err(|e| format!("is corrupt: {e}"))?,
            service_config: doc.service_config,
        };
        let age = cached.age(now);
        if age > self.max_age {
            return Err(format!(
                "was written {} ago, more than the max age of {}",
                age_text(age),
                age_text(self.max_age)
            ));
        }
        Ok(Some(cached))
    }

    /// [`CacheFile::read`], logging why a file is not served: a cache never fails a resolver.
    pub fn load(&self, now: SystemTime) -> Option<Cached> {
        match self.read(now) {
            Ok(cached) => cached,
            Err(why) => {
                tracing::warn!("cache file {} for '{}' ignored: it {why}", self.path.display(), self.source.target);
                None
            }
        }
    }

    /// Replaces the file with `endpoints` and `service_config`, written at `written`: a temporary
    /// file in the same directory (mode 0600), flushed to disk, renamed over the old one, so a
    /// reader sees the old list or the new one, never a part. Creates the directory (mode 0700).
    pub fn write(
        &self,
        endpoints: &[Address],
        service_config: Option<&str>,
        written: SystemTime,
    ) -> Result<(), String> {
        let doc = Document {
            format: FORMAT_VERSION,
            target: self.source.target.clone(),
            source: self.source.against.clone(),
            written_unix_ms: written.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64,
            service_config: service_config.map(str::to_string),
            entries: endpoints.iter().map(Entry::of).collect(),
        };
        let text = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| format!("cannot create the directory {}: {e}", self.dir.display()))?;
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or("cache");
        let temp = self.dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()))
            .and_then(|()| fs::rename(&temp, &self.path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(format!("cannot write {}: {e}", self.path.display()));
        }
        // The rename is durable once the directory is: without this a crash could bring the old file back.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Writes a resolver's new lists behind its delivery: the publishing task hands a list over and goes
/// on, a blocking-pool thread writes it, and lists that come while one is written replace each
/// other, so only the latest is written next. A failed write is a warning; the update was delivered.
pub struct Writer {
    file: CacheFile,
    state: Mutex<WriterState>,
    idle: Condvar,
}

#[derive(Default)]
struct WriterState {
    pending: Option<(Vec<Address>, Option<String>, SystemTime)>,
    running: bool,
}

impl Writer {
    pub fn new(file: CacheFile) -> Arc<Self> {
        Arc::new(Writer { file, state: Mutex::new(WriterState::default()), idle: Condvar::new() })
    }

    pub fn file(&self) -> &CacheFile {
        &self.file
    }

    /// Queues `endpoints` for writing; never blocks on the file system.
    pub fn store(self: &Arc<Self>, endpoints: Vec<Address>, service_config: Option<String>) {
        let mut state = self.state.lock();
        state.pending = Some((endpoints, service_config, SystemTime::now()));
        if state.running {
            return;
        }
        state.running = true;
        drop(state);
        let this = Arc::clone(self);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(move || this.drain());
            }
            // Outside the runtime (a caller's own thread) the caller is not a worker to keep free.
            Err(_) => this.drain(),
        }
    }

    fn drain(&self) {
        loop {
            let next = {
                let mut state = self.state.lock();
                match state.pending.take() {
                    Some(next) => next,
                    None => {
                        state.running = false;
                        self.idle.notify_all();
                        return;
                    }
                }
            };
            let (endpoints, service_config, written) = next;
            if let Err(e) = self.file.write(&endpoints, service_config.as_deref(), written) {
                tracing::warn!("cache for '{}' not updated: {e}", self.file.source.target);
            }
        }
    }

    /// Waits up to `timeout` for the writes queued so far to end: a process that closes its resolvers
    /// before it exits leaves its last list on disk.
    pub fn flush(&self, timeout: Duration) -> bool {
        let mut state = self.state.lock();
        let deadline = std::time::Instant::now() + timeout;
        while state.running {
            if self.idle.wait_until(&mut state, deadline).timed_out() {
                return !state.running;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    /// A fresh directory under the system's temporary one, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("gnaming-cache-test-{}-{name}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn source(name: &str) -> Source {
        Source { target: format!("etcd:///{name}"), against: "http://127.0.0.1:2379".into() }
    }

    fn list() -> Vec<Address> {
        let mut weighted = Address::backend("127.0.0.1:7001".into(), AddressFamily::Ipv4);
        weighted.weight = 5;
        weighted.metadata = Some(r#"{"version":"v2","weight":5,"zone":"a"}"#.into());
        let mut copy = Address::backend("[::1]:7002".into(), AddressFamily::Ipv6);
        copy.copy_index = 1;
        let mut balancer = Address::backend("lb.test:9000".into(), AddressFamily::Name);
        balancer.kind = AddressKind::Balancer;
        vec![weighted, copy, balancer, Address::backend("unix:/run/echo.sock".into(), AddressFamily::Unix)]
    }

    /// The warnings logged while `f` runs on this thread.
    fn warnings(f: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Capture(Arc<Mutex<Vec<String>>>);
        struct Message<'a>(&'a mut String);
        impl Visit for Message<'_> {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0.push_str(&format!("{value:?}"));
                }
            }
        }
        impl<S: tracing::Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
                if *event.metadata().level() == tracing::Level::WARN {
                    let mut text = String::new();
                    event.record(&mut Message(&mut text));
                    self.0.lock().push(text);
                }
            }
        }
        let capture = Capture::default();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(capture.clone()), f);
        let out = capture.0.lock().clone();
        out
    }

    #[test]
    fn a_written_list_reads_back_with_every_field() {
        let dir = TempDir::new("round-trip");
        let file = CacheFile::new(&dir.0, source("echo"), DEFAULT_MAX_AGE);
        let written = SystemTime::now() - Duration::from_secs(12);
        file.write(&list(), Some(r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#), written).unwrap();
        let cached = file.read(SystemTime::now()).unwrap().expect("the file is there");
        assert_eq!(cached.endpoints, list());
        assert_eq!(cached.service_config.as_deref(), Some(r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#));
        assert_eq!(age_text(cached.age(SystemTime::now())), "12 s");
        assert_eq!(file.read(SystemTime::now()).unwrap().unwrap().written, cached.written);
    }

    #[test]
    fn a_new_list_replaces_the_file_whole_and_leaves_no_temporary_file() {
        let dir = TempDir::new("replace");
        let file = CacheFile::new(&dir.0, source("echo"), DEFAULT_MAX_AGE);
        file.write(&list(), None, SystemTime::now()).unwrap();
        let first = fs::metadata(file.path()).unwrap();
        file.write(&list()[..1], None, SystemTime::now()).unwrap();
        let cached = file.read(SystemTime::now()).unwrap().unwrap();
        assert_eq!(cached.endpoints, list()[..1]);
        let names: Vec<_> = fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [file.path().file_name().unwrap()], "one file, no temporary left");
        // A rename, not a rewrite in place: a reader holding the old file still has the old list.
        use std::os::unix::fs::MetadataExt;
        assert_ne!(fs::metadata(file.path()).unwrap().ino(), first.ino());
    }

    #[test]
    fn the_file_is_0600_in_a_directory_created_0700() {
        let dir = TempDir::new("modes");
        let nested = dir.0.join("a/b");
        let file = CacheFile::new(&nested, source("echo"), DEFAULT_MAX_AGE);
        file.write(&list(), None, SystemTime::now()).unwrap();
        assert_eq!(fs::metadata(file.path()).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&nested).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_missing_file_is_no_cache_and_no_warning() {
        let dir = TempDir::new("missing");
        let file = CacheFile::new(&dir.0, source("echo"), DEFAULT_MAX_AGE);
        assert_eq!(file.read(SystemTime::now()), Ok(None));
        assert!(warnings(|| assert!(file.load(SystemTime::now()).is_none())).is_empty());
    }

    #[test]
    fn unreadable_corrupt_old_other_version_and_other_target_files_are_ignored_with_a_warning() {
        let dir = TempDir::new("ignored");
        let file = CacheFile::new(&dir.0, source("echo"), Duration::from_secs(3600));
        let now = SystemTime::now();
        file.write(&list(), None, now).unwrap();
        let good = fs::read_to_string(file.path()).unwrap();
        let cases = [
            (good[..good.len() / 2].to_string(), "is corrupt"),
            ("\u{0}\u{1}garbage".to_string(), "is corrupt"),
            (good.replace("\"format\":1", "\"format\":2"), "has format version 2, not 1"),
            (good.replace("\"format\":1,", ""), "is corrupt: no format version"),
            (good.replace("etcd:///echo", "etcd:///other"), "was written for another target: 'etcd:///other'"),
            (good.replace("127.0.0.1:2379", "127.0.0.1:2380"), "was written for another target"),
            (good.replace("\"ipv4\"", "\"ipx\""), "unknown family 'ipx'"),
            (good.replace("\"127.0.0.1:7001\"", "\"not-an-ip\""), "is no ipv4 address"),
            (good.replace("\"weight\":5", "\"weight\":0"), "a weight of 1 or more"),
        ];
        for (text, why) in cases {
            fs::write(file.path(), &text).unwrap();
            let err = file.read(now).unwrap_err();
            assert!(err.contains(why), "{text:?}: expected '{why}', got '{err}'");
            let logged = warnings(|| assert!(file.load(now).is_none()));
            assert_eq!(logged.len(), 1, "one warning for {text:?}: {logged:?}");
            assert!(logged[0].contains(why) && logged[0].contains("ignored"), "{logged:?}");
        }
        fs::remove_file(file.path()).unwrap();
        fs::create_dir(file.path()).unwrap();
        let err = file.read(now).unwrap_err();
        assert!(err.starts_with("cannot be read: "), "a directory in the file's place: {err}");
        fs::remove_dir(file.path()).unwrap();
        file.write(&list(), None, now - Duration::from_secs(3601)).unwrap();
        let err = file.read(now).unwrap_err();
        assert_eq!(err, "was written 60 min ago, more than the max age of 60 min");
        file.write(&list(), None, now - Duration::from_secs(3599)).unwrap();
        assert!(file.read(now).unwrap().is_some(), "a list just under the max age is served");
    }

    #[test]
    fn a_directory_that_cannot_be_written_is_a_warning_and_no_panic() {
        let dir = TempDir::new("unwritable");
        fs::create_dir_all(&dir.0).unwrap();
        // A file where the directory should be: creating it fails, for root too.
        let blocked = dir.0.join("not-a-dir");
        fs::write(&blocked, b"").unwrap();
        let file = CacheFile::new(&blocked.join("cache"), source("echo"), DEFAULT_MAX_AGE);
        let writer = Writer::new(file);
        let logged = warnings(|| writer.store(list(), None));
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(logged[0].contains("not updated: cannot create the directory"), "{logged:?}");
        // A directory where the file should be: the rename fails, and the temporary file goes too.
        let file = CacheFile::new(&dir.0, source("echo"), DEFAULT_MAX_AGE);
        fs::create_dir_all(file.path().join("x")).unwrap();
        let err = file.write(&list(), None, SystemTime::now()).unwrap_err();
        assert!(err.starts_with("cannot write"), "{err}");
        let mut names: Vec<_> = fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, [file.path().file_name().unwrap(), blocked.file_name().unwrap()]);
        // Read-only for a user without root's override; root writes through permissions.
        fs::remove_dir_all(file.path()).unwrap();
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o500)).unwrap();
        let probe = OpenOptions::new().write(true).create_new(true).open(dir.0.join("probe"));
        if probe.is_err() {
            assert!(file.write(&list(), None, SystemTime::now()).unwrap_err().starts_with("cannot write"));
        }
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn the_writer_writes_the_latest_list_and_flush_waits_for_it() {
        let dir = TempDir::new("writer");
        let writer = Writer::new(CacheFile::new(&dir.0, source("echo"), DEFAULT_MAX_AGE));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        runtime.block_on(async {
            for n in 1..=20 {
                writer.store(list()[..1 + n % 4].to_vec(), Some(format!("{{\"n\":{n}}}")));
            }
        });
        assert!(writer.flush(FLUSH_TIMEOUT), "the writes did not end in time");
        let cached = writer.file().read(SystemTime::now()).unwrap().unwrap();
        assert_eq!(cached.service_config.as_deref(), Some("{\"n\":20}"), "the last list stored is the one on disk");
        assert_eq!(cached.endpoints, list()[..1]);
    }

    #[test]
    fn sources_name_the_cluster_or_ensemble_and_static_targets_have_none() {
        let dns = crate::dns::DnsOptions::default();
        let members = || Some(vec!["http://127.0.0.1:2".to_string(), "http://127.0.0.1:1".to_string()]);
        let etcd = Source::of(&Target::parse("etcd://prod/echo#2?empty=keep").unwrap(), &dns, members).unwrap();
        assert_eq!(etcd.target, "etcd:///echo#2");
        assert_eq!(etcd.against, "http://127.0.0.1:1,http://127.0.0.1:2");
        let other =
            Source::of(&Target::parse("etcd:///echo#2").unwrap(), &dns, || Some(vec!["http://10.0.0.1:1".into()]));
        assert_ne!(etcd.file_name(), other.unwrap().file_name(), "two clusters never share a file");
        let same = Source::of(&Target::parse("etcd:///echo#2").unwrap(), &dns, members).unwrap();
        assert_eq!(etcd.file_name(), same.file_name());
        assert_eq!(
            etcd.file_name(),
            "etcd-".to_string()
                + &format!("{:032x}", fnv1a_128(b"etcd:///echo#2\nhttp://127.0.0.1:1,http://127.0.0.1:2"))
                + ".json"
        );
        let dns_source =
            Source::of(&Target::parse("dns://127.0.0.1:53/echo.test:50051").unwrap(), &dns, || None).unwrap();
        assert_eq!(
            (dns_source.target.as_str(), dns_source.against.as_str()),
            ("dns:///echo.test:50051", "nameserver 127.0.0.1:53")
        );
        let zk = |t: &str| Source::of(&Target::parse(t).unwrap(), &dns, || None).unwrap();
        let zk_source = zk("zk://127.0.0.2:2,127.0.0.1:1/services/echo#2?empty=keep");
        assert_eq!(
            (zk_source.target.as_str(), zk_source.against.as_str()),
            ("zk:///services/echo#2", "servers 127.0.0.1:1,127.0.0.2:2")
        );
        assert_eq!(zk_source.file_name(), zk("zk://127.0.0.1:1,127.0.0.2:2/services/echo#2").file_name());
        crate::zk::ensemble::register(
            "cache-unit",
            crate::zk::ensemble::EnsembleConfig {
                servers: "127.0.0.1:1/apps".into(),
                digest: Some(("svc".into(), "secret".into())),
                node_acl: Default::default(),
            },
        )
        .unwrap();
        assert_eq!(zk("zk://cache-unit/echo").against, "servers 127.0.0.1:1, chroot /apps, digest user svc");
        assert_ne!(zk("zk://cache-unit/echo").file_name(), zk("zk://127.0.0.1:1/echo").file_name());
        assert_eq!(Source::of(&Target::parse("zk://cache-unknown/echo").unwrap(), &dns, || None), None);
        for t in ["pass:///127.0.0.1:1", "ipv4:127.0.0.1:1", "unix:/x", "passthrough:///x", "dns:///127.0.0.1:1"] {
            assert_eq!(Source::of(&Target::parse(t).unwrap(), &dns, || None), None, "{t}");
        }
        // The digest is FNV-1a: a fixed function of the identity, the same in every build.
        assert_eq!(fnv1a_128(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
    }
}
