//! The xDS server's protocol against a client of our own: every name answered, NACKs never answered
//! by a resend, stale nonces ignored, resubscriptions, shared and released resolvers, outages, the
//! node id check, the service config's policy, host names, a private unix socket and the cold-start
//! cache. Lists come from static targets, a real etcd and an in-process DNS server.

mod common;
mod dns_server;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{rt, EtcdCluster};
use dns_server::DnsServer;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{node::UserAgentVersionType, Node};
use envoy_types::pb::envoy::config::endpoint::v3::{lb_endpoint::HostIdentifier, ClusterLoadAssignment};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use gnaming::etcd::{Registration, RegistrationOptions};
use gnaming::xds::resources::{ASSIGNMENT_TYPE, CLUSTER_TYPE, LISTENER_TYPE};
use gnaming::xds::{XdsOptions, XdsServer};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

const WAIT: Duration = Duration::from_secs(10);
/// How long "nothing was sent" is watched for.
const QUIET: Duration = Duration::from_millis(700);

/// One ADS stream of a test client.
struct Ads {
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: Streaming<DiscoveryResponse>,
    node: Option<Node>,
}

fn node(id: &str) -> Node {
    Node { id: id.into(), user_agent_name: "gnaming-test".into(), ..Default::default() }
}

async fn connect(address: &str) -> Ads {
    connect_as(address, node("test")).await
}

async fn connect_as(address: &str, node: Node) -> Ads {
    let mut client = if let Some(path) = address.strip_prefix("unix:") {
        let path = path.to_string();
        let channel = tonic::transport::Endpoint::try_from("http://unix.socket")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?))
                }
            }))
            .await
            .expect("connects over the unix socket");
        AggregatedDiscoveryServiceClient::new(channel)
    } else {
        AggregatedDiscoveryServiceClient::connect(format!("http://{address}")).await.expect("connects")
    };
    let (tx, requests) = mpsc::channel(16);
    let rx =
        client.stream_aggregated_resources(ReceiverStream::new(requests)).await.expect("stream opens").into_inner();
    Ads { tx, rx, node: Some(node) }
}

impl Ads {
    async fn send(&mut self, type_url: &str, names: &[&str], version: &str, nonce: &str, nack: Option<&str>) {
        let request = DiscoveryRequest {
            version_info: version.into(),
            node: self.node.take(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            type_url: type_url.into(),
            response_nonce: nonce.into(),
            error_detail: nack.map(|m| RpcStatus { code: 3, message: m.into(), details: vec![] }),
            ..Default::default()
        };
        self.tx.send(request).await.expect("stream open");
    }

    async fn ask(&mut self, type_url: &str, names: &[&str]) {
        self.send(type_url, names, "", "", None).await;
    }

    /// The next response, or `None` when none comes within `within`.
    async fn next_within(&mut self, within: Duration) -> Option<DiscoveryResponse> {
        match tokio::time::timeout(within, self.rx.message()).await {
            Ok(Ok(Some(r))) => Some(r),
            Ok(Ok(None)) => None,
            Ok(Err(status)) => panic!("stream failed: {status:?}"),
            Err(_) => None,
        }
    }

    async fn next(&mut self) -> DiscoveryResponse {
        self.next_within(WAIT).await.expect("a response within the wait")
    }

    /// The next response, which must be an assignment listing `expected`.
    async fn expect(&mut self, expected: &[&str]) -> DiscoveryResponse {
        let r = self.next().await;
        assert_eq!(endpoints(&r), expected);
        r
    }

    /// ACKs `r` and returns it.
    async fn ack(&mut self, r: DiscoveryResponse, names: &[&str]) -> DiscoveryResponse {
        self.send(&r.type_url, names, &r.version_info, &r.nonce, None).await;
        r
    }
}

/// The endpoints of the one assignment in `r`, as "ip:port*weight", sorted.
fn endpoints(r: &DiscoveryResponse) -> Vec<String> {
    assert_eq!(r.type_url, ASSIGNMENT_TYPE);
    assert_eq!(r.resources.len(), 1, "one assignment expected");
    let cla = ClusterLoadAssignment::decode(r.resources[0].value.as_slice()).unwrap();
    let mut out: Vec<String> = cla
        .endpoints
        .iter()
        .map(|l| {
            let Some(HostIdentifier::Endpoint(e)) = &l.lb_endpoints[0].host_identifier else { panic!("no endpoint") };
            let Some(envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(sa)) =
                &e.address.as_ref().unwrap().address
            else {
                panic!("no socket address")
            };
            let Some(envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(port)) =
                sa.port_specifier
            else {
                panic!("no port")
            };
            format!("{}:{}*{}", sa.address, port, l.load_balancing_weight.unwrap().value)
        })
        .collect();
    out.sort();
    out
}

fn server() -> XdsServer {
    XdsServer::start(&XdsOptions::default()).expect("xds server starts")
}

fn stats() -> serde_json::Value {
    serde_json::from_str(&gnaming::etcd::stats::to_json()).unwrap()
}

/// Polls `cond` until it holds or `WAIT` passes.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn register(service: &str, addr: &str, cluster: &str, metadata: Option<&str>) -> Registration {
    let options = RegistrationOptions {
        cluster: cluster.into(),
        ttl: Duration::from_secs(5),
        metadata: metadata.map(|m| serde_json::from_str(m).unwrap()),
        ..Default::default()
    };
    let r = Registration::start(service, addr, &options).expect("registration starts");
    r.wait(Some(WAIT)).expect("registered");
    r
}

#[test]
fn every_name_gets_its_listener_and_cluster_and_then_its_weighted_assignment() {
    let server = server();
    let name = "pass:///127.0.0.1:7001,127.0.0.1:7002#3";
    rt().block_on(async {
        let mut ads = connect(server.address()).await;
        ads.ask(LISTENER_TYPE, &[name]).await;
        let l = ads.next().await;
        let listener = Listener::decode(l.resources[0].value.as_slice()).unwrap();
        assert_eq!((l.type_url.as_str(), listener.name.as_str()), (LISTENER_TYPE, name));
        ads.ask(CLUSTER_TYPE, &[name]).await;
        let c = ads.next().await;
        let cluster = Cluster::decode(c.resources[0].value.as_slice()).unwrap();
        assert_eq!(cluster.eds_cluster_config.unwrap().service_name, name);
        ads.ask(ASSIGNMENT_TYPE, &[name]).await;
        let e = ads.next().await;
        // The copies of 127.0.0.1:7002 are one endpoint: xDS clients reject an address twice.
        assert_eq!(endpoints(&e), vec!["127.0.0.1:7001*1", "127.0.0.1:7002*1"]);
    });
    server.close();
}

#[test]
fn a_name_that_is_no_target_gets_an_empty_assignment_at_once() {
    let server = server();
    rt().block_on(async {
        let mut ads = connect(server.address()).await;
        ads.ask(ASSIGNMENT_TYPE, &["bad%zz"]).await;
        let started = Instant::now();
        let e = ads.next().await;
        assert_eq!(endpoints(&e), Vec::<String>::new());
        assert!(started.elapsed() < Duration::from_secs(2), "answered after {:?}", started.elapsed());
    });
    server.close();
}

#[test]
fn a_nack_is_logged_never_answered_by_a_resend_and_the_next_change_is_sent() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("xn");
    let server = server();
    let name = "etcd://xn/echo";
    let _a = register("echo", "127.0.0.1:7101", "xn", None);
    let nacks_before = stats()["xds_nacks"].as_u64().unwrap();
    rt().block_on(async {
        let mut ads = connect(server.address()).await;
        ads.ask(ASSIGNMENT_TYPE, &[name]).await;
        let first = ads.expect(&["127.0.0.1:7101*1"]).await;
        ads.send(ASSIGNMENT_TYPE, &[name], "", &first.nonce, Some("rejected by the test")).await;
        assert!(ads.next_within(QUIET).await.is_none(), "a NACK was answered by a resend");
        let _b = register("echo", "127.0.0.1:7102", "xn", Some(r#"{"weight":3}"#));
        let next = ads.next().await;
        assert_eq!(endpoints(&next), vec!["127.0.0.1:7101*1", "127.0.0.1:7102*3"]);
        assert_ne!(next.version_info, first.version_info);
        assert_ne!(next.nonce, first.nonce);
    });
    assert!(stats()["xds_nacks"].as_u64().unwrap() > nacks_before, "the NACK was not counted");
    server.close();
}

#[test]
fn a_stale_nonce_is_ignored_and_the_current_one_is_answered() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("xs");
    let server = server();
    let (one, two) = ("etcd://xs/one", "etcd://xs/two");
    let _a = register("one", "127.0.0.1:7201", "xs", None);
    rt().block_on(async {
        let mut ads = connect(server.address()).await;
        ads.ask(ASSIGNMENT_TYPE, &[one]).await;
        let first = ads.expect(&["127.0.0.1:7201*1"]).await;
        let first = ads.ack(first, &[one]).await;
        let _b = register("one", "127.0.0.1:7202", "xs", None);
        let second = ads.expect(&["127.0.0.1:7201*1", "127.0.0.1:7202*1"]).await;
        // A request answering the first response, although the second was sent since: ignored.
        ads.send(ASSIGNMENT_TYPE, &[one, two], &first.version_info, &first.nonce, None).await;
        assert!(ads.next_within(QUIET).await.is_none(), "a stale nonce was answered");
        assert_eq!(server.resolvers(), 1, "a stale request subscribed a name");
        ads.send(ASSIGNMENT_TYPE, &[one, two], &second.version_info, &second.nonce, None).await;
        let _c = register("two", "127.0.0.1:7203", "xs", None);
        // The new name's list may come in the first response or the next.
        let deadline = Instant::now() + WAIT;
        loop {
            let r = ads.next().await;
            if r.resources.len() == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "the current nonce's names were not served");
            ads.ack(r, &[one, two]).await;
        }
    });
    server.close();
}

#[test]
fn a_resubscription_gets_the_current_state() {
    let server = server();
    let name = "pass:///127.0.0.1:7301";
    rt().block_on(async {
        let mut ads = connect(server.address()).await;
        ads.ask(ASSIGNMENT_TYPE, &[name]).await;
        let r = ads.next().await;
        let r = ads.ack(r, &[name]).await;
        ads.send(ASSIGNMENT_TYPE, &[], &r.version_info, &r.nonce, None).await;
        let gone = ads.next().await;
        assert!(gone.resources.is_empty());
        ads.send(ASSIGNMENT_TYPE, &[name], &gone.version_info, &gone.nonce, None).await;
        let again = ads.next().await;
        assert_eq!(endpoints(&again), vec!["127.0.0.1:7301*1"]);
    });
    server.close();
}

#[test]
fn two_clients_on_one_name_share_one_resolver_and_a_vanished_stream_releases_it() {
    let server = server();
    let name = "pass:///127.0.0.1:7401";
    let other = "pass:///127.0.0.1:7402";
    // A runtime that keeps driving the connections, so a dropped client really closes its own.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (first, second) = runtime.block_on(async {
        let mut first = connect(server.address()).await;
        let mut second = connect(server.address()).await;
        for ads in [&mut first, &mut second] {
            ads.ask(CLUSTER_TYPE, &[name]).await;
            ads.next().await;
            ads.ask(ASSIGNMENT_TYPE, &[name]).await;
            ads.next().await;
        }
        first.ask(LISTENER_TYPE, &[other]).await;
        first.next().await;
        (first, second)
    });
    assert_eq!(server.resolvers(), 1, "two clients on one name must share one resolver (listeners need none)");
    assert_eq!(server.streams(), 2);
    drop(first);
    eventually("the first client's stream ends", || server.streams() == 1);
    assert_eq!(server.resolvers(), 1, "the other client still asks for it");
    drop(second);
    eventually("the last stream's resolver is closed", || server.resolvers() == 0);
    drop(runtime);
    server.close();
}

#[test]
fn a_hundred_streams_at_once_all_get_the_assignment_from_one_resolver() {
    let server = server();
    let name = "pass:///127.0.0.1:7501,127.0.0.1:7502";
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let streams = runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let address = server.address().to_string();
            tasks.push(tokio::spawn(async move {
                let mut ads = connect(&address).await;
                ads.ask(ASSIGNMENT_TYPE, &[name]).await;
                let r = ads.next().await;
                (endpoints(&r), ads)
            }));
        }
        let mut streams = Vec::new();
        for t in tasks {
            let (list, ads) = t.await.unwrap();
            assert_eq!(list, vec!["127.0.0.1:7501*1", "127.0.0.1:7502*1"]);
            streams.push(ads);
        }
        streams
    });
    assert_eq!(server.resolvers(), 1);
    assert_eq!(server.streams(), 100);
    drop(streams);
    eventually("every stream is released", || server.resolvers() == 0);
    drop(runtime);
    server.close();
}

#[test]
fn an_outage_keeps_the_last_assignment_and_an_empty_service_empties_it() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("xo");
    let server = server();
    let name = "etcd://xo/echo";
    let a = register("echo", "127.0.0.1:7601", "xo", None);
    rt().block_on(async {
        let mut ads = connect(server.address()).await;
        ads.ask(ASSIGNMENT_TYPE, &[name]).await;
        let r = ads.expect(&["127.0.0.1:7601*1"]).await;
        let r = ads.ack(r, &[name]).await;
        a.close(Duration::from_secs(5)).expect("deregistered");
        let empty = ads.next().await;
        assert_eq!(endpoints(&empty), Vec::<String>::new(), "an authoritatively empty service is sent empty");
        let _b = register("echo", "127.0.0.1:7602", "xo", None);
        let back = ads.next().await;
        assert_eq!(endpoints(&back), vec!["127.0.0.1:7602*1"]);
        let _ = r;
        etcd.stop_all();
        // The resolver reports the outage within its request timeout (1 s here); nothing may follow.
        assert!(
            ads.next_within(Duration::from_secs(4)).await.is_none(),
            "an outage must keep the last assignment, not send a new one"
        );
    });
    server.close();
}

#[test]
fn a_server_started_while_etcd_is_down_sends_the_cached_assignment() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("xc");
    let dir = std::env::temp_dir().join(format!("gnaming-xds-cache-{}", std::process::id()));
    let mut options = XdsOptions::default();
    options.resolver.cache.dir = Some(dir.clone());
    let name = "etcd://xc/echo";
    let first_assignment = |server: &XdsServer| {
        rt().block_on(async {
            let mut ads = connect(server.address()).await;
            ads.ask(ASSIGNMENT_TYPE, &[name]).await;
            endpoints(&ads.next().await)
        })
    };
    let _a = register("echo", "127.0.0.1:7611", "xc", Some(r#"{"weight":3}"#));
    let server = XdsServer::start(&options).unwrap();
    assert_eq!(first_assignment(&server), ["127.0.0.1:7611*3"]);
    // Closing the server closes its resolver, which waits for the cache write.
    server.close();
    etcd.stop_all();
    let server = XdsServer::start(&options).unwrap();
    assert_eq!(first_assignment(&server), ["127.0.0.1:7611*3"], "the cached list, with etcd down");
    server.close();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_foreign_node_id_is_refused_when_the_check_is_on() {
    let server = XdsServer::start(&XdsOptions { check_node_id: true, ..Default::default() }).unwrap();
    rt().block_on(async {
        let mut own = connect_as(server.address(), node(server.node_id())).await;
        own.ask(LISTENER_TYPE, &["echo"]).await;
        assert_eq!(own.next().await.resources.len(), 1, "its own node is answered");
        let mut foreign = connect_as(server.address(), node("someone-else")).await;
        foreign.ask(LISTENER_TYPE, &["echo"]).await;
        match tokio::time::timeout(WAIT, foreign.rx.message()).await.expect("answered in time") {
            Err(status) => assert_eq!(status.code(), tonic::Code::PermissionDenied),
            Ok(r) => panic!("a foreign node was answered: {r:?}"),
        }
    });
    server.close();
}

fn dns_options(dns: &DnsServer) -> XdsOptions {
    let mut options = XdsOptions::default();
    options.resolver.dns.nameserver = Some(dns.addr());
    options
}

fn cluster_policy(r: &DiscoveryResponse) -> i32 {
    Cluster::decode(r.resources[0].value.as_slice()).unwrap().lb_policy
}

#[test]
fn the_service_config_chooses_ring_hash_except_for_grpc_core_before_1_52() {
    use envoy_types::pb::envoy::config::cluster::v3::cluster::LbPolicy;
    let dns = DnsServer::start();
    dns.set_addresses("svc.gn.test", &["127.0.0.1"], 60);
    dns.set_txt(
        "_grpc_config.svc.gn.test",
        &[&[r#"grpc_config=[{"serviceConfig":{"loadBalancingConfig":[{"ring_hash_experimental":{}}]}}]"#]],
        60,
    );
    let server = XdsServer::start(&dns_options(&dns)).unwrap();
    let name = "dns:///svc.gn.test:7701";
    let policy_for = |agent: &str, version: &str| {
        let mut n = node("test");
        n.user_agent_name = agent.into();
        n.user_agent_version_type = Some(UserAgentVersionType::UserAgentVersion(version.into()));
        rt().block_on(async {
            let mut ads = connect_as(server.address(), n).await;
            ads.ask(ASSIGNMENT_TYPE, &[name]).await;
            assert_eq!(endpoints(&ads.next().await), vec!["127.0.0.1:7701*1"]);
            ads.ask(CLUSTER_TYPE, &[name]).await;
            cluster_policy(&ads.next().await)
        })
    };
    // As Debian's grpc++ 1.51.1 and grpcio 1.85.3 describe themselves.
    assert_eq!(policy_for("gRPC C-core linux", "C-core 29.0.0"), LbPolicy::RoundRobin as i32, "grpc-core 1.51");
    assert_eq!(policy_for("gRPC C-core linux Python", "C-core 58.0.0 Python 1.85.3"), LbPolicy::RingHash as i32);
    assert_eq!(policy_for("gRPC Go", "1.85.0"), LbPolicy::RingHash as i32);
    server.close();
}

#[test]
fn host_names_in_a_list_are_resolved_through_the_core_before_they_are_sent() {
    let dns = DnsServer::start();
    dns.set_addresses("backend.gn.test", &["127.0.0.2", "127.0.0.3"], 60);
    let server = XdsServer::start(&dns_options(&dns)).unwrap();
    rt().block_on(async {
        let mut ads = connect(server.address()).await;
        ads.ask(ASSIGNMENT_TYPE, &["pass:///backend.gn.test:7801,127.0.0.1:7802"]).await;
        assert_eq!(endpoints(&ads.next().await), vec!["127.0.0.1:7802*1", "127.0.0.2:7801*1", "127.0.0.3:7801*1"]);
    });
    server.close();
}

#[test]
fn a_private_unix_socket_has_mode_0600_in_a_0700_directory_and_serves() {
    let server = XdsServer::start(&XdsOptions { listen: "unix:".into(), ..Default::default() }).unwrap();
    let path = std::path::PathBuf::from(server.address().strip_prefix("unix:").expect("a unix address"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "socket mode");
    assert_eq!(mode(path.parent().unwrap()), 0o700, "directory mode");
    rt().block_on(async {
        let mut ads = connect(server.address()).await;
        ads.ask(LISTENER_TYPE, &["echo"]).await;
        assert_eq!(ads.next().await.resources.len(), 1);
    });
    server.close();
    assert!(!path.exists() && !path.parent().unwrap().exists(), "the socket and its directory are removed");
}

#[test]
fn a_non_loopback_listen_address_is_refused_unless_allowed() {
    let e = XdsServer::start(&XdsOptions { listen: "0.0.0.0:0".into(), ..Default::default() }).err().unwrap();
    assert!(e.message().contains("non-loopback"), "{}", e.message());
    let allowed =
        XdsServer::start(&XdsOptions { listen: "0.0.0.0:0".into(), allow_non_loopback: true, ..Default::default() })
            .expect("allowed explicitly");
    assert!(allowed.address().starts_with("0.0.0.0:"));
    allowed.close();
}

#[test]
fn a_stream_asking_for_more_than_4096_names_of_one_type_is_refused_and_delta_is_not_served() {
    let server = server();
    rt().block_on(async {
        let mut ads = connect(server.address()).await;
        let names: Vec<String> = (0..4097).map(|i| format!("name{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        ads.ask(LISTENER_TYPE, &names).await;
        match tokio::time::timeout(WAIT, ads.rx.message()).await.expect("answered in time") {
            Err(status) => assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}"),
            Ok(r) => panic!("4,097 names were accepted: {:?}", r.map(|r| r.resources.len())),
        }
        let mut client =
            AggregatedDiscoveryServiceClient::connect(format!("http://{}", server.address())).await.unwrap();
        let (_tx, requests) = mpsc::channel(1);
        let delta = client.delta_aggregated_resources(ReceiverStream::new(requests)).await;
        assert_eq!(delta.err().map(|s| s.code()), Some(tonic::Code::Unimplemented));
    });
    assert_eq!(server.resolvers(), 0, "a refused request must subscribe nothing");
    server.close();
}

#[test]
fn two_threads_closing_one_server_at_once_both_return_with_its_streams_ended() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    for round in 0..20 {
        let server = server();
        let _ads = runtime.block_on(async {
            let mut ads = connect(server.address()).await;
            ads.ask(LISTENER_TYPE, &["echo"]).await;
            ads.next().await;
            ads
        });
        assert_eq!(server.streams(), 1);
        let closers: Vec<_> = (0..2)
            .map(|_| {
                let server = server.clone();
                std::thread::spawn(move || {
                    server.close();
                    server.streams()
                })
            })
            .collect();
        for closer in closers {
            let left = closer.join().unwrap();
            assert_eq!(left, 0, "round {round}: a close returned with {left} stream(s) still open");
        }
    }
}

#[test]
fn the_default_server_asked_for_by_eight_threads_at_once_is_one_server() {
    let ids: Vec<String> = (0..8)
        .map(|_| std::thread::spawn(|| gnaming::xds::default_server().unwrap().node_id().to_string()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "more than one default server: {ids:?}");
}
