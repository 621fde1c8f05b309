//! Registration in ZooKeeper: one ephemeral node per registered address, in Curator's ServiceDiscovery
//! layout (`<service node>/<instance id>` holding Curator's instance JSON), put back on every new
//! session after expiry and deleted at close.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::task::AbortHandle;
use zookeeper_client::{Client, CreateMode, EventType, OneshotWatcher, SessionInfo, SessionState};

use super::ensemble::EnsembleConfig;
use crate::error::{Error, ErrorKind};
use crate::etcd::backoff::Backoff;
use crate::etcd::registration::{RegistrationOptions, RegistrationState, StateCell, DEFAULT_CLOSE_TIMEOUT, MIN_TTL};
use crate::etcd::stats::{bump, Gauge, STATS};
use crate::etcd::value::{self, ValueFormat};
use crate::runtime::{self, Closable};
use crate::target::{Target, ZkTarget};

const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(1);
/// Check, replace, create and check again: enough to place the node unless someone keeps changing it.
const PLACE_ATTEMPTS: usize = 4;

/// Whether `service` names a ZooKeeper service (`zk://...`) rather than an etcd prefix.
pub fn is_zk_service(service: &str) -> bool {
    service.split_once(':').is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("zk"))
}

/// A registered address in ZooKeeper. Dropping it closes it.
pub struct Registration {
    core: Arc<Core>,
}

struct Core {
    ensemble: Arc<EnsembleConfig>,
    /// `<service node>/<instance id>`.
    path: String,
    data: Vec<u8>,
    session_timeout: Duration,
    state: StateCell,
    task: Mutex<Option<AbortHandle>>,
    /// The current session's client, which a close deletes the node with.
    client: Mutex<Option<Client>>,
    /// Serialises closers: the second waits for the first and then finds the registration closed.
    closing: Mutex<()>,
    /// When the drain period after the deletion ends, so that a second drain waits as long.
    drain_end: Mutex<Option<Instant>>,
    pid: u32,
    _active: Gauge,
}

impl Registration {
    /// Starts registering `address` under the service node `service` names (`zk://host:port,.../path`,
    /// `zk://NAME/path` on a configured ensemble, or `zk:///path` on the default one) and returns at
    /// once; see [`Registration::wait`]. The node's ACL is the ensemble's.
    /// The options' TTL is the session timeout asked of the ensemble; `raw_value` writes a bare
    /// `host:port` instead of Curator's JSON; the cluster option is etcd's and must be empty.
    pub fn start(service: &str, address: &str, options: &RegistrationOptions) -> Result<Self, Error> {
        let target = service_target(service)?;
        value::validate_address(address).map_err(Error::invalid_argument)?;
        if !options.cluster.is_empty() {
            return Err(Error::invalid_argument(format!(
                "cluster '{}' names an etcd cluster; a zk:// service names its ZooKeeper ensemble itself \
                 (zk://NAME/path)",
                options.cluster
            )));
        }
        if options.format != ValueFormat::Etcd {
            return Err(Error::invalid_argument(
                "the Kratos and go-micro formats are etcd's; a zk:// service writes Curator's JSON",
            ));
        }
        if options.ttl < MIN_TTL {
            return Err(Error::invalid_argument(format!("TTL {:?} is below the minimum {MIN_TTL:?}", options.ttl)));
        }
        let home = runtime::home()?;
        let ensemble = super::ensemble::for_ref(&target.ensemble)?;
        let id = instance_id();
        let data = if options.raw_value {
            address.to_string()
        } else {
            let name = target.path.rsplit('/').next().unwrap_or_default();
            curator_instance(name, &id, address, options.metadata.as_ref(), unix_ms())
        };
        let core = Arc::new(Core {
            ensemble,
            path: format!("{}/{id}", target.path),
            data: data.into_bytes(),
            session_timeout: options.ttl,
            state: StateCell::new(options.warmup),
            task: Mutex::new(None),
            client: Mutex::new(None),
            closing: Mutex::new(()),
            drain_end: Mutex::new(None),
            pid: std::process::id(),
            _active: Gauge::up(&STATS.registrations_active),
        });
        // As in etcd's registration: a shutdown that closes this one as soon as it is tracked waits
        // until its task is spawned, and finds it whole.
        let serial = core.closing.lock();
        runtime::track(&core, &home)?;
        let task = home.handle.spawn(run(Arc::clone(&core), options.warmup));
        *core.task.lock() = Some(task.abort_handle());
        drop(serial);
        Ok(Registration { core })
    }

    /// The node this registration writes: `<service node>/<instance id>`.
    pub fn path(&self) -> &str {
        &self.core.path
    }

    pub fn state(&self) -> RegistrationState {
        self.core.state.get()
    }

    /// The current session, for tests that expire it as ZooKeeper does.
    #[doc(hidden)]
    pub fn session(&self) -> Option<SessionInfo> {
        self.core.client.lock().as_ref().map(|c| c.session().clone())
    }

    /// Waits until registered (`Ok`), closed (`Closed`) or `timeout` passes (`Timeout`; `None`
    /// waits without limit).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<(), Error> {
        self.core.state.wait(timeout, &self.core.path)
    }

    /// Deletes the node and closes the session, waiting up to `timeout` for ZooKeeper to confirm the
    /// deletion. Idempotent and thread-safe; the state is `Closed` afterwards.
    pub fn close(&self, timeout: Duration) -> Result<(), Error> {
        self.core.remove(timeout, Duration::ZERO)
    }

    /// Closes as [`Registration::close`] does, then waits `drain` from ZooKeeper's confirmation (or
    /// from `timeout`) so that clients stop picking the address while the server still answers.
    /// Blocks: refused inside a callback or on a runtime thread.
    pub fn drain(&self, drain: Duration, timeout: Duration) -> Result<(), Error> {
        if runtime::in_callback() || tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::new(
                ErrorKind::BadState,
                "a drain waits for clients and cannot run inside a callback or on a library thread; close instead",
            ));
        }
        let removed = self.core.remove(timeout, drain);
        let end = *self.core.drain_end.lock();
        if let Some(end) = end {
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
        }
        removed
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Err(e) = self.core.remove(DEFAULT_CLOSE_TIMEOUT, Duration::ZERO) {
            tracing::warn!("closing the registration of '{}': {e}", self.core.path);
        }
    }
}

impl Closable for Core {
    fn close(&self) {
        if let Err(e) = self.remove(DEFAULT_CLOSE_TIMEOUT, Duration::ZERO) {
            tracing::warn!("closing the registration of '{}': {e}", self.path);
        }
    }
}

impl Core {
    fn set_state(&self, new: RegistrationState) {
        self.state.set(new)
    }

    /// The node may be gone or unreachable: `Retrying` once it had been registered.
    fn lost(&self) {
        let registered_before = matches!(self.state.get(), RegistrationState::Registered | RegistrationState::Retrying);
        if registered_before {
            self.set_state(RegistrationState::Retrying);
        }
    }

    /// Keeps `client` as the current session's, unless the registration is closed (then `false`).
    /// Under the state's lock, so that a close either finds the client or stops this task first.
    fn adopt(&self, client: &Client) -> bool {
        let state = self.state.lock();
        if *state == RegistrationState::Closed {
            return false;
        }
        *self.client.lock() = Some(client.clone());
        true
    }

    /// Closes: stops the task, deletes the node with the current session's client and closes that
    /// session (which would take the node along anyway), waiting up to `timeout` for the deletion.
    fn remove(&self, timeout: Duration, drain: Duration) -> Result<(), Error> {
        let _serial = self.closing.lock();
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        self.set_state(RegistrationState::Closed);
        let Some(client) = self.client.lock().take() else { return Ok(()) };
        if !runtime::is_own(self.pid) {
            // Inherited through fork: the session and its node belong to the parent.
            runtime::abandon(Box::new(client));
            return Ok(());
        }
        let path = self.path.clone();
        let work = async move {
            let deleted = match client.delete(&path, None).await {
                Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
                Err(e) => Err(zk_error(&format!("deleting '{path}'"), e)),
            };
            // The last clone (the task's went with it): the session closes.
            drop(client);
            deleted
        };
        if runtime::in_callback() || tokio::runtime::Handle::try_current().is_ok() {
            // Waiting here could hold up the very thread ZooKeeper's answer needs.
            runtime::handle()?.spawn(work);
            return Ok(());
        }
        let removed = runtime::run_and_wait(work, timeout)
            .map_err(|e| match e.kind() {
                ErrorKind::Timeout => Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "ZooKeeper did not confirm the removal of '{}' in {timeout:?}; it goes when the session does",
                        self.path
                    ),
                ),
                _ => e,
            })
            .and_then(|r| r);
        *self.drain_end.lock() = Some(Instant::now() + drain);
        removed
    }
}

/// The service node of a `zk://` service string; no query, no `#N`.
fn service_target(service: &str) -> Result<ZkTarget, Error> {
    if service.contains(['?', '#']) {
        return Err(Error::invalid_argument(format!(
            "service '{service}': a zk:// service is servers and a node path, without '?' or '#'"
        )));
    }
    match Target::parse(service) {
        Ok(Target::Zk(target)) => Ok(target),
        Ok(_) => Err(Error::invalid_argument(format!("service '{service}' is not a zk:// service"))),
        Err(e) => Err(Error::invalid_argument(format!("service: {}", e.message()))),
    }
}

/// Registers on one session after another until closed.
async fn run(core: Arc<Core>, warmup: Duration) {
    if !warmup.is_zero() {
        tokio::time::sleep(warmup).await;
        core.set_state(RegistrationState::Registering);
    }
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
    loop {
        let connected = core.ensemble.connect(core.session_timeout).await;
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                let pause = backoff.next();
                tracing::warn!(
                    "registering '{}': ZooKeeper {}: {e}; retrying in {pause:?}",
                    core.path,
                    core.ensemble.servers
                );
                core.lost();
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        if !core.adopt(&client) {
            return;
        }
        let why = hold(&core, &client, &mut backoff).await;
        tracing::warn!("registration '{}': {why}; starting a new session", core.path);
        core.lost();
        *core.client.lock() = None;
        drop(client);
        tokio::time::sleep(backoff.next()).await;
    }
}

/// Keeps the node on one session; returns why the session ended.
async fn hold(core: &Core, client: &Client, backoff: &mut Backoff) -> String {
    let mut states = client.state_watcher();
    states.state();
    let mut registered_before = false;
    loop {
        let placed = {
            let place = place(core, client);
            tokio::pin!(place);
            loop {
                tokio::select! {
                    placed = &mut place => break placed,
                    state = states.changed() => match state {
                        SessionState::Disconnected => core.lost(),
                        SessionState::SyncConnected | SessionState::ConnectedReadOnly => {}
                        state => return format!("session {state}"),
                    },
                }
            }
        };
        let watcher = match placed {
            Ok(watcher) => watcher,
            Err(e @ (zookeeper_client::Error::SessionExpired | zookeeper_client::Error::ClientClosed)) => {
                return format!("node not placed: {e}");
            }
            Err(e) => {
                // A lost connection is followed by a session event; other errors are retried.
                let pause = backoff.next();
                tracing::warn!("registering '{}': {}; retrying in {pause:?}", core.path, super::describe(&e));
                if let Some(end) = settle(core, &mut states, pause).await {
                    return end;
                }
                continue;
            }
        };
        if registered_before || core.state.get() == RegistrationState::Retrying {
            bump(&STATS.reregistrations);
            tracing::info!("'{}' registered again", core.path);
        }
        registered_before = true;
        backoff.reset();
        core.set_state(RegistrationState::Registered);
        let node = watcher.changed();
        tokio::pin!(node);
        loop {
            tokio::select! {
                event = &mut node => {
                    if event.event_type == EventType::NodeDeleted {
                        tracing::warn!("'{}' was deleted from ZooKeeper by someone else; putting it back", core.path);
                    }
                    // Any event: check the node again (a session's end shows in that check too).
                    break;
                }
                state = states.changed() => match state {
                    SessionState::Disconnected => core.lost(),
                    // Back on the same session: check that the node is still there.
                    SessionState::SyncConnected | SessionState::ConnectedReadOnly => break,
                    state => return format!("session {state}"),
                },
            }
        }
    }
}

/// Waits `pause`, following session events meanwhile; `Some` when the session ended.
async fn settle(core: &Core, states: &mut zookeeper_client::StateWatcher, pause: Duration) -> Option<String> {
    let sleep = tokio::time::sleep(pause);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return None,
            state = states.changed() => match state {
                SessionState::Disconnected => core.lost(),
                SessionState::SyncConnected | SessionState::ConnectedReadOnly => {}
                state => return Some(format!("session {state}")),
            },
        }
    }
}

/// Makes the node exist as this session's, with a watch on it. A node at the path owned by another
/// session is an earlier session's of ours that ZooKeeper has not removed yet (an expired session's
/// nodes go only once the ensemble has processed the expiry): it is deleted and created again, since it
/// would vanish with that session.
async fn place(core: &Core, client: &Client) -> Result<OneshotWatcher, zookeeper_client::Error> {
    let acls = core.ensemble.node_acl.acls();
    let ephemeral = CreateMode::Ephemeral.with_acls(acls);
    for _ in 0..PLACE_ATTEMPTS {
        let (stat, watcher) = client.check_and_watch_stat(&core.path).await?;
        match stat {
            Some(stat) if stat.ephemeral_owner == client.session_id().0 => return Ok(watcher),
            Some(stat) => {
                tracing::warn!(
                    "'{}' is held by session {:x}, not this one ({}): replacing it",
                    core.path,
                    stat.ephemeral_owner,
                    client.session_id()
                );
                match client.delete(&core.path, Some(stat.version)).await {
                    Ok(()) | Err(zookeeper_client::Error::NoNode | zookeeper_client::Error::BadVersion) => {}
                    Err(e) => return Err(e),
                }
            }
            None => {}
        }
        match client.create(&core.path, &core.data, &ephemeral).await {
            // Also a node that came meanwhile: the next check tells whose it is.
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(zookeeper_client::Error::NoNode) => {
                let parent = &core.path[..core.path.rfind('/').unwrap_or(0)];
                client.mkdir(parent, &CreateMode::Persistent.with_acls(acls)).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(zookeeper_client::Error::UnexpectedError(format!(
        "'{}' changed under every one of {PLACE_ATTEMPTS} attempts",
        core.path
    )))
}

fn zk_error(what: &str, e: zookeeper_client::Error) -> Error {
    let kind = match e {
        zookeeper_client::Error::NoAuth | zookeeper_client::Error::AuthFailed => ErrorKind::PermissionDenied,
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, format!("ZooKeeper: {what}: {e}"))
}

/// A random (version 4) UUID, as Curator names its instances.
fn instance_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("{}-{}-{}-{}-{}", hex(0..4), hex(4..6), hex(6..8), hex(8..10), hex(10..16))
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Curator's `ServiceInstance` JSON, in the order Curator writes its fields; `address` is a validated
/// `host:port` (IPv6 in brackets, which Curator's `address` goes without).
fn curator_instance(
    name: &str,
    id: &str,
    address: &str,
    payload: Option<&serde_json::Value>,
    registered_ms: u64,
) -> String {
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "0"));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let text = |s: &str| serde_json::Value::from(s).to_string();
    let payload = payload.map_or("null".to_string(), |p| p.to_string());
    format!(
        r#"{{"name":{},"id":{},"address":{},"port":{port},"sslPort":null,"payload":{payload},"registrationTimeUTC":{registered_ms},"serviceType":"DYNAMIC"}}"#,
        text(name),
        text(id),
        text(host)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::value::Entry;
    use crate::update::AddressFamily;

    #[test]
    fn the_curator_instance_written_is_read_back_by_the_zk_resolver() {
        let payload = serde_json::json!({"zone": "a", "weight": 3});
        let data = curator_instance("echo", "7c1a", "10.0.0.1:9000", Some(&payload), 1_700_000_000_000);
        let doc: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"name": "echo", "id": "7c1a", "address": "10.0.0.1", "port": 9000, "sslPort": null,
                "payload": {"zone": "a", "weight": 3}, "registrationTimeUTC": 1_700_000_000_000u64,
                "serviceType": "DYNAMIC"})
        );
        match super::super::node::parse(data.as_bytes()) {
            Ok(Entry::Add(e)) => {
                assert_eq!((e.address.as_str(), e.weight), ("10.0.0.1:9000", 3));
                assert_eq!(e.metadata.as_deref(), Some(r#"{"weight":3,"zone":"a"}"#));
            }
            other => panic!("{data}: {other:?}"),
        }
        let v6 = curator_instance("echo", "x", "[::1]:7", None, 0);
        match super::super::node::parse(v6.as_bytes()) {
            Ok(Entry::Add(e)) => {
                assert_eq!((e.address.as_str(), e.family, e.metadata), ("[::1]:7", AddressFamily::Ipv6, None))
            }
            other => panic!("{v6}: {other:?}"),
        }
    }

    #[test]
    fn instance_ids_are_distinct_version_4_uuids() {
        let (a, b) = (instance_id(), instance_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4', "{a}");
    }

    #[test]
    fn only_zk_services_go_to_zookeeper_and_bad_ones_are_refused_naming_the_part() {
        assert!(is_zk_service("zk:///services/echo") && is_zk_service("ZK://127.0.0.1:2181/echo"));
        assert!(!is_zk_service("echo") && !is_zk_service("services/echo"));
        let refused = |service: &str, part: &str| {
            let e = service_target(service).map(|_| ()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{service}");
            assert!(e.message().contains(part), "{service}: {}", e.message());
        };
        refused("zk:///echo#2", "without '?' or '#'");
        refused("zk:///echo?select.zone=a", "without '?' or '#'");
        refused("zk://prod,zk2:2181/echo", "needs a port");
        assert!(service_target("zk://prod/echo").is_ok(), "a named ensemble");
        refused("zk://127.0.0.1:2181", "the node path is empty");
    }
}
