//! Pure builders from a libgnaming list to the xDS resources a proxyless gRPC client needs: Listener
//! (API listener, inline route) → Cluster (EDS over ADS) → ClusterLoadAssignment. No I/O here.

use std::collections::HashSet;
use std::net::SocketAddr;

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, EdsClusterConfig, LbPolicy,
};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    address, config_source::ConfigSourceSpecifier, socket_address::PortSpecifier, Address as CoreAddress,
    AggregatedConfigSource, ApiVersion, ConfigSource, Locality, Metadata, SocketAddress,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, Endpoint as XdsEndpointProto, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, route_match::PathSpecifier, Route, RouteAction, RouteConfiguration,
    RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, http_filter::ConfigType, HttpConnectionManager, HttpFilter,
};
use envoy_types::pb::google::protobuf::{value::Kind, Any, ListValue, Struct, UInt32Value, Value};
use prost::{Message, Name};

use crate::update::{Address, AddressFamily, AddressKind};

pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ASSIGNMENT_TYPE: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/// The metadata filter under which an entry's metadata travels in its endpoint.
pub const METADATA_FILTER: &str = "gnaming";

/// The load-balancing policies xDS can carry to every stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balancing {
    RoundRobin,
    RingHash,
}

/// One endpoint as an xDS client can dial it.
#[derive(Debug, Clone, PartialEq)]
pub struct XdsEndpoint {
    pub address: SocketAddr,
    pub weight: u32,
    pub metadata: Option<serde_json::Value>,
}

/// What a list becomes: the endpoints xDS can express, and what had to be left out (for a log line).
#[derive(Debug, Default, PartialEq)]
pub struct Converted {
    pub endpoints: Vec<XdsEndpoint>,
    /// Host names to resolve before they can be sent (xDS clients take IP literals only).
    pub names: Vec<(String, Address)>,
    /// Entries xDS cannot carry (unix sockets, opaque passthrough strings, grpclb balancers).
    pub skipped: Vec<String>,
}

/// Splits a libgnaming list into IP endpoints, names still to resolve, and the rest. Copies of one
/// address (`#N`) become one endpoint: xDS clients reject an address listed twice.
pub fn convert(list: &[Address]) -> Converted {
    let mut out = Converted::default();
    let mut seen = HashSet::new();
    for entry in list {
        if entry.kind == AddressKind::Balancer {
            out.skipped.push(format!("{} (a grpclb balancer)", entry.address));
            continue;
        }
        match entry.family {
            AddressFamily::Ipv4 | AddressFamily::Ipv6 => match entry.address.parse::<SocketAddr>() {
                Ok(address) => {
                    if seen.insert(address) {
                        out.endpoints.push(endpoint_at(address, entry));
                    }
                }
                Err(_) => out.skipped.push(format!("{} (not an IP address and port)", entry.address)),
            },
            AddressFamily::Name if split_host_port(&entry.address).is_some() => {
                if entry.copy_index == 0 {
                    out.names.push((entry.address.to_string(), entry.clone()));
                }
            }
            AddressFamily::Name => out.skipped.push(format!("{} (not a host:port)", entry.address)),
            AddressFamily::Unix => {
                out.skipped.push(format!("{} (xDS clients cannot dial unix sockets)", entry.address))
            }
        }
    }
    out
}

/// The endpoint for `address`, carrying `entry`'s weight and metadata.
pub fn endpoint_at(address: SocketAddr, entry: &Address) -> XdsEndpoint {
    let metadata = entry.metadata.as_deref().and_then(|m| serde_json::from_str(m).ok());
    XdsEndpoint { address, weight: entry.weight.max(1), metadata }
}

pub use crate::resolver::names::split_host_port;

/// Adds `more` to `endpoints`, skipping addresses already there.
pub fn merge(endpoints: &mut Vec<XdsEndpoint>, more: Vec<XdsEndpoint>) {
    let mut seen: HashSet<SocketAddr> = endpoints.iter().map(|e| e.address).collect();
    endpoints.extend(more.into_iter().filter(|e| seen.insert(e.address)));
}

/// The policy a service config asks for, as far as xDS can say it: the first entry of
/// `loadBalancingConfig` that is round_robin or ring_hash; round_robin otherwise.
pub fn balancing_from_service_config(service_config: Option<&str>) -> Balancing {
    let Some(config) = service_config.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
        return Balancing::RoundRobin;
    };
    let policies = config.get("loadBalancingConfig").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    for policy in policies.iter().filter_map(|p| p.as_object()).flat_map(|p| p.keys()) {
        match policy.as_str() {
            "round_robin" => return Balancing::RoundRobin,
            "ring_hash_experimental" | "ring_hash" => return Balancing::RingHash,
            _ => {}
        }
    }
    match config.get("loadBalancingPolicy").and_then(|v| v.as_str()) {
        Some(p) if p.eq_ignore_ascii_case("ring_hash") => Balancing::RingHash,
        _ => Balancing::RoundRobin,
    }
}

/// Whether a client may be sent ring_hash: grpc-core before 1.52 crashes on it (grpc/grpc#31766).
/// Clients are told apart by their xDS node's `user_agent_name` and `user_agent_version`. grpc-core
/// stacks say "gRPC C-core linux" and "C-core 29.0.0" (grpc++ 1.51) or "C-core 58.0.0 Python 1.85.3"
/// (grpcio): the core library's own version, 30 being grpc 1.52.
pub fn client_takes_ring_hash(user_agent_name: &str, user_agent_version: &str) -> bool {
    if !user_agent_name.contains("C-core") && !user_agent_version.contains("C-core") {
        return true;
    }
    let core = user_agent_version.split("C-core").nth(1).unwrap_or(user_agent_version);
    let major = core.trim().split(['.', ' ']).next().and_then(|m| m.parse::<u32>().ok());
    // An unknown version of a C-core stack: assume the worst.
    major.is_some_and(|m| m >= 30)
}

fn any_of<T: Message + Name>(message: &T) -> Any {
    Any { type_url: T::type_url(), value: message.encode_to_vec() }
}

/// The API listener for `name`: an HTTP connection manager whose inline route sends every RPC to the
/// cluster of the same name. The router filter is required by every gRPC stack.
pub fn listener(name: &str) -> Listener {
    let route_config = RouteConfiguration {
        name: name.to_string(),
        virtual_hosts: vec![VirtualHost {
            name: name.to_string(),
            domains: vec!["*".to_string()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(PathSpecifier::Prefix(String::new())),
                    ..Default::default()
                }),
                action: Some(Action::Route(RouteAction {
                    cluster_specifier: Some(ClusterSpecifier::Cluster(name.to_string())),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let manager = HttpConnectionManager {
        route_specifier: Some(RouteSpecifier::RouteConfig(route_config)),
        http_filters: vec![HttpFilter {
            name: "router".to_string(),
            config_type: Some(ConfigType::TypedConfig(any_of(&Router::default()))),
            ..Default::default()
        }],
        ..Default::default()
    };
    Listener {
        name: name.to_string(),
        api_listener: Some(ApiListener { api_listener: Some(any_of(&manager)) }),
        ..Default::default()
    }
}

/// The cluster for `name`: endpoints come by EDS over the same ADS stream.
pub fn cluster(name: &str, balancing: Balancing) -> Cluster {
    let lb_policy = match balancing {
        Balancing::RoundRobin => LbPolicy::RoundRobin,
        Balancing::RingHash => LbPolicy::RingHash,
    };
    Cluster {
        name: name.to_string(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(ConfigSource {
                config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
                resource_api_version: ApiVersion::V3 as i32,
                ..Default::default()
            }),
            service_name: name.to_string(),
        }),
        lb_policy: lb_policy as i32,
        ..Default::default()
    }
}

/// The assignment for `name`: each endpoint in a locality of its own whose weight is the entry's
/// weight, because round_robin in every stack ignores endpoint weights but honours locality weights.
pub fn assignment(name: &str, endpoints: &[XdsEndpoint]) -> ClusterLoadAssignment {
    let localities = endpoints
        .iter()
        .map(|e| {
            let weight = Some(UInt32Value { value: e.weight.max(1) });
            let metadata = e.metadata.as_ref().map(|m| Metadata {
                filter_metadata: [(METADATA_FILTER.to_string(), as_struct(m))].into_iter().collect(),
                ..Default::default()
            });
            LocalityLbEndpoints {
                locality: Some(Locality { sub_zone: e.address.to_string(), ..Default::default() }),
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(XdsEndpointProto {
                        address: Some(CoreAddress {
                            address: Some(address::Address::SocketAddress(SocketAddress {
                                address: e.address.ip().to_string(),
                                port_specifier: Some(PortSpecifier::PortValue(u32::from(e.address.port()))),
                                ..Default::default()
                            })),
                        }),
                        ..Default::default()
                    })),
                    metadata,
                    load_balancing_weight: weight,
                    ..Default::default()
                }],
                load_balancing_weight: weight,
                ..Default::default()
            }
        })
        .collect();
    ClusterLoadAssignment { cluster_name: name.to_string(), endpoints: localities, ..Default::default() }
}

pub fn listener_any(name: &str) -> Any {
    any_of(&listener(name))
}

pub fn cluster_any(name: &str, balancing: Balancing) -> Any {
    any_of(&cluster(name, balancing))
}

pub fn assignment_any(name: &str, endpoints: &[XdsEndpoint]) -> Any {
    any_of(&assignment(name, endpoints))
}

/// JSON metadata as a protobuf Struct; a value that is not an object sits under "value".
fn as_struct(json: &serde_json::Value) -> Struct {
    match json {
        serde_json::Value::Object(map) => {
            Struct { fields: map.iter().map(|(k, v)| (k.clone(), as_value(v))).collect() }
        }
        other => Struct { fields: [("value".to_string(), as_value(other))].into_iter().collect() },
    }
}

fn as_value(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    let kind = match json {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(ListValue { values: items.iter().map(as_value).collect() }),
        J::Object(_) => Kind::StructValue(as_struct(json)),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(address: &str, family: AddressFamily, weight: u32) -> Address {
        Address { weight, ..Address::backend(address.to_string(), family) }
    }

    #[test]
    fn copies_of_one_address_become_one_endpoint_and_unusable_entries_are_named() {
        let mut list = Vec::new();
        entry("127.0.0.1:1", AddressFamily::Ipv4, 2).push_copies(3, &mut list);
        list.push(entry("[::1]:2", AddressFamily::Ipv6, 1));
        list.push(entry("unix:/tmp/s", AddressFamily::Unix, 1));
        list.push(entry("echo.test:3", AddressFamily::Name, 1));
        let c = convert(&list);
        let addrs: Vec<String> = c.endpoints.iter().map(|e| e.address.to_string()).collect();
        assert_eq!(addrs, vec!["127.0.0.1:1", "[::1]:2"]);
        assert_eq!(c.endpoints[0].weight, 2);
        assert_eq!(c.names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), vec!["echo.test:3"]);
        assert_eq!(c.skipped.len(), 1, "{:?}", c.skipped);
    }

    #[test]
    fn each_endpoint_sits_in_a_locality_of_its_own_weighted_by_the_entry() {
        let list = [entry("127.0.0.1:1", AddressFamily::Ipv4, 1), entry("127.0.0.1:2", AddressFamily::Ipv4, 6)];
        let mut endpoints = convert(&list).endpoints;
        endpoints[1].metadata = Some(serde_json::json!({"zone": "a", "weight": 6}));
        let cla = assignment("echo", &endpoints);
        assert_eq!(cla.cluster_name, "echo");
        let weights: Vec<u32> = cla.endpoints.iter().map(|l| l.load_balancing_weight.unwrap().value).collect();
        assert_eq!(weights, vec![1, 6]);
        let zones: HashSet<_> = cla.endpoints.iter().map(|l| l.locality.clone().unwrap().sub_zone).collect();
        assert_eq!(zones.len(), 2, "localities must differ");
        let md = cla.endpoints[1].lb_endpoints[0].metadata.as_ref().unwrap();
        let zone = &md.filter_metadata[METADATA_FILTER].fields["zone"];
        assert_eq!(zone.kind, Some(Kind::StringValue("a".into())));
    }

    #[test]
    fn the_listener_routes_everything_to_its_cluster_through_the_router_filter() {
        let l = listener("dns:///h:1");
        let any = l.api_listener.unwrap().api_listener.unwrap();
        let hcm = HttpConnectionManager::decode(any.value.as_slice()).unwrap();
        assert_eq!(hcm.http_filters[0].name, "router");
        let Some(RouteSpecifier::RouteConfig(rc)) = hcm.route_specifier else { panic!("no inline route") };
        let action = rc.virtual_hosts[0].routes[0].action.clone().unwrap();
        let Action::Route(ra) = action else { panic!("not a route action") };
        assert_eq!(ra.cluster_specifier, Some(ClusterSpecifier::Cluster("dns:///h:1".into())));
    }

    #[test]
    fn the_cluster_asks_for_endpoints_over_ads() {
        let c = cluster("echo", Balancing::RoundRobin);
        let eds = c.eds_cluster_config.unwrap();
        assert_eq!(eds.service_name, "echo");
        assert!(matches!(eds.eds_config.unwrap().config_source_specifier, Some(ConfigSourceSpecifier::Ads(_))));
        assert_eq!(c.lb_policy, LbPolicy::RoundRobin as i32);
    }

    #[test]
    fn the_service_config_chooses_the_policy_where_xds_can_say_it() {
        assert_eq!(balancing_from_service_config(None), Balancing::RoundRobin);
        let rh = r#"{"loadBalancingConfig":[{"unknown":{}},{"ring_hash_experimental":{}}]}"#;
        assert_eq!(balancing_from_service_config(Some(rh)), Balancing::RingHash);
        let rr = r#"{"loadBalancingConfig":[{"round_robin":{}},{"ring_hash_experimental":{}}]}"#;
        assert_eq!(balancing_from_service_config(Some(rr)), Balancing::RoundRobin);
        assert_eq!(
            balancing_from_service_config(Some(r#"{"loadBalancingPolicy":"pick_first"}"#)),
            Balancing::RoundRobin
        );
    }

    #[test]
    fn old_grpc_core_never_gets_ring_hash() {
        // As seen from Debian's grpc++ 1.51.1 and grpcio 1.85.3.
        assert!(!client_takes_ring_hash("gRPC C-core linux", "C-core 29.0.0"));
        assert!(client_takes_ring_hash("gRPC C-core linux", "C-core 30.0.0"));
        assert!(client_takes_ring_hash("gRPC C-core linux Python", "C-core 58.0.0 Python 1.85.3"));
        assert!(!client_takes_ring_hash("gRPC C-core linux", ""));
        assert!(client_takes_ring_hash("gRPC Go", "1.85.0"));
        assert!(client_takes_ring_hash("gRPC Java", "1.85.1"));
    }

    #[test]
    fn host_names_are_told_from_ip_literals() {
        assert_eq!(split_host_port("echo.test:80"), Some(("echo.test", 80)));
        assert_eq!(split_host_port("127.0.0.1:80"), None);
        assert_eq!(split_host_port("[::1]:80"), None);
        assert_eq!(split_host_port("noport"), None);
    }
}
