//! One resolution round for a `dns:` target: the A/AAAA, SRV and TXT lookups it needs through one
//! hickory resolver, turned into an ordered address list, a chosen service config and the shortest TTL.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use tokio::task::JoinSet;

use super::service_config::{self, Chooser};
use super::DnsOptions;
use crate::error::{Error, ErrorKind};
use crate::update::{Address, AddressKind};

/// The most SRV records one name may contribute; more are ignored, so a huge answer cannot turn into
/// thousands of follow-up lookups.
pub const MAX_SRV_RECORDS: usize = 256;
/// Label of the SRV records that name grpclb balancers.
pub const GRPCLB_LABEL: &str = "_grpclb._tcp";

/// Where the lookups go and how long each may take, fixed when the resolver starts.
pub(crate) struct ClientConfig {
    config: ResolverConfig,
    opts: ResolverOpts,
    /// The server (or "system configuration") named in error messages.
    server: Arc<str>,
}

impl ClientConfig {
    /// `server` is the target's authority, which wins over the options' nameserver; with neither,
    /// /etc/resolv.conf decides (and /etc/hosts is consulted, as the system resolver would).
    pub(crate) fn new(server: Option<SocketAddr>, options: &DnsOptions) -> Result<Self, Error> {
        let (config, mut opts, server_name) = match server.or(options.nameserver) {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut ns.connections {
                    connection.port = addr.port();
                }
                let mut opts = ResolverOpts::default();
                opts.use_hosts_file = ResolveHosts::Never;
                (ResolverConfig::from_name_servers(vec![ns]), opts, addr.to_string())
            }
            None => {
                let (config, opts) = hickory_resolver::system_conf::read_system_conf().map_err(|e| {
                    Error::new(ErrorKind::Unavailable, format!("dns: cannot read the system DNS configuration: {e}"))
                })?;
                (config, opts, "the system's DNS servers".to_string())
            }
        };
        opts.timeout = options.query_timeout;
        opts.attempts = options.query_attempts as usize;
        opts.try_tcp_on_error = true;
        Ok(ClientConfig { config, opts, server: server_name.into() })
    }
}

/// A hickory resolver and the server it asks, cheap to clone into concurrent lookups.
#[derive(Clone)]
pub(crate) struct Client {
    resolver: TokioResolver,
    server: Arc<str>,
}

/// What one round found.
#[derive(Debug)]
pub(crate) struct Answer {
    pub endpoints: Vec<Address>,
    pub service_config: Option<String>,
    /// The shortest TTL of the records used.
    pub ttl: Option<Duration>,
}

/// What a target asks for, fixed when the resolver starts.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub host: String,
    pub port: u16,
    /// SRV label whose records give the backends instead of the host's A/AAAA records.
    pub srv_backends: Option<String>,
    pub grpclb: bool,
    /// `None`: TXT service config is off.
    pub chooser: Option<Chooser>,
}

/// The records of one type found at one name.
struct Found {
    records: Vec<RData>,
    ttl: Option<u32>,
    /// The name does not exist at all (as opposed to existing without records of this type).
    nxdomain: bool,
}

impl Found {
    fn missing(nxdomain: bool) -> Self {
        Found { records: Vec::new(), ttl: None, nxdomain }
    }
}

/// The addresses of one name, or why it has none.
struct Addresses {
    ips: Vec<IpAddr>,
    ttl: Option<u32>,
    nxdomain: bool,
}

fn min_ttl(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Client {
    /// Builds the resolver; must run on the runtime, where hickory spawns its connections.
    pub(crate) fn new(config: &ClientConfig) -> Result<Self, Error> {
        let resolver = TokioResolver::builder_with_config(config.config.clone(), TokioRuntimeProvider::default())
            .with_options(config.opts.clone())
            .build()
            .map_err(|e| Error::new(ErrorKind::Unavailable, format!("dns: cannot set up the DNS client: {e}")))?;
        Ok(Client { resolver, server: Arc::clone(&config.server) })
    }

    /// Runs every lookup `plan` needs. Any failure other than "no such records" fails the whole round,
    /// so the caller keeps the last good list rather than publishing half an answer.
    pub(crate) async fn resolve(&self, plan: &Plan) -> Result<Answer, String> {
        // Every round must see what the server says now, not what an earlier round cached.
        self.resolver.clear_cache();
        let host = plan.host.as_str();
        let backends = async {
            match &plan.srv_backends {
                Some(label) => self.srv_endpoints(&format!("{label}.{host}"), AddressKind::Backend).await,
                None => self.host_endpoints(host, plan.port).await,
            }
        };
        let balancers = async {
            if !plan.grpclb {
                return Ok(None);
            }
            match self.srv_endpoints(&format!("{GRPCLB_LABEL}.{host}"), AddressKind::Balancer).await {
                Ok(found) => Ok(Some(found)),
                Err(Missing(_)) => Ok(None),
                Err(Failed(message)) => Err(message),
            }
        };
        let config = async {
            match &plan.chooser {
                Some(chooser) => self.service_config(host, chooser).await,
                None => Ok((None, None)),
            }
        };
        let (backends, balancers, config) = tokio::join!(backends, balancers, config);
        let (service_config, config_ttl) = config?;
        let balancers = balancers?;
        let (mut endpoints, mut ttl) = match (backends, &balancers) {
            (Ok(found), _) => found,
            // gRPC accepts a name with balancers and no addresses of its own.
            (Err(Missing(_)), Some(_)) => (Vec::new(), None),
            (Err(Missing(message)), _) => return Err(message),
            (Err(Failed(message)), _) => return Err(message),
        };
        if let Some((lbs, lb_ttl)) = balancers {
            endpoints.extend(lbs);
            ttl = min_ttl(ttl, lb_ttl);
        }
        number_copies(&mut endpoints);
        let ttl = min_ttl(ttl, config_ttl).map(|s| Duration::from_secs(s.into()));
        Ok(Answer { endpoints, service_config, ttl })
    }

    /// The host's A and AAAA records as backends on `port`.
    async fn host_endpoints(&self, host: &str, port: u16) -> Result<(Vec<Address>, Option<u32>), Shortfall> {
        let found = self.addresses(host).await.map_err(Failed)?;
        if found.ips.is_empty() {
            return Err(Missing(self.missing_message(host, "A or AAAA", found.nxdomain)));
        }
        let endpoints =
            order_addresses(found.ips).into_iter().map(|ip| Address::from_socket_addr(SocketAddr::new(ip, port)));
        Ok((endpoints.collect(), found.ttl))
    }

    /// SRV records at `name`, each target resolved to its addresses, ordered by priority then weight.
    async fn srv_endpoints(&self, name: &str, kind: AddressKind) -> Result<(Vec<Address>, Option<u32>), Shortfall> {
        let found = self.lookup(name, RecordType::SRV).await.map_err(Failed)?;
        let mut srvs: Vec<_> = found
            .records
            .iter()
            .filter_map(|r| match r {
                // A target of "." says the service is deliberately not offered there (RFC 2782).
                RData::SRV(srv) if !srv.target.is_root() => Some(srv.clone()),
                _ => None,
            })
            .collect();
        if srvs.is_empty() {
            return Err(Missing(self.missing_message(name, "SRV", found.nxdomain)));
        }
        srvs.sort_by(|a, b| {
            (a.priority, std::cmp::Reverse(a.weight), a.target.to_ascii(), a.port).cmp(&(
                b.priority,
                std::cmp::Reverse(b.weight),
                b.target.to_ascii(),
                b.port,
            ))
        });
        srvs.truncate(MAX_SRV_RECORDS);

        let mut targets: BTreeMap<String, Option<Addresses>> =
            srvs.iter().map(|s| (s.target.to_ascii(), None)).collect();
        let mut lookups = JoinSet::new();
        for target in targets.keys() {
            let (client, target) = (self.clone(), target.clone());
            lookups.spawn(async move {
                let found = client.addresses(&target).await;
                (target, found)
            });
        }
        while let Some(joined) = lookups.join_next().await {
            let (target, found) = joined.map_err(|e| Failed(format!("dns: an SRV target lookup stopped: {e}")))?;
            targets.insert(target, Some(found.map_err(Failed)?));
        }

        let mut ttl = found.ttl;
        let mut endpoints = Vec::new();
        for srv in &srvs {
            let target = srv.target.to_ascii();
            let Some(Some(addresses)) = targets.get(&target) else {
                continue;
            };
            if addresses.ips.is_empty() {
                tracing::warn!("{}", self.missing_message(&target, "A or AAAA", addresses.nxdomain));
                continue;
            }
            ttl = min_ttl(ttl, addresses.ttl);
            let metadata = serde_json::json!({ "target": target, "priority": srv.priority }).to_string();
            for ip in order_addresses(addresses.ips.clone()) {
                let mut endpoint = Address::from_socket_addr(SocketAddr::new(ip, srv.port));
                endpoint.kind = kind;
                // Weight 0 means "rarely" in RFC 2782; the list's weights start at 1.
                endpoint.weight = u32::from(srv.weight.max(1));
                endpoint.metadata = Some(metadata.as_str().into());
                endpoints.push(endpoint);
            }
        }
        if endpoints.is_empty() {
            return Err(Missing(format!(
                "dns: no target of the SRV records at '{name}' (via {}) has an address",
                self.server
            )));
        }
        Ok((endpoints, ttl))
    }

    /// The TXT service config at `_grpc_config.<host>`: the chosen config and the record's TTL.
    async fn service_config(&self, host: &str, chooser: &Chooser) -> Result<(Option<String>, Option<u32>), String> {
        let name = format!("{}.{host}", service_config::TXT_LABEL);
        let found = self.lookup(&name, RecordType::TXT).await?;
        let records: Vec<Vec<Vec<u8>>> = found
            .records
            .iter()
            .filter_map(|r| match r {
                RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| s.to_vec()).collect()),
                _ => None,
            })
            .collect();
        let bad = |m: String| format!("dns: bad service config in TXT '{name}': {m}");
        let Some(json) = service_config::config_text(&records).map_err(bad)? else {
            return Ok((None, found.ttl));
        };
        let chosen = service_config::choose(&json, chooser).map_err(bad)?;
        Ok((chosen, found.ttl))
    }

    /// A and AAAA records of `name`, looked up together.
    async fn addresses(&self, name: &str) -> Result<Addresses, String> {
        let (v4, v6) = tokio::join!(self.lookup(name, RecordType::A), self.lookup(name, RecordType::AAAA));
        let (v4, v6) = (v4?, v6?);
        let ips = v4.records.iter().chain(&v6.records).filter_map(|r| match r {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        });
        Ok(Addresses { ips: ips.collect(), ttl: min_ttl(v4.ttl, v6.ttl), nxdomain: v4.nxdomain && v6.nxdomain })
    }

    /// Records of one type at `name`; "no such name" and "no such records" are answers, not errors.
    async fn lookup(&self, name: &str, record_type: RecordType) -> Result<Found, String> {
        match self.resolver.lookup(name, record_type).await {
            Ok(lookup) => {
                // The answer may start with CNAMEs; their TTLs count, their data is not ours.
                let ttl = lookup.answers().iter().map(|r| r.ttl).min();
                let records =
                    lookup.answers().iter().filter(|r| r.record_type() == record_type).map(|r| r.data.clone());
                Ok(Found { records: records.collect(), ttl, nxdomain: false })
            }
            Err(e) if e.is_no_records_found() => Ok(Found::missing(e.is_nx_domain())),
            Err(e) => {
                Err(format!("dns: {record_type} lookup of '{name}' via {} failed: {}", self.server, describe(&e)))
            }
        }
    }

    fn missing_message(&self, name: &str, what: &str, nxdomain: bool) -> String {
        match nxdomain {
            true => format!("dns: '{name}' does not exist (NXDOMAIN from {})", self.server),
            false => format!("dns: '{name}' has no {what} records (asked {})", self.server),
        }
    }
}

/// Why a part of a round gave no entries: the name has none (which other parts may make up for), or
/// the lookup failed.
enum Shortfall {
    Missing(String),
    Failed(String),
}
use Shortfall::{Failed, Missing};

fn describe(e: &NetError) -> String {
    match e {
        NetError::Timeout => "no answer in time".into(),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => "the server failed (SERVFAIL)".into(),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => "the server refused (REFUSED)".into(),
        other => other.to_string(),
    }
}

/// Orders one name's addresses by a documented simplification of RFC 6724: duplicates removed, each
/// family sorted (so an unchanged set always gives the same list), then IPv6 and IPv4 interleaved
/// starting with IPv6 (RFC 6724's default precedence), as RFC 8305 does so that a host without IPv6
/// reaches an IPv4 address second.
pub(crate) fn order_addresses(mut ips: Vec<IpAddr>) -> Vec<IpAddr> {
    ips.sort();
    ips.dedup();
    let (v6, v4): (Vec<_>, Vec<_>) = ips.into_iter().partition(IpAddr::is_ipv6);
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let (mut v6, mut v4) = (v6.into_iter(), v4.into_iter());
    loop {
        match (v6.next(), v4.next()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Entries that share an address and kind (two SRV records naming one server) get copy numbers
/// 0, 1, ... so that stacks which merge equal addresses still keep them apart.
fn number_copies(endpoints: &mut [Address]) {
    let mut seen: HashMap<(String, AddressKind), u32> = HashMap::new();
    for endpoint in endpoints {
        let count = seen.entry((endpoint.address.to_string(), endpoint.kind)).or_insert(0);
        endpoint.copy_index = *count;
        *count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn addresses_are_sorted_per_family_and_interleaved_ipv6_first() {
        let got = order_addresses(ips(&["127.0.0.2", "127.0.0.1", "::2", "127.0.0.3", "::1", "127.0.0.1"]));
        assert_eq!(got, ips(&["::1", "127.0.0.1", "::2", "127.0.0.2", "127.0.0.3"]));
        assert_eq!(order_addresses(ips(&["127.0.0.2", "127.0.0.1"])), ips(&["127.0.0.1", "127.0.0.2"]));
    }

    #[test]
    fn equal_addresses_get_increasing_copy_numbers() {
        let mut list: Vec<Address> = ["1.1.1.1:1", "2.2.2.2:1", "1.1.1.1:1"]
            .iter()
            .map(|a| Address::from_socket_addr(a.parse().unwrap()))
            .collect();
        number_copies(&mut list);
        assert_eq!(list.iter().map(|e| e.copy_index).collect::<Vec<_>>(), vec![0, 0, 1]);
    }
}
