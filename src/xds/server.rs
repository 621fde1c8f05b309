//! The xDS server's life: where it listens (loopback or a private unix socket unless told otherwise),
//! the bootstrap that points gRPC clients at it, stopping it, and the process-wide default server.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::names;
use super::registry::Registry;
use super::stream::{self, StreamContext};
use crate::error::{Error, ErrorKind};
use crate::etcd::stats::{Gauge, STATS};
use crate::resolver::ResolverOptions;
use crate::runtime::{self, Closable};

/// The environment variable gRPC reads an inline bootstrap from.
pub const BOOTSTRAP_CONFIG_ENV: &str = "GRPC_XDS_BOOTSTRAP_CONFIG";
/// The environment variable gRPC reads a bootstrap file name from.
pub const BOOTSTRAP_FILE_ENV: &str = "GRPC_XDS_BOOTSTRAP";

/// How long `close` waits for the server's connections to end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How to run an xDS server.
#[derive(Debug, Clone)]
pub struct XdsOptions {
    /// `IP:PORT` or `localhost:PORT` (port 0: any free one), `unix:/path`, or `unix:` for a socket in
    /// a new private directory.
    pub listen: String,
    /// Whether a listen address other than loopback is allowed (off: refused).
    pub allow_non_loopback: bool,
    /// The scheme of bare listener names (`xds:///echo` → `<scheme>:///echo`).
    pub default_scheme: String,
    /// Answer only clients whose node id is this server's.
    pub check_node_id: bool,
    /// For the resolvers the server starts.
    pub resolver: ResolverOptions,
}

impl Default for XdsOptions {
    fn default() -> Self {
        XdsOptions {
            listen: "127.0.0.1:0".into(),
            allow_non_loopback: false,
            default_scheme: names::DEFAULT_SCHEME.into(),
            check_node_id: false,
            resolver: ResolverOptions { client_language: "xds".into(), ..Default::default() },
        }
    }
}

/// Where a server listens, checked.
enum Listen {
    Tcp(SocketAddr),
    Unix { path: PathBuf, private_dir: Option<PathBuf> },
}

fn parse_listen(text: &str, allow_non_loopback: bool) -> Result<Listen, Error> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Ok(Listen::Unix { path: PathBuf::new(), private_dir: None });
        }
        let path = PathBuf::from(path.strip_prefix("//").unwrap_or(path));
        if !path.is_absolute() {
            return Err(Error::invalid_argument(format!("xds: the unix socket path must be absolute: '{text}'")));
        }
        return Ok(Listen::Unix { path, private_dir: None });
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| Error::invalid_argument(format!("xds: listen address '{text}' is not IP:PORT or unix:PATH")))?;
    let port: u16 =
        port.parse().map_err(|_| Error::invalid_argument(format!("xds: bad port in listen address '{text}'")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().map_err(|_| {
            Error::invalid_argument(format!("xds: listen host '{host}' must be an IP address or localhost"))
        })?
    };
    if !ip.is_loopback() && !allow_non_loopback {
        return Err(Error::invalid_argument(format!(
            "xds: refusing to listen on non-loopback address {ip}: the server answers anyone who connects; allow it explicitly"
        )));
    }
    Ok(Listen::Tcp(SocketAddr::new(ip, port)))
}

/// Checks a listen address as [`XdsServer::start`] will.
pub fn check_listen(text: &str, allow_non_loopback: bool) -> Result<(), Error> {
    parse_listen(text, allow_non_loopback).map(drop)
}

/// A running xDS server; clones share it. Dropping the last clone does not stop it: `close` does.
#[derive(Clone)]
pub struct XdsServer {
    shared: Arc<Shared>,
}

struct Shared {
    address: String,
    node_id: String,
    bootstrap: String,
    default_scheme: String,
    registry: Arc<Registry>,
    ctx: Arc<StreamContext>,
    stop: watch::Sender<bool>,
    done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    socket: Option<PathBuf>,
    private_dir: Option<PathBuf>,
    pid: u32,
    /// Counts this server in `xds_servers_active` until it is closed.
    active: Mutex<Option<Gauge>>,
}

struct Ads {
    ctx: Arc<StreamContext>,
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for Ads {
    type StreamAggregatedResourcesStream = ReceiverStream<Result<DiscoveryResponse, Status>>;
    type DeltaAggregatedResourcesStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let peer = request.remote_addr().map_or_else(|| "unix socket".to_string(), |a| a.to_string());
        // Two responses in flight at most: a slow client holds back its own stream, nothing more.
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(stream::run(Arc::clone(&self.ctx), request.into_inner(), tx, peer));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Err(Status::unimplemented("xds: only state-of-the-world ADS is served"))
    }
}

impl XdsServer {
    /// Starts a server on the library's runtime.
    pub fn start(options: &XdsOptions) -> Result<Self, Error> {
        Self::start_as(options, NODE_PREFIX)
    }

    /// Starts a server whose bootstrap's node id is `<node_prefix>-<pid>-<random>`.
    fn start_as(options: &XdsOptions, node_prefix: &str) -> Result<Self, Error> {
        names::check_scheme(&options.default_scheme)?;
        options.resolver.dns.validate()?;
        let listen = parse_listen(&options.listen, options.allow_non_loopback)?;
        let home = runtime::home()?;
        let node_id = format!("{node_prefix}-{}-{:016x}", std::process::id(), rand::random::<u64>());
        let (stop, stopping) = watch::channel(false);
        let registry =
            Arc::new(Registry::new(options.resolver.clone(), options.default_scheme.clone(), home.handle.clone()));
        let ctx = Arc::new(StreamContext {
            registry: Arc::clone(&registry),
            node_id: node_id.clone(),
            check_node_id: options.check_node_id,
            streams: Default::default(),
            stopping: stopping.clone(),
        });
        let service =
            AggregatedDiscoveryServiceServer::new(Ads { ctx: Arc::clone(&ctx) }).max_decoding_message_size(4 << 20);
        let router = tonic::transport::Server::builder().add_service(service);
        let shutdown = until_stopped(stopping);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        let _entered = home.handle.enter();
        let (address, socket, private_dir) = match listen {
            Listen::Tcp(addr) => {
                let listener = std::net::TcpListener::bind(addr)
                    .map_err(|e| Error::new(ErrorKind::Unavailable, format!("xds: cannot listen on {addr}: {e}")))?;
                let local = listener.local_addr().map_err(|e| internal(format!("xds: {e}")))?;
                listener.set_nonblocking(true).map_err(|e| internal(format!("xds: {e}")))?;
                let listener =
                    tokio::net::TcpListener::from_std(listener).map_err(|e| internal(format!("xds: {e}")))?;
                // Responses are small and latency is the point: no Nagle delay (p90 of put → first RPC
                // was 31–36 ms with it, 7–9 ms without, through grpc-go).
                let incoming =
                    tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |s| {
                        if let Ok(stream) = &s {
                            let _ = stream.set_nodelay(true);
                        }
                        s
                    });
                home.handle.spawn(async move {
                    if let Err(e) = router.serve_with_incoming_shutdown(incoming, shutdown).await {
                        tracing::error!("xds: the server stopped: {e}");
                    }
                    let _ = done_tx.send(());
                });
                (local.to_string(), None, None)
            }
            Listen::Unix { path, private_dir } => {
                let (path, private_dir) = if path.as_os_str().is_empty() {
                    let dir = make_private_dir()?;
                    (dir.join("xds.sock"), Some(dir))
                } else {
                    (path, private_dir)
                };
                let listener = std::os::unix::net::UnixListener::bind(&path).map_err(|e| {
                    Error::new(ErrorKind::Unavailable, format!("xds: cannot listen on unix:{}: {e}", path.display()))
                })?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| internal(format!("xds: cannot restrict unix:{}: {e}", path.display())))?;
                listener.set_nonblocking(true).map_err(|e| internal(format!("xds: {e}")))?;
                let listener =
                    tokio::net::UnixListener::from_std(listener).map_err(|e| internal(format!("xds: {e}")))?;
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
                home.handle.spawn(async move {
                    if let Err(e) = router.serve_with_incoming_shutdown(incoming, shutdown).await {
                        tracing::error!("xds: the server stopped: {e}");
                    }
                    let _ = done_tx.send(());
                });
                (format!("unix:{}", path.display()), Some(path), private_dir)
            }
        };
        let bootstrap = bootstrap_json(&address, &node_id);
        let address = address.to_string();
        let shared = Arc::new(Shared {
            address,
            node_id,
            bootstrap,
            default_scheme: options.default_scheme.clone(),
            registry,
            ctx,
            stop,
            done: Mutex::new(Some(done_rx)),
            socket,
            private_dir,
            pid: std::process::id(),
            active: Mutex::new(Some(Gauge::up(&STATS.xds_servers_active))),
        });
        if let Err(e) = runtime::track(&shared, &home) {
            shared.close();
            return Err(e);
        }
        tracing::info!(address = shared.address.as_str(), "xds: serving");
        Ok(XdsServer { shared })
    }

    /// `127.0.0.1:PORT`, `[::1]:PORT` or `unix:/path`.
    pub fn address(&self) -> &str {
        &self.shared.address
    }

    /// The bootstrap JSON that points a gRPC xDS client at this server.
    pub fn bootstrap_json(&self) -> &str {
        &self.shared.bootstrap
    }

    pub fn node_id(&self) -> &str {
        &self.shared.node_id
    }

    /// What a bare `xds:///NAME` means to this server.
    pub fn default_scheme(&self) -> &str {
        &self.shared.default_scheme
    }

    /// The `xds:///` target that reaches `target` through this server.
    pub fn xds_target(&self, target: &str) -> Result<String, Error> {
        names::xds_target_for(target, &self.shared.default_scheme)
    }

    /// How many targets the server resolves now (one per target, however many streams ask).
    pub fn resolvers(&self) -> usize {
        self.shared.registry.resolvers()
    }

    /// How many ADS streams are open now.
    pub fn streams(&self) -> usize {
        self.shared.ctx.streams.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn is_closed(&self) -> bool {
        *self.shared.stop.borrow()
    }

    /// Stops listening, ends every stream, closes every resolver. Idempotent.
    pub fn close(&self) {
        self.shared.close();
    }
}

impl Closable for Shared {
    fn close(&self) {
        if !runtime::is_own(self.pid) {
            return;
        }
        self.stop.send_replace(true);
        if let Some(done) = self.done.lock().take() {
            if tokio::runtime::Handle::try_current().is_err() {
                let _ = done.recv_timeout(CLOSE_TIMEOUT);
            }
        }
        self.registry.close_all();
        self.active.lock().take();
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
        if let Some(dir) = &self.private_dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn internal(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Internal, message)
}

/// Completes when the server is told to stop.
pub(crate) async fn until_stopped(mut stopping: watch::Receiver<bool>) {
    while !*stopping.borrow_and_update() {
        if stopping.changed().await.is_err() {
            return;
        }
    }
}

/// A new directory only this user can enter, for a unix socket.
fn make_private_dir() -> Result<PathBuf, Error> {
    let base = std::env::temp_dir();
    for _ in 0..16 {
        let dir = base.join(format!("gnaming-xds-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(internal(format!("xds: cannot create a private directory in {}: {e}", base.display())))
            }
        }
    }
    Err(internal("xds: cannot find a free private directory name"))
}

/// The bootstrap every stack accepts: insecure loopback creds, and a `locality` in the node, without
/// which Node's xDS client rejects the whole bootstrap.
fn bootstrap_json(address: &str, node_id: &str) -> String {
    serde_json::json!({
        "xds_servers": [{"server_uri": address, "channel_creds": [{"type": "insecure"}]}],
        "node": {"id": node_id, "locality": {}},
    })
    .to_string()
}

/// Node ids of servers: `<prefix>-<pid>-<random>`; the process-wide default server has its own prefix,
/// so that a process can tell a bootstrap another process's default server installed.
const NODE_PREFIX: &str = "gnaming";
const DEFAULT_NODE_PREFIX: &str = "gnaming-default";

/// Whether `bootstrap` is one another process's default server installed, here because that process
/// started this one (spawn, exec) with its environment: that server answers for its own process and
/// may be gone, so this process replaces it as a forked child does.
fn installed_by_another_process(bootstrap: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(bootstrap) else { return false };
    let Some(id) = value["node"]["id"].as_str() else { return false };
    let Some(rest) = id.strip_prefix(DEFAULT_NODE_PREFIX).and_then(|r| r.strip_prefix('-')) else { return false };
    let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
    pid.is_some_and(|pid| pid != std::process::id())
}

/// The process-wide default server, its options, and the bootstrap installed into the environment.
struct DefaultServer {
    options: XdsOptions,
    configured: bool,
    server: Option<XdsServer>,
    /// The text set in `GRPC_XDS_BOOTSTRAP_CONFIG` by [`install_bootstrap`], here or in a parent.
    installed: Option<String>,
}

static DEFAULT: std::sync::LazyLock<Mutex<DefaultServer>> = std::sync::LazyLock::new(|| {
    Mutex::new(DefaultServer { options: XdsOptions::default(), configured: false, server: None, installed: None })
});

/// Sets the default server's options; refused once it runs in this process.
pub fn configure_default(options: &XdsOptions) -> Result<(), Error> {
    names::check_scheme(&options.default_scheme)?;
    parse_listen(&options.listen, options.allow_non_loopback)?;
    let mut d = DEFAULT.lock();
    if d.server.as_ref().is_some_and(|s| runtime::is_own(s.shared.pid) && !s.is_closed()) {
        return Err(Error::new(
            ErrorKind::BadState,
            "xds: the default server already runs; configure it before first use",
        ));
    }
    d.options = options.clone();
    d.configured = true;
    Ok(())
}

/// The scheme a bare `xds:///NAME` means to the default server, as configured (it need not run yet).
pub fn default_scheme() -> String {
    DEFAULT.lock().options.default_scheme.clone()
}

/// The default server, started on first use; a forked child or a process whose runtime was shut down
/// gets a fresh one.
pub fn default_server() -> Result<XdsServer, Error> {
    let mut d = DEFAULT.lock();
    if let Some(server) = &d.server {
        if !runtime::is_own(server.shared.pid) {
            // The parent's server: its threads do not exist here. Keep it untouched.
            let inherited = d.server.take().expect("checked");
            runtime::abandon(Box::new(inherited));
        } else if !server.is_closed() {
            return Ok(server.clone());
        }
    }
    let server = XdsServer::start_as(&d.options, DEFAULT_NODE_PREFIX)?;
    d.server = Some(server.clone());
    Ok(server)
}

/// Points this process's gRPC xDS clients at the default server: sets `GRPC_XDS_BOOTSTRAP_CONFIG`.
/// Must run before any gRPC thread reads the environment. Refused when the process already has another
/// xDS bootstrap (a file in `GRPC_XDS_BOOTSTRAP`, or different inline text not installed by this
/// library); one this library installed, here, in a parent before `fork`, or in a process that
/// started this one, is replaced.
pub fn install_bootstrap() -> Result<String, Error> {
    let server = default_server()?;
    let ours = server.bootstrap_json().to_string();
    let mut d = DEFAULT.lock();
    if let Some(file) = std::env::var_os(BOOTSTRAP_FILE_ENV).filter(|v| !v.is_empty()) {
        return Err(Error::new(
            ErrorKind::BadState,
            format!(
                "xds: {BOOTSTRAP_FILE_ENV} already names a bootstrap ({}); gRPC would read it instead of libgnaming's. Unset it or point it at libgnaming's agent",
                file.to_string_lossy()
            ),
        ));
    }
    if let Some(current) = std::env::var(BOOTSTRAP_CONFIG_ENV).ok().filter(|v| !v.is_empty()) {
        let ours_before = d.installed.as_deref() == Some(current.as_str());
        if current != ours && !ours_before && !installed_by_another_process(&current) {
            return Err(Error::new(
                ErrorKind::BadState,
                format!(
                    "xds: {BOOTSTRAP_CONFIG_ENV} already holds another xDS bootstrap; libgnaming will not replace it"
                ),
            ));
        }
    }
    std::env::set_var(BOOTSTRAP_CONFIG_ENV, &ours);
    d.installed = Some(ours.clone());
    Ok(ours)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_another_process_s_default_bootstrap_counts_as_replaceable() {
        let other = bootstrap_json("127.0.0.1:1", &format!("{DEFAULT_NODE_PREFIX}-{}-00ff", std::process::id() + 1));
        assert!(installed_by_another_process(&other));
        let mine = bootstrap_json("127.0.0.1:1", &format!("{DEFAULT_NODE_PREFIX}-{}-00ff", std::process::id()));
        assert!(!installed_by_another_process(&mine));
        let agent = bootstrap_json("127.0.0.1:1", &format!("{NODE_PREFIX}-{}-00ff", std::process::id() + 1));
        assert!(!installed_by_another_process(&agent), "a private server or agent's bootstrap is not replaced");
        assert!(!installed_by_another_process(r#"{"node":{"id":"a-service-mesh"}}"#));
        assert!(!installed_by_another_process("not json"));
    }

    use super::*;

    #[test]
    fn only_loopback_is_accepted_unless_allowed() {
        for ok in ["127.0.0.1:0", "[::1]:0", "localhost:1234", "unix:", "unix:/tmp/x.sock"] {
            assert!(parse_listen(ok, false).is_ok(), "{ok}");
        }
        for bad in ["0.0.0.0:0", "10.1.2.3:80", "[::]:0"] {
            let e = parse_listen(bad, false).err().expect(bad);
            assert!(e.message().contains("non-loopback"), "{}", e.message());
            assert!(parse_listen(bad, true).is_ok(), "{bad} allowed explicitly");
        }
        for bad in ["example.com:80", "127.0.0.1", "127.0.0.1:x", "unix:relative"] {
            assert!(parse_listen(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_bootstrap_names_the_server_and_a_node_with_a_locality() {
        let b: serde_json::Value = serde_json::from_str(&bootstrap_json("127.0.0.1:5", "n1")).unwrap();
        assert_eq!(b["xds_servers"][0]["server_uri"], "127.0.0.1:5");
        assert_eq!(b["xds_servers"][0]["channel_creds"][0]["type"], "insecure");
        assert_eq!(b["node"]["id"], "n1");
        assert!(b["node"]["locality"].is_object());
    }
}
