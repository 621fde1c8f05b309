//! etcd clusters: their configuration by name, and one shared connection set per distinct cluster,
//! with a client per member so that a failed call moves on to the next member.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, KvClient, TlsOptions, WatchClient};
use parking_lot::Mutex;
use tonic::Code;

use super::stats::{Gauge, STATS};
use crate::error::{Error, ErrorKind};
use crate::target::ClusterRef;

/// Endpoints when neither the host nor `GNAMING_ETCD_ENDPOINTS` names any.
pub const DEFAULT_ENDPOINT: &str = "127.0.0.1:2379";
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// HTTP/2 pings notice a hung member (SIGSTOP) that TCP alone would hide.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest response a prefix read accepts. etcd takes no request above its
/// `--max-request-bytes` (1.5 MiB by default; etcd warns when it is set above 10 MiB), so no value
/// and no watch fragment is larger than that, while whole lists are: they are read in pages (see
/// `watcher`). This bounds the memory one response takes, not the size of a prefix.
pub const RECEIVE_LIMIT: usize = 16 << 20;

/// TLS material, read from files when configured so a bad path fails at once.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub ca_pem: Vec<u8>,
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// How to reach one cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `host:port`, `http://host:port` or `https://host:port`.
    pub endpoints: Vec<String>,
    pub dial_timeout: Duration,
    pub request_timeout: Duration,
    pub tls: Option<TlsConfig>,
    /// User and password.
    pub auth: Option<(String, String)>,
}

// Written by hand so key material and passwords never reach a log line.
impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("endpoints", &self.endpoints)
            .field("dial_timeout", &self.dial_timeout)
            .field("request_timeout", &self.request_timeout)
            .field(
                "tls",
                &self.tls.as_ref().map(|t| if t.identity.is_some() { "client certificate" } else { "server only" }),
            )
            .field("user", &self.auth.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            endpoints: vec![DEFAULT_ENDPOINT.to_string()],
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            tls: None,
            auth: None,
        }
    }
}

impl ClusterConfig {
    /// Parses "a:1,b:2" (optionally with http:// or https://), rejecting empty items and paths.
    pub fn parse_endpoints(csv: &str) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for item in csv.split(',').map(str::trim) {
            let bare = item.strip_prefix("http://").or_else(|| item.strip_prefix("https://")).unwrap_or(item);
            let bare = bare.strip_suffix('/').unwrap_or(bare);
            let valid = !bare.is_empty()
                && !bare.contains(['/', ' ', '#', '?'])
                && bare.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !valid {
                return Err(Error::invalid_argument(format!("etcd endpoint '{item}' is not host:port")));
            }
            out.push(item.strip_suffix('/').unwrap_or(item).to_string());
        }
        Ok(out)
    }

    /// The default cluster from the environment.
    fn from_env() -> Self {
        let mut config = ClusterConfig::default();
        if let Some(csv) = std::env::var("GNAMING_ETCD_ENDPOINTS").ok().filter(|v| !v.trim().is_empty()) {
            match Self::parse_endpoints(&csv) {
                Ok(endpoints) => config.endpoints = endpoints,
                Err(e) => tracing::warn!("GNAMING_ETCD_ENDPOINTS ignored: {e}; using {DEFAULT_ENDPOINT}"),
            }
        }
        config
    }

    fn url(&self, endpoint: &str) -> String {
        let bare = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://")).unwrap_or(endpoint);
        if self.tls.is_some() || endpoint.starts_with("https://") {
            format!("https://{bare}")
        } else {
            format!("http://{bare}")
        }
    }

    fn connect_options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new()
            .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true)
            .with_require_leader(true)
            .with_connect_timeout(self.dial_timeout);
        if let Some(tls) = &self.tls {
            let mut t = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
            if let Some((cert, key)) = &tls.identity {
                t = t.identity(Identity::from_pem(cert, key));
            }
            options = options.with_tls(t);
        }
        if let Some((user, password)) = &self.auth {
            options = options.with_user(user, password).with_auto_token_refresh(true);
        }
        options
    }
}

/// Configured clusters by name; "" is the default cluster.
static CONFIGS: Mutex<Option<HashMap<String, Arc<ClusterConfig>>>> = Mutex::new(None);
/// Live connection sets, keyed like `CONFIGS` ("@host:port" for single-endpoint authorities).
static CLUSTERS: Mutex<Option<HashMap<String, Weak<Cluster>>>> = Mutex::new(None);

/// Configures (or replaces, for users that connect from now on) the cluster called `name`.
pub fn register(name: &str, config: ClusterConfig) -> Result<(), Error> {
    if name.contains(['/', '@']) {
        return Err(Error::invalid_argument(format!("cluster name '{name}' must not contain '/' or '@'")));
    }
    if config.endpoints.is_empty() {
        return Err(Error::invalid_argument(format!("cluster '{name}' has no endpoints")));
    }
    CONFIGS.lock().get_or_insert_with(HashMap::new).insert(name.to_string(), Arc::new(config));
    Ok(())
}

fn config_for(cluster: &ClusterRef) -> Result<(String, Arc<ClusterConfig>), Error> {
    let mut configs = CONFIGS.lock();
    let configs = configs.get_or_insert_with(HashMap::new);
    match cluster {
        ClusterRef::Default => {
            let config = configs.entry(String::new()).or_insert_with(|| Arc::new(ClusterConfig::from_env()));
            Ok((String::new(), Arc::clone(config)))
        }
        ClusterRef::Named(name) => match configs.get(name) {
            Some(config) => Ok((name.clone(), Arc::clone(config))),
            None => Err(Error::new(
                ErrorKind::NotFound,
                format!("no etcd cluster named '{name}' is configured (see gn_cluster_register)"),
            )),
        },
        ClusterRef::Endpoint(hostport) => {
            let key = format!("@{hostport}");
            // A bare endpoint gets the default cluster's timeouts and credentials, so one TLS or
            // auth setup serves `etcd://host:port/...` targets too.
            let base = configs.get("").map(|c| (**c).clone()).unwrap_or_default();
            let config = configs
                .entry(key.clone())
                .or_insert_with(|| Arc::new(ClusterConfig { endpoints: vec![hostport.clone()], ..base }));
            Ok((key, Arc::clone(config)))
        }
    }
}

/// The shared connection set for a target's cluster.
pub fn for_ref(cluster: &ClusterRef) -> Result<Arc<Cluster>, Error> {
    let (key, config) = config_for(cluster)?;
    let mut clusters = CLUSTERS.lock();
    let clusters = clusters.get_or_insert_with(HashMap::new);
    if let Some(existing) = clusters.get(&key).and_then(Weak::upgrade) {
        if Arc::ptr_eq(&existing.config, &config) {
            return Ok(existing);
        }
    }
    let cluster = Arc::new(Cluster::new(config));
    clusters.retain(|_, w| w.strong_count() > 0);
    clusters.insert(key, Arc::downgrade(&cluster));
    Ok(cluster)
}

/// A registration's cluster option: "" is the default, a configured name, else "host:port".
pub fn for_name(name: &str) -> Result<Arc<Cluster>, Error> {
    let known = name.is_empty() || CONFIGS.lock().as_ref().is_some_and(|c| c.contains_key(name));
    let cluster = if name.is_empty() {
        ClusterRef::Default
    } else if known || !name.contains(':') {
        ClusterRef::Named(name.to_string())
    } else {
        let endpoints = ClusterConfig::parse_endpoints(name)?;
        ClusterRef::Endpoint(endpoints[0].clone())
    };
    for_ref(&cluster)
}

struct Member {
    url: String,
    client: tokio::sync::Mutex<Option<Client>>,
}

/// One cluster's connections: a lazily connected client per member, and the member that answered
/// last, tried first.
pub struct Cluster {
    config: Arc<ClusterConfig>,
    members: Vec<Member>,
    preferred: AtomicUsize,
    /// Bounds the registration writes in flight: thousands of registrations starting at once would
    /// otherwise all time out together, retry together, and never get through.
    pub(crate) registration_writes: tokio::sync::Semaphore,
    _connected: Gauge,
}

/// Registration writes one cluster handles at once; the rest wait their turn.
const REGISTRATION_WRITES: usize = 64;

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster").field("config", &self.config).finish()
    }
}

impl Cluster {
    fn new(config: Arc<ClusterConfig>) -> Self {
        let members = config
            .endpoints
            .iter()
            .map(|e| Member { url: config.url(e), client: tokio::sync::Mutex::new(None) })
            .collect();
        Cluster {
            config,
            members,
            preferred: AtomicUsize::new(0),
            registration_writes: tokio::sync::Semaphore::new(REGISTRATION_WRITES),
            _connected: Gauge::up(&STATS.clusters_connected),
        }
    }

    pub fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// The member to try first.
    pub fn preferred(&self) -> usize {
        self.preferred.load(Ordering::Relaxed) % self.members.len()
    }

    pub fn next_member(&self, member: usize) -> usize {
        (member + 1) % self.members.len()
    }

    pub fn member_url(&self, member: usize) -> &str {
        &self.members[member].url
    }

    /// The client for one member, connecting (and authenticating) on first use.
    pub async fn client(&self, member: usize) -> Result<Client, Error> {
        let m = &self.members[member];
        let mut slot = m.client.lock().await;
        if let Some(client) = &*slot {
            return Ok(client.clone());
        }
        let connect = Client::connect([m.url.as_str()], Some(self.config.connect_options()));
        let client = match tokio::time::timeout(self.config.dial_timeout, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(describe(&format!("cannot connect to etcd at {}", m.url), &e)),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot connect to etcd at {}: no answer in {:?}", m.url, self.config.dial_timeout),
                ))
            }
        };
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Drops a member's client after a failure, so the next use dials afresh (a member that
    /// restarted or came back from a hang gets a clean connection).
    pub fn forget(&self, member: usize) {
        if let Ok(mut slot) = self.members[member].client.try_lock() {
            *slot = None;
        }
    }

    /// Runs a unary call with the request timeout, on the preferred member and then on each other
    /// member in turn while the failure is one another member may not have.
    pub async fn call<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, Error>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let start = self.preferred();
        let mut last = None;
        for attempt in 0..self.members.len() {
            let member = (start + attempt) % self.members.len();
            let result = tokio::time::timeout(self.config.request_timeout, async {
                let client = self.client(member).await?;
                op(client).await.map_err(|e| describe(&format!("etcd {what} at {}", self.members[member].url), &e))
            })
            .await;
            match result {
                Ok(Ok(value)) => {
                    self.preferred.store(member, Ordering::Relaxed);
                    return Ok(value);
                }
                Ok(Err(e)) if e.kind() != ErrorKind::Unavailable => return Err(e),
                Ok(Err(e)) => last = Some(e),
                Err(_) => {
                    last = Some(Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "etcd {what} at {}: no answer in {:?}",
                            self.members[member].url, self.config.request_timeout
                        ),
                    ))
                }
            }
            self.forget(member);
        }
        Err(last.unwrap_or_else(|| Error::new(ErrorKind::Unavailable, "etcd cluster has no members")))
    }
}

/// `client`'s KV service with the receive limit of prefix reads (the default 4 MiB is below what a
/// page of large values may need).
pub fn kv_client(client: &Client) -> KvClient {
    client.kv_client().max_decoding_message_size(RECEIVE_LIMIT)
}

/// `client`'s watch service with the receive limit of prefix reads.
pub fn watch_client(client: &Client) -> WatchClient {
    client.watch_client().max_decoding_message_size(RECEIVE_LIMIT)
}

/// An etcd-client error as ours: credentials problems, missing things and bad requests keep their
/// meaning; everything else is "unavailable", which is worth retrying elsewhere.
pub fn describe(context: &str, error: &etcd_client::Error) -> Error {
    let kind = match error {
        etcd_client::Error::GRpcStatus(status) => match status.code() {
            Code::PermissionDenied | Code::Unauthenticated => ErrorKind::PermissionDenied,
            // etcd answers a wrong user or password with InvalidArgument.
            Code::InvalidArgument if status.message().contains("authentication failed") => ErrorKind::PermissionDenied,
            Code::NotFound => ErrorKind::NotFound,
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => ErrorKind::InvalidArgument,
            _ => ErrorKind::Unavailable,
        },
        etcd_client::Error::InvalidArgs(_) | etcd_client::Error::InvalidUri(_) => ErrorKind::InvalidArgument,
        _ => ErrorKind::Unavailable,
    };
    let detail = match error {
        etcd_client::Error::GRpcStatus(status) => status.message().to_string(),
        other => other.to_string(),
    };
    Error::new(kind, format!("{context}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_accept_schemes_and_reject_garbage() {
        assert_eq!(
            ClusterConfig::parse_endpoints("127.0.0.1:2379, https://[::1]:2379/").unwrap(),
            vec!["127.0.0.1:2379", "https://[::1]:2379"]
        );
        for bad in ["", "a", "a:", "a:0", "a:99999", "http://a:1/x", "a:1,,b:2"] {
            assert!(ClusterConfig::parse_endpoints(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn debug_output_hides_the_password() {
        let config = ClusterConfig { auth: Some(("alice".into(), "s3cret".into())), ..Default::default() };
        let text = format!("{config:?}");
        assert!(text.contains("alice") && !text.contains("s3cret"), "{text}");
    }

    #[test]
    fn unknown_cluster_names_are_not_found() {
        let e = for_ref(&ClusterRef::Named("never-configured".into())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
