//! Target strings: the one parser every binding uses, following gRPC's naming spec
//! (`scheme://authority/endpoint` and the short forms gRPC accepts) plus libgnaming's `pass`, `etcd` and
//! `zk`, and the `?query` that sets a resolver's policies.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use crate::error::{Error, ErrorKind};
use crate::resolver::health;
use crate::resolver::policy::{EmptyPolicy, Policy, MAX_MIN_ZONE};
use crate::resolver::subset::MAX_SUBSET;

/// The most connections a `#N` suffix may ask for per address.
pub const MAX_COPIES: u32 = 1000;
/// The longest target string accepted, in bytes.
pub const MAX_TARGET_LEN: usize = 4096;
/// Port used by `dns:` targets that name none (gRPC's default).
pub const DNS_DEFAULT_PORT: u16 = 443;
/// Port of a DNS server named in a `dns://server/` authority without one.
pub const DNS_SERVER_DEFAULT_PORT: u16 = 53;
/// Longest `unix:` path: `sun_path` holds 108 bytes including the terminating NUL.
const MAX_UNIX_PATH: usize = 107;

/// The schemes libgnaming serves, in the order error messages list them.
pub const SCHEMES: &[&str] = &["etcd", "dns", "pass", "passthrough", "ipv4", "ipv6", "unix", "zk"];

/// A parsed target: what to resolve, with no I/O done yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `ipv4:1.2.3.4:80,5.6.7.8:81`
    Ipv4(Vec<SocketAddr>),
    /// `ipv6:[::1]:80,[::2]:81`
    Ipv6(Vec<SocketAddr>),
    /// `unix:/path`, `unix:///path` or `unix:relative/path`
    Unix(String),
    /// `passthrough:///anything`: handed to the connector verbatim.
    Passthrough(String),
    /// `pass:///a:1#2,b:2`: a static list with a connection count per address.
    Pass(Vec<PassEntry>),
    /// `etcd://[cluster]/service[#N]`
    Etcd(EtcdTarget),
    /// `dns://[server]/host[:port]`, `dns:host[:port]`, or a bare `host[:port]`.
    Dns(DnsTarget),
    /// `zk://[host:port,...|NAME]/path/to/service[#N]`
    Zk(ZkTarget),
}

/// A host as written in a target: an IP literal or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

/// One `host:port[#N]` item of a `pass:` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassEntry {
    pub host: Host,
    pub port: u16,
    pub copies: u32,
}

/// Which etcd cluster a target names in its authority.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClusterRef {
    /// Empty authority: the process default (`GNAMING_ETCD_ENDPOINTS`, else 127.0.0.1:2379).
    Default,
    /// `host:port`: that single endpoint.
    Endpoint(String),
    /// A name configured through the cluster API.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTarget {
    pub cluster: ClusterRef,
    /// The key prefix, without the trailing `/`: keys are `<service>/<addr>`.
    pub service: String,
    pub copies: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsTarget {
    /// The DNS server from the authority; `None` means the system configuration.
    pub server: Option<SocketAddr>,
    pub host: Host,
    pub port: u16,
}

/// Which ZooKeeper ensemble a target names in its authority.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EnsembleRef {
    /// Empty authority: the process default (configured as "", else `GNAMING_ZK_SERVERS`, a connect
    /// string that may end in a chroot, else 127.0.0.1:2181).
    Default,
    /// `host:port,...` (IPv6 in brackets), in the order written, with the default's credentials.
    Servers(Vec<String>),
    /// A name configured through the ZooKeeper ensemble API (`gn_zk_register`).
    Named(String),
}

/// A ZooKeeper service: the children of its node are its instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkTarget {
    pub ensemble: EnsembleRef,
    /// The service's node, from the ensemble's root (or the default's chroot): `/services/echo`.
    pub path: String,
    pub copies: u32,
}

impl Target {
    /// Parses a target string; the error names the part that is wrong.
    pub fn parse(input: &str) -> Result<Target, Error> {
        Self::parse_with_policy(input).map(|(target, _)| target)
    }

    /// Parses a target string and the policies its `?query` sets.
    pub fn parse_with_policy(input: &str) -> Result<(Target, Policy), Error> {
        parse_all(input).map_err(|(kind, msg)| Error::new(kind, format!("invalid target '{}': {msg}", shorten(input))))
    }

    /// The scheme that serves this target.
    pub fn scheme(&self) -> &'static str {
        match self {
            Target::Ipv4(_) => "ipv4",
            Target::Ipv6(_) => "ipv6",
            Target::Unix(_) => "unix",
            Target::Passthrough(_) => "passthrough",
            Target::Pass(_) => "pass",
            Target::Etcd(_) => "etcd",
            Target::Dns(_) => "dns",
            Target::Zk(_) => "zk",
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

impl Host {
    /// `host:port` with IPv6 in brackets, the form every gRPC stack accepts.
    pub fn with_port(&self, port: u16) -> String {
        format!("{self}:{port}")
    }
}

type ParseResult<T> = Result<T, (ErrorKind, String)>;

fn bad<T>(msg: impl Into<String>) -> ParseResult<T> {
    Err((ErrorKind::InvalidTarget, msg.into()))
}

/// Error messages quote the input; a huge one is cut so the message stays readable.
fn shorten(input: &str) -> String {
    const KEEP: usize = 120;
    if input.len() <= KEEP {
        return input.escape_debug().to_string();
    }
    let mut end = KEEP;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", input[..end].escape_debug(), input.len())
}

fn parse_all(input: &str) -> ParseResult<(Target, Policy)> {
    if input.is_empty() {
        return bad("the target is empty");
    }
    if input.len() > MAX_TARGET_LEN {
        return bad(format!("longer than {MAX_TARGET_LEN} bytes"));
    }
    if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return bad(format!("contains the character {:?}; targets have no spaces or control characters", c));
    }
    // `passthrough:` hands its endpoint on verbatim: a '?' in it belongs to the endpoint.
    let passthrough = split_scheme(input).is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("passthrough"));
    let Some(q) = input.find('?').filter(|_| !passthrough) else { return Ok((parse(input)?, Policy::default())) };
    // As in a URI, the query ends at a '#': `etcd:///echo?select.version=v2#2`.
    let end = input[q..].find('#').map_or(input.len(), |h| q + h);
    if input[end..].contains('?') {
        return bad("query: a '?' after the query's '#' (write a '#' in a value as %23)");
    }
    let base = format!("{}{}", &input[..q], &input[end..]);
    let target = parse(&base)?;
    Ok((target, parse_query(&input[q + 1..end])?))
}

/// The query's keys, as error messages list them.
const QUERY_KEYS: &str = "select.<metadata key>, empty, prefer-zone, min-zone, subset, client-id, health";

/// `key=value&...`, percent-decoded; every key at most once, every value non-empty.
fn parse_query(query: &str) -> ParseResult<Policy> {
    let mut policy = Policy::default();
    if query.is_empty() {
        return Ok(policy);
    }
    let mut seen: Vec<String> = Vec::new();
    for item in query.split('&') {
        if item.is_empty() {
            return bad("query: an empty parameter (stray '&')");
        }
        let (raw_key, raw_value) = match item.split_once('=') {
            Some(kv) => kv,
            None => (item, ""),
        };
        let key =
            percent_decode(raw_key).map_err(|m| (ErrorKind::InvalidTarget, format!("query key '{raw_key}': {m}")))?;
        let key_error = |m: String| (ErrorKind::InvalidTarget, format!("query key '{key}': {m}"));
        if key.is_empty() {
            return bad(format!("query: a parameter has no key ('{item}')"));
        }
        if seen.contains(&key) {
            return Err(key_error("given twice".into()));
        }
        seen.push(key.clone());
        let value = percent_decode(raw_value).map_err(key_error)?;
        if value.is_empty() {
            return Err(key_error(format!("the value is empty (write {key}=value)")));
        }
        match key.as_str() {
            "empty" => {
                let policy_named = EmptyPolicy::from_name(&value);
                policy.empty =
                    Some(policy_named.ok_or_else(|| key_error(format!("'{value}' is neither keep nor pass")))?);
            }
            "prefer-zone" => policy.prefer_zone = Some(value),
            "min-zone" => {
                policy.min_zone = Some(number_from_1(&value, MAX_MIN_ZONE).map_err(key_error)?);
            }
            "subset" => policy.subset = Some(number_from_1(&value, MAX_SUBSET).map_err(key_error)?),
            "client-id" => policy.client_id = Some(value),
            "health" => policy.health = Some(health::from_query_value(&value)),
            _ => match key.strip_prefix("select.") {
                Some("") => return Err(key_error("names no metadata key (write select.<key>=value)".into())),
                Some(meta) => {
                    policy.selectors.insert(meta.to_string(), value);
                }
                None => return bad(format!("query: unknown key '{key}' (keys: {QUERY_KEYS})")),
            },
        }
    }
    Ok(policy)
}

/// A query value that must be a plain decimal number from 1 to `max`.
fn number_from_1(value: &str, max: u32) -> Result<u32, String> {
    let digits = value.bytes().all(|b| b.is_ascii_digit());
    value
        .parse::<u32>()
        .ok()
        .filter(|n| digits && (1..=max).contains(n))
        .ok_or(format!("'{value}' is not a number from 1 to {max}"))
}

/// Decodes `%XX` escapes; the result must be UTF-8. '+' stays '+', as in gRPC's URI parser.
pub(crate) fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
            match hex.and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()) {
                Some(b) => out.push(b),
                None => return Err(format!("'{}' is not a %XX escape", text[i..].chars().take(3).collect::<String>())),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escapes that decode to invalid UTF-8".to_string())
}

fn parse(input: &str) -> ParseResult<Target> {
    let Some((scheme, rest)) = split_scheme(input) else {
        // No scheme at all ("host:port", "[::1]:80"): gRPC's default scheme is dns.
        return parse_dns_endpoint(None, input);
    };
    let lower = scheme.to_ascii_lowercase();
    let (authority, endpoint) = split_authority(rest);
    match lower.as_str() {
        "ipv4" | "ipv6" => {
            no_authority(&lower, authority)?;
            parse_ip_list(&lower, endpoint)
        }
        "unix" => {
            no_authority("unix", authority)?;
            parse_unix(authority.is_some(), endpoint)
        }
        "passthrough" => {
            let endpoint = endpoint.trim_start_matches('/');
            if endpoint.is_empty() {
                return bad("passthrough: the endpoint after 'passthrough:///' is empty");
            }
            Ok(Target::Passthrough(endpoint.to_string()))
        }
        "pass" => {
            no_authority("pass", authority)?;
            parse_pass(endpoint)
        }
        "etcd" => parse_etcd(authority, endpoint),
        "dns" => parse_dns_endpoint(authority, endpoint),
        "zk" => parse_zk(authority, endpoint),
        _ => {
            // "localhost:50051" reads as scheme "localhost"; gRPC falls back to dns for such targets.
            match parse_host_port(input, Some(DNS_DEFAULT_PORT), true) {
                Ok((host, port)) => Ok(Target::Dns(DnsTarget { server: None, host, port })),
                Err(_) => Err((
                    ErrorKind::UnsupportedScheme,
                    format!("unknown scheme '{scheme}' (libgnaming serves: {})", SCHEMES.join(", ")),
                )),
            }
        }
    }
}

/// Splits `scheme:rest` when the text before the first ':' is a URI scheme (RFC 3986 §3.1).
fn split_scheme(input: &str) -> Option<(&str, &str)> {
    let colon = input.find(':')?;
    let scheme = &input[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        return None;
    }
    Some((scheme, &input[colon + 1..]))
}

/// `//authority/endpoint` → (Some(authority), endpoint); anything else → (None, rest).
fn split_authority(rest: &str) -> (Option<&str>, &str) {
    match rest.strip_prefix("//") {
        Some(after) => match after.find('/') {
            Some(slash) => (Some(&after[..slash]), &after[slash + 1..]),
            None => (Some(after), ""),
        },
        None => (None, rest),
    }
}

fn no_authority(scheme: &str, authority: Option<&str>) -> ParseResult<()> {
    match authority {
        Some(a) if !a.is_empty() => bad(format!("{scheme}: takes no authority, found '{a}' (write {scheme}:///...)")),
        _ => Ok(()),
    }
}

fn parse_ip_list(scheme: &str, endpoint: &str) -> ParseResult<Target> {
    let list = endpoint.trim_start_matches('/');
    if list.is_empty() {
        return bad(format!("{scheme}: no addresses given"));
    }
    let mut addrs = Vec::new();
    for (i, item) in list.split(',').enumerate() {
        if item.is_empty() {
            return bad(format!("{scheme}: address #{} is empty (stray comma?)", i + 1));
        }
        let addr = if scheme == "ipv4" { parse_ipv4_port(item) } else { parse_ipv6_port(item) };
        let addr = addr.map_err(|m| (ErrorKind::InvalidTarget, format!("{scheme}: '{item}': {m}")))?;
        if addrs.contains(&addr) {
            return bad(format!("{scheme}: address '{item}' is listed twice"));
        }
        addrs.push(addr);
    }
    Ok(if scheme == "ipv4" { Target::Ipv4(addrs) } else { Target::Ipv6(addrs) })
}

fn parse_ipv4_port(item: &str) -> Result<SocketAddr, String> {
    let (ip, port) = item.rsplit_once(':').ok_or("needs a port, as in 1.2.3.4:80")?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("'{ip}' is not an IPv4 address"))?;
    Ok(SocketAddr::new(IpAddr::V4(ip), parse_port(port)?))
}

fn parse_ipv6_port(item: &str) -> Result<SocketAddr, String> {
    let inner = item.strip_prefix('[').ok_or("IPv6 addresses are written in brackets, as in [::1]:80")?;
    let (ip, after) = inner.split_once(']').ok_or("missing ']'")?;
    let port = after.strip_prefix(':').ok_or("needs a port after ']', as in [::1]:80")?;
    let port = parse_port(port)?;
    let (ip, scope) = match ip.split_once('%') {
        Some((ip, scope)) => {
            let scope: u32 = scope.parse().map_err(|_| format!("zone '{scope}' must be a numeric interface index"))?;
            (ip, scope)
        }
        None => (ip, 0),
    };
    let ip: Ipv6Addr = ip.parse().map_err(|_| format!("'{ip}' is not an IPv6 address"))?;
    Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)))
}

fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Err("the port is empty".into());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port '{port}' is not a number"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err("port 0 cannot be connected to".into()),
        Ok(p) => Ok(p),
        Err(_) => Err(format!("port '{port}' is larger than 65535")),
    }
}

fn parse_unix(had_authority: bool, endpoint: &str) -> ParseResult<Target> {
    // `unix:///p` leaves "p" after the authority's slash; the slash belongs to the path.
    let path = if had_authority { format!("/{endpoint}") } else { endpoint.to_string() };
    if path.is_empty() || path == "/" {
        return bad("unix: the socket path is empty");
    }
    if path.len() > MAX_UNIX_PATH {
        return bad(format!("unix: the socket path is {} bytes; at most {MAX_UNIX_PATH} fit", path.len()));
    }
    Ok(Target::Unix(path))
}

fn parse_pass(endpoint: &str) -> ParseResult<Target> {
    let list = endpoint.trim_start_matches('/');
    if list.is_empty() {
        return bad("pass: no addresses given (write pass:///host:port[#N],...)");
    }
    let mut entries: Vec<PassEntry> = Vec::new();
    for (i, item) in list.split(',').enumerate() {
        if item.is_empty() {
            return bad(format!("pass: address #{} is empty (stray comma?)", i + 1));
        }
        let (hostport, copies) =
            split_copies(item).map_err(|m| (ErrorKind::InvalidTarget, format!("pass: '{item}': {m}")))?;
        let (host, port) = parse_host_port(hostport, None, false)
            .map_err(|m| (ErrorKind::InvalidTarget, format!("pass: '{item}': {m}")))?;
        if entries.iter().any(|e| e.host == host && e.port == port) {
            return bad(format!("pass: '{hostport}' is listed twice (use #N for N connections)"));
        }
        entries.push(PassEntry { host, port, copies });
    }
    Ok(Target::Pass(entries))
}

/// `text#N` → (text, N); `text` → (text, 1).
fn split_copies(item: &str) -> Result<(&str, u32), String> {
    let Some((text, n)) = item.rsplit_once('#') else { return Ok((item, 1)) };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'#{n}' must be '#' and a number of connections from 1 to {MAX_COPIES}"));
    }
    match n.parse::<u32>() {
        Ok(c) if (1..=MAX_COPIES).contains(&c) => Ok((text, c)),
        _ => Err(format!("'#{n}': the number of connections must be from 1 to {MAX_COPIES}")),
    }
}

fn parse_etcd(authority: Option<&str>, endpoint: &str) -> ParseResult<Target> {
    let cluster = match authority {
        None => return bad("etcd: write etcd:///service or etcd://cluster/service"),
        Some("") => ClusterRef::Default,
        Some(a) if a.contains(':') => {
            let (host, port) = parse_host_port(a, None, false)
                .map_err(|m| (ErrorKind::InvalidTarget, format!("etcd: endpoint '{a}': {m}")))?;
            ClusterRef::Endpoint(host.with_port(port))
        }
        Some(a) => {
            if !a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                return bad(format!("etcd: cluster name '{a}' may hold only letters, digits, '-', '_' and '.'"));
            }
            ClusterRef::Named(a.to_string())
        }
    };
    let (service, copies) =
        split_copies(endpoint).map_err(|m| (ErrorKind::InvalidTarget, format!("etcd: '{endpoint}': {m}")))?;
    if service.is_empty() {
        return bad("etcd: the service name is empty");
    }
    if service.ends_with('/') {
        return bad(format!("etcd: service '{service}' ends with '/'; keys are <service>/<address>"));
    }
    // One leading '/' is the root of etcd's key space, where Kratos and go-micro keep their keys
    // (`etcd:////microservices/echo` reads `/microservices/echo/<id>`).
    if service.strip_prefix('/').unwrap_or(service).split('/').any(str::is_empty) {
        return bad(format!("etcd: service '{service}' has an empty path segment"));
    }
    if service.contains('#') {
        return bad(format!("etcd: service '{service}' contains '#'"));
    }
    Ok(Target::Etcd(EtcdTarget { cluster, service: service.to_string(), copies }))
}

/// `zk://host:port[,host:port]/path[#N]`, `zk://NAME/path[#N]` or `zk:///path[#N]`. The whole path
/// after the authority is the node's, from the ensemble's root: a URL cannot tell a chroot from the
/// path below it, and for reading they add up to the same node; a chroot belongs to the connect
/// string (a named ensemble's, or `GNAMING_ZK_SERVERS`). An authority without a ':' and without a ','
/// is a name, as in `etcd://NAME/svc`: a server is always written with its port.
fn parse_zk(authority: Option<&str>, endpoint: &str) -> ParseResult<Target> {
    let Some(authority) = authority else {
        return bad("zk: write zk://host:port[,host:port]/path, zk://NAME/path or zk:///path");
    };
    let ensemble = if authority.is_empty() {
        EnsembleRef::Default
    } else if !authority.contains([':', ',', '[']) {
        if !authority.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return bad(format!("zk: ensemble name '{authority}' may hold only letters, digits, '-', '_' and '.'"));
        }
        EnsembleRef::Named(authority.to_string())
    } else {
        let mut servers: Vec<String> = Vec::new();
        for (i, item) in authority.split(',').enumerate() {
            if item.is_empty() {
                return bad(format!("zk: server #{} is empty (stray comma?)", i + 1));
            }
            let (host, port) = parse_host_port(item, None, false)
                .map_err(|m| (ErrorKind::InvalidTarget, format!("zk: server '{item}': {m}")))?;
            let server = host.with_port(port);
            if servers.contains(&server) {
                return bad(format!("zk: server '{item}' is listed twice"));
            }
            servers.push(server);
        }
        EnsembleRef::Servers(servers)
    };
    let (path, copies) =
        split_copies(endpoint).map_err(|m| (ErrorKind::InvalidTarget, format!("zk: '{endpoint}': {m}")))?;
    if path.is_empty() {
        return bad("zk: the node path is empty (write zk://host:port/path/to/service)");
    }
    if path.ends_with('/') {
        return bad(format!("zk: path '/{path}' ends with '/'"));
    }
    for segment in path.split('/') {
        match segment {
            "" => return bad(format!("zk: path '/{path}' has an empty segment")),
            "." | ".." => {
                return bad(format!("zk: path '/{path}' has a '{segment}' segment; ZooKeeper paths are absolute"))
            }
            _ => {}
        }
    }
    if path.contains('#') {
        return bad(format!("zk: path '/{path}' contains '#'"));
    }
    Ok(Target::Zk(ZkTarget { ensemble, path: format!("/{path}"), copies }))
}

fn parse_dns_endpoint(authority: Option<&str>, endpoint: &str) -> ParseResult<Target> {
    let server = match authority {
        None | Some("") => None,
        Some(a) => {
            Some(parse_dns_server(a).map_err(|m| (ErrorKind::InvalidTarget, format!("dns: server '{a}': {m}")))?)
        }
    };
    if endpoint.is_empty() {
        return bad("dns: the host name is empty");
    }
    let (host, port) = parse_host_port(endpoint, Some(DNS_DEFAULT_PORT), true)
        .map_err(|m| (ErrorKind::InvalidTarget, format!("dns: '{endpoint}': {m}")))?;
    Ok(Target::Dns(DnsTarget { server, host, port }))
}

fn parse_dns_server(text: &str) -> Result<SocketAddr, String> {
    let (host, port) = parse_host_port(text, Some(DNS_SERVER_DEFAULT_PORT), true)?;
    match host {
        Host::Ip(ip) => Ok(SocketAddr::new(ip, port)),
        Host::Name(_) => Err("a DNS server must be an IP address".into()),
    }
}

/// Parses `host[:port]`, `[v6][:port]`, or (when `bare_v6`) an unbracketed IPv6 address with no port.
fn parse_host_port(text: &str, default_port: Option<u16>, bare_v6: bool) -> Result<(Host, u16), String> {
    let need_port = || default_port.ok_or_else(|| "needs a port, as in host:80".to_string());
    if let Some(inner) = text.strip_prefix('[') {
        let (ip, after) = inner.split_once(']').ok_or("missing ']'")?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| format!("'{ip}' is not an IPv6 address"))?;
        let port = match after {
            "" => need_port()?,
            _ => parse_port(after.strip_prefix(':').ok_or_else(|| format!("unexpected '{after}' after ']'"))?)?,
        };
        return Ok((Host::Ip(IpAddr::V6(ip)), port));
    }
    if text.matches(':').count() >= 2 {
        return match text.parse::<Ipv6Addr>() {
            Ok(ip) if bare_v6 => Ok((Host::Ip(IpAddr::V6(ip)), need_port()?)),
            Ok(_) => Err("an IPv6 address with a port is written in brackets, as in [::1]:80".into()),
            Err(_) => Err("too many ':' (IPv6 addresses go in brackets)".into()),
        };
    }
    let (host, port) = match text.split_once(':') {
        Some((host, port)) => (host, parse_port(port)?),
        None => (text, need_port()?),
    };
    Ok((parse_host(host)?, port))
}

fn parse_host(host: &str) -> Result<Host, String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 {
        return Err("a host name has at most 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("host '{host}' has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!("label '{label}' is longer than 63 characters"));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(format!("host '{host}' contains {c:?}"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label '{label}' starts or ends with '-'"));
        }
    }
    if name.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!("'{host}' is neither an IPv4 address nor a host name"));
    }
    Ok(Host::Name(host.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Target {
        Target::parse(s).unwrap_or_else(|e| panic!("'{s}' should parse, got: {e}"))
    }

    fn v4(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_lists_parse_with_and_without_slashes() {
        assert_eq!(ok("ipv4:1.2.3.4:80,5.6.7.8:81"), Target::Ipv4(vec![v4("1.2.3.4:80"), v4("5.6.7.8:81")]));
        assert_eq!(ok("ipv4:///127.0.0.1:1"), Target::Ipv4(vec![v4("127.0.0.1:1")]));
        assert_eq!(ok("IPV4:127.0.0.1:1"), Target::Ipv4(vec![v4("127.0.0.1:1")]));
    }

    #[test]
    fn ipv6_lists_parse_in_brackets() {
        assert_eq!(ok("ipv6:[::1]:80"), Target::Ipv6(vec![v4("[::1]:80")]));
        assert_eq!(ok("ipv6:///[::1]:80,[fe80::1]:81"), Target::Ipv6(vec![v4("[::1]:80"), v4("[fe80::1]:81")]));
        let Target::Ipv6(a) = ok("ipv6:[fe80::1%2]:80") else { panic!() };
        let SocketAddr::V6(a) = a[0] else { panic!() };
        assert_eq!(a.scope_id(), 2);
    }

    #[test]
    fn unix_paths_keep_their_slashes() {
        assert_eq!(ok("unix:/tmp/s.sock"), Target::Unix("/tmp/s.sock".into()));
        assert_eq!(ok("unix:///tmp/s.sock"), Target::Unix("/tmp/s.sock".into()));
        assert_eq!(ok("unix:relative.sock"), Target::Unix("relative.sock".into()));
    }

    #[test]
    fn passthrough_keeps_the_endpoint_verbatim() {
        assert_eq!(ok("passthrough:///host:50051"), Target::Passthrough("host:50051".into()));
        assert_eq!(ok("passthrough:host:1"), Target::Passthrough("host:1".into()));
    }

    #[test]
    fn pass_reads_connection_counts() {
        let Target::Pass(e) = ok("pass:///127.0.0.1:50051#2,127.0.0.1:50052") else { panic!() };
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].port, e[0].copies), (50051, 2));
        assert_eq!((e[1].port, e[1].copies), (50052, 1));
        let Target::Pass(e) = ok("pass:///[::1]:5#3,svc.local:7") else { panic!() };
        assert_eq!(e[0].host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(e[1].host, Host::Name("svc.local".into()));
        assert_eq!(e[0].copies, 3);
    }

    #[test]
    fn etcd_targets_name_default_endpoint_or_named_clusters() {
        assert_eq!(
            ok("etcd:///svc#2"),
            Target::Etcd(EtcdTarget { cluster: ClusterRef::Default, service: "svc".into(), copies: 2 })
        );
        assert_eq!(
            ok("etcd://10.0.0.1:2379/services/echo"),
            Target::Etcd(EtcdTarget {
                cluster: ClusterRef::Endpoint("10.0.0.1:2379".into()),
                service: "services/echo".into(),
                copies: 1
            })
        );
        assert_eq!(
            ok("etcd://prod/echo"),
            Target::Etcd(EtcdTarget { cluster: ClusterRef::Named("prod".into()), service: "echo".into(), copies: 1 })
        );
        assert_eq!(
            ok("etcd:////microservices/echo"),
            Target::Etcd(EtcdTarget { cluster: ClusterRef::Default, service: "/microservices/echo".into(), copies: 1 })
        );
        let Target::Etcd(t) = ok("etcd://[::1]:2379/echo") else { panic!() };
        assert_eq!(t.cluster, ClusterRef::Endpoint("[::1]:2379".into()));
    }

    #[test]
    fn dns_targets_default_to_port_443_and_the_system_server() {
        let dns = |server: Option<&str>, host: Host, port| {
            Target::Dns(DnsTarget { server: server.map(|s| s.parse().unwrap()), host, port })
        };
        let name = |n: &str| Host::Name(n.into());
        assert_eq!(ok("dns:example.com"), dns(None, name("example.com"), 443));
        assert_eq!(ok("dns:example.com:8080"), dns(None, name("example.com"), 8080));
        assert_eq!(ok("dns:///example.com:8080"), dns(None, name("example.com"), 8080));
        assert_eq!(ok("dns://127.0.0.1:5353/example.com:1"), dns(Some("127.0.0.1:5353"), name("example.com"), 1));
        assert_eq!(ok("dns://127.0.0.1/example.com"), dns(Some("127.0.0.1:53"), name("example.com"), 443));
        assert_eq!(ok("dns://[::1]:53/x.test"), dns(Some("[::1]:53"), name("x.test"), 443));
        assert_eq!(ok("dns:[::1]:80"), dns(None, Host::Ip("::1".parse().unwrap()), 80));
        assert_eq!(ok("dns:///1.2.3.4"), dns(None, Host::Ip("1.2.3.4".parse().unwrap()), 443));
    }

    #[test]
    fn targets_without_a_scheme_are_dns_names_as_in_grpc() {
        let Target::Dns(t) = ok("localhost:50051") else { panic!() };
        assert_eq!((t.host, t.port), (Host::Name("localhost".into()), 50051));
        let Target::Dns(t) = ok("127.0.0.1:9") else { panic!() };
        assert_eq!(t.port, 9);
        let Target::Dns(t) = ok("[::1]:9") else { panic!() };
        assert_eq!(t.host, Host::Ip("::1".parse().unwrap()));
        let Target::Dns(t) = ok("::1") else { panic!() };
        assert_eq!(t.port, 443);
        let Target::Dns(t) = ok("my-host") else { panic!() };
        assert_eq!(t.host, Host::Name("my-host".into()));
    }

    #[test]
    fn bad_targets_are_rejected_with_a_message_naming_the_bad_part() {
        let cases: &[(&str, ErrorKind, &str)] = &[
            ("", ErrorKind::InvalidTarget, "empty"),
            ("etcd:///svc name", ErrorKind::InvalidTarget, "' '"),
            ("etcd:///svc\n", ErrorKind::InvalidTarget, "'\\n'"),
            ("foo:bar", ErrorKind::UnsupportedScheme, "unknown scheme 'foo'"),
            ("http://x/y", ErrorKind::UnsupportedScheme, "unknown scheme 'http'"),
            ("ipv4:", ErrorKind::InvalidTarget, "no addresses"),
            ("ipv4:1.2.3.4", ErrorKind::InvalidTarget, "needs a port"),
            ("ipv4:1.2.3:80", ErrorKind::InvalidTarget, "'1.2.3' is not an IPv4"),
            ("ipv4:1.2.3.4:80,", ErrorKind::InvalidTarget, "#2 is empty"),
            ("ipv4:1.2.3.4:0", ErrorKind::InvalidTarget, "port 0"),
            ("ipv4:1.2.3.4:65536", ErrorKind::InvalidTarget, "larger than 65535"),
            ("ipv4:1.2.3.4:http", ErrorKind::InvalidTarget, "not a number"),
            ("ipv4:1.2.3.4:1,1.2.3.4:1", ErrorKind::InvalidTarget, "listed twice"),
            ("ipv4://host/1.2.3.4:80", ErrorKind::InvalidTarget, "takes no authority"),
            ("ipv4:[::1]:80", ErrorKind::InvalidTarget, "not an IPv4"),
            ("ipv6:::1:80", ErrorKind::InvalidTarget, "brackets"),
            ("ipv6:[::1]", ErrorKind::InvalidTarget, "needs a port"),
            ("ipv6:[::1:80", ErrorKind::InvalidTarget, "missing ']'"),
            ("ipv6:[zz::1]:80", ErrorKind::InvalidTarget, "not an IPv6"),
            ("ipv6:[fe80::1%eth0]:80", ErrorKind::InvalidTarget, "numeric interface"),
            ("unix:", ErrorKind::InvalidTarget, "path is empty"),
            ("unix:///", ErrorKind::InvalidTarget, "path is empty"),
            ("unix://host/tmp/s", ErrorKind::InvalidTarget, "takes no authority"),
            ("passthrough:///", ErrorKind::InvalidTarget, "endpoint"),
            ("pass:///", ErrorKind::InvalidTarget, "no addresses"),
            ("pass:///a:1#0", ErrorKind::InvalidTarget, "from 1 to 1000"),
            ("pass:///a:1#", ErrorKind::InvalidTarget, "number of connections"),
            ("pass:///a:1#x", ErrorKind::InvalidTarget, "number of connections"),
            ("pass:///a:1#1001", ErrorKind::InvalidTarget, "from 1 to 1000"),
            ("pass:///a:1#-1", ErrorKind::InvalidTarget, "number of connections"),
            ("pass:///a", ErrorKind::InvalidTarget, "needs a port"),
            ("pass:///a:1,,b:2", ErrorKind::InvalidTarget, "#2 is empty"),
            ("pass:///a:1,a:1#2", ErrorKind::InvalidTarget, "listed twice"),
            ("pass:///::1:80", ErrorKind::InvalidTarget, "brackets"),
            ("pass:///bad_host!:80", ErrorKind::InvalidTarget, "contains '!'"),
            ("pass:///-bad:80", ErrorKind::InvalidTarget, "starts or ends with '-'"),
            ("pass:///a..b:80", ErrorKind::InvalidTarget, "empty label"),
            ("pass://auth/a:1", ErrorKind::InvalidTarget, "takes no authority"),
            ("etcd:svc", ErrorKind::InvalidTarget, "etcd:///service"),
            ("etcd:///", ErrorKind::InvalidTarget, "service name is empty"),
            ("etcd:///#2", ErrorKind::InvalidTarget, "service name is empty"),
            ("etcd:///svc/", ErrorKind::InvalidTarget, "ends with '/'"),
            ("etcd:///a//b", ErrorKind::InvalidTarget, "empty path segment"),
            ("etcd://///microservices/echo", ErrorKind::InvalidTarget, "empty path segment"),
            ("etcd:///svc#0", ErrorKind::InvalidTarget, "from 1 to 1000"),
            ("etcd://bad@name/svc", ErrorKind::InvalidTarget, "cluster name"),
            ("etcd://host:99999/svc", ErrorKind::InvalidTarget, "larger than 65535"),
            ("dns:", ErrorKind::InvalidTarget, "host name is empty"),
            ("dns:///", ErrorKind::InvalidTarget, "host name is empty"),
            ("dns://ns.example.com/x.test", ErrorKind::InvalidTarget, "must be an IP address"),
            ("dns:///host:", ErrorKind::InvalidTarget, "port is empty"),
            ("dns:///1.2.3", ErrorKind::InvalidTarget, "neither an IPv4"),
            ("dns:///host:1:2", ErrorKind::InvalidTarget, "too many ':'"),
            ("dns:///[::1]x", ErrorKind::InvalidTarget, "unexpected 'x'"),
            ("1.2.3.4:", ErrorKind::InvalidTarget, "port is empty"),
        ];
        assert!(cases.len() >= 30);
        for (input, kind, needle) in cases {
            match Target::parse(input) {
                Ok(t) => panic!("'{input}' should be rejected, parsed as {t:?}"),
                Err(e) => {
                    assert_eq!(e.kind(), *kind, "'{input}': {e}");
                    assert!(e.message().contains(needle), "'{input}': expected {needle:?} in: {e}");
                    assert!(e.message().starts_with("invalid target '"), "{e}");
                }
            }
        }
    }

    fn with_query(s: &str) -> (Target, Policy) {
        Target::parse_with_policy(s).unwrap_or_else(|e| panic!("'{s}' should parse, got: {e}"))
    }

    #[test]
    fn a_query_sets_selectors_and_policies_and_leaves_the_target_as_without_it() {
        let (t, p) = with_query("etcd:///echo?select.version=v2&select.zone=a&empty=keep&prefer-zone=b&min-zone=2");
        assert_eq!(t, ok("etcd:///echo"));
        let selectors: Vec<(&str, &str)> = p.selectors.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(selectors, [("version", "v2"), ("zone", "a")]);
        assert_eq!((p.empty, p.prefer_zone.as_deref(), p.min_zone), (Some(EmptyPolicy::Keep), Some("b"), Some(2)));
        assert_eq!(
            with_query("etcd:///echo?empty=pass#2"),
            (ok("etcd:///echo#2"), Policy { empty: Some(EmptyPolicy::Pass), ..Policy::default() })
        );
        assert_eq!(with_query("etcd:///echo#2?empty=pass").0, ok("etcd:///echo#2"));
        assert_eq!(
            with_query("pass:///127.0.0.1:1#2,127.0.0.1:2?empty=keep").0,
            ok("pass:///127.0.0.1:1#2,127.0.0.1:2")
        );
        assert_eq!(with_query("dns:///localhost:1?select.a=b").0, ok("dns:///localhost:1"));
        assert_eq!(with_query("ipv4:127.0.0.1:1?empty=keep").0, ok("ipv4:127.0.0.1:1"));
        assert_eq!(with_query("etcd:///echo?"), (ok("etcd:///echo"), Policy::default()));
        let (_, p) = with_query("etcd:///echo?select.team%2Fname=a%26b%3Dc%25&prefer-zone=eu%2Dwest+1");
        assert_eq!(p.selectors.get("team/name").map(String::as_str), Some("a&b=c%"));
        assert_eq!(p.prefer_zone.as_deref(), Some("eu-west+1"), "'+' is not a space in a target");
        let (t, p) = with_query("passthrough:///host:1?select.a=b");
        assert_eq!((t, p), (Target::Passthrough("host:1?select.a=b".into()), Policy::default()));
    }

    #[test]
    fn bad_queries_fail_with_a_message_naming_the_key() {
        let cases: &[(&str, &str)] = &[
            (
                "etcd:///e?version=v2",
                "query: unknown key 'version' (keys: select.<metadata key>, empty, prefer-zone, min-zone, subset, client-id, health)",
            ),
            (
                "etcd:///e?zone=a",
                "query: unknown key 'zone' (keys: select.<metadata key>, empty, prefer-zone, min-zone, subset, client-id, health)",
            ),
            (
                "etcd:///e?Empty=keep",
                "query: unknown key 'Empty' (keys: select.<metadata key>, empty, prefer-zone, min-zone, subset, client-id, health)",
            ),
            ("etcd:///e?empty=drop", "query key 'empty': 'drop' is neither keep nor pass"),
            ("etcd:///e?empty=KEEP", "query key 'empty': 'KEEP' is neither keep nor pass"),
            ("etcd:///e?empty=", "query key 'empty': the value is empty (write empty=value)"),
            ("etcd:///e?empty", "query key 'empty': the value is empty (write empty=value)"),
            ("etcd:///e?empty=keep&empty=keep", "query key 'empty': given twice"),
            ("etcd:///e?empty=keep&empty=pass", "query key 'empty': given twice"),
            ("etcd:///e?select.v=1&select.v=2", "query key 'select.v': given twice"),
            ("etcd:///e?select.v=1&select%2Ev=1", "query key 'select.v': given twice"),
            ("etcd:///e?select.=a", "query key 'select.': names no metadata key (write select.<key>=value)"),
            ("etcd:///e?select.v=", "query key 'select.v': the value is empty (write select.v=value)"),
            ("etcd:///e?select.v=%2", "query key 'select.v': '%2' is not a %XX escape"),
            ("etcd:///e?select.v=%zz", "query key 'select.v': '%zz' is not a %XX escape"),
            ("etcd:///e?select.v=%FF", "query key 'select.v': escapes that decode to invalid UTF-8"),
            ("etcd:///e?sel%xct.v=1", "query key 'sel%xct.v': '%xc' is not a %XX escape"),
            ("etcd:///e?=v2", "query: a parameter has no key ('=v2')"),
            ("etcd:///e?empty=keep&&select.b=2", "query: an empty parameter (stray '&')"),
            ("etcd:///e?&", "query: an empty parameter (stray '&')"),
            ("etcd:///e?select.v=a#2?empty=keep", "query: a '?' after the query's '#' (write a '#' in a value as %23)"),
            ("unix:///e#3?select.v=1#3?x", "query: a '?' after the query's '#' (write a '#' in a value as %23)"),
            ("etcd:///e?min-zone=0", "query key 'min-zone': '0' is not a number from 1 to 10000"),
            ("etcd:///e?min-zone=10001", "query key 'min-zone': '10001' is not a number from 1 to 10000"),
            ("etcd:///e?min-zone=-1", "query key 'min-zone': '-1' is not a number from 1 to 10000"),
            ("etcd:///e?min-zone=+2", "query key 'min-zone': '+2' is not a number from 1 to 10000"),
            ("etcd:///e?min-zone=two", "query key 'min-zone': 'two' is not a number from 1 to 10000"),
            ("etcd:///e?prefer-zone=", "query key 'prefer-zone': the value is empty (write prefer-zone=value)"),
            (
                "dns:///localhost?subsets=3",
                "query: unknown key 'subsets' (keys: select.<metadata key>, empty, prefer-zone, min-zone, subset, client-id, health)",
            ),
            ("pass:///127.0.0.1:1?empty=maybe", "query key 'empty': 'maybe' is neither keep nor pass"),
            ("etcd:///e?subset=0", "query key 'subset': '0' is not a number from 1 to 10000"),
            ("etcd:///e?subset=10001", "query key 'subset': '10001' is not a number from 1 to 10000"),
            ("etcd:///e?subset=+3", "query key 'subset': '+3' is not a number from 1 to 10000"),
            ("etcd:///e?subset=3.5", "query key 'subset': '3.5' is not a number from 1 to 10000"),
            ("etcd:///e?subset=all", "query key 'subset': 'all' is not a number from 1 to 10000"),
            ("etcd:///e?subset=99999999999", "query key 'subset': '99999999999' is not a number from 1 to 10000"),
            ("etcd:///e?subset", "query key 'subset': the value is empty (write subset=value)"),
            ("etcd:///e?subset=2&subset=2", "query key 'subset': given twice"),
            ("etcd:///e?client-id=", "query key 'client-id': the value is empty (write client-id=value)"),
            ("etcd:///e?client-id=a&client%2Did=b", "query key 'client-id': given twice"),
            ("etcd:///e?client-id=%C3", "query key 'client-id': escapes that decode to invalid UTF-8"),
            ("etcd:///e?clientid=a", "query: unknown key 'clientid' (keys: select.<metadata key>, empty, prefer-zone, min-zone, subset, client-id, health)"),
            ("etcd:///e?health=", "query key 'health': the value is empty (write health=value)"),
            ("etcd:///e?health", "query key 'health': the value is empty (write health=value)"),
            ("etcd:///e?health=*&health=*", "query key 'health': given twice"),
            ("etcd:///e?health=a%2", "query key 'health': '%2' is not a %XX escape"),
        ];
        assert!(cases.len() >= 20);
        for (input, expected) in cases {
            match Target::parse(input) {
                Ok(t) => panic!("'{input}' should be rejected, parsed as {t:?}"),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::InvalidTarget, "'{input}': {e}");
                    assert_eq!(e.message(), format!("invalid target '{input}': {expected}"));
                }
            }
        }
    }

    #[test]
    fn a_query_sets_the_subset_and_its_client_id() {
        let (t, p) = with_query("etcd:///echo?subset=25&client-id=web-7%2Fa#2");
        assert_eq!(t, ok("etcd:///echo#2"));
        assert_eq!((p.subset, p.client_id.as_deref()), (Some(25), Some("web-7/a")));
        assert_eq!(with_query("etcd:///e?subset=1").1.subset, Some(1));
        assert_eq!(with_query("etcd:///e?subset=10000").1.subset, Some(10000));
    }

    #[test]
    fn a_query_sets_health_checking_with_a_star_for_the_whole_server() {
        let (t, p) = with_query("etcd:///echo?health=echo.Echo#2");
        assert_eq!((t, p.health.as_deref()), (ok("etcd:///echo#2"), Some("echo.Echo")));
        assert_eq!(with_query("dns:///h:1?health=*").1.health.as_deref(), Some(""), "'*' is the whole server");
        assert_eq!(with_query("pass:///127.0.0.1:1?health=%2A").1.health.as_deref(), Some(""));
    }

    #[test]
    fn a_bad_target_before_the_query_is_reported_as_without_a_query() {
        let e = Target::parse("etcd:///svc/?empty=keep").unwrap_err();
        assert!(e.message().ends_with("etcd: service 'svc/' ends with '/'; keys are <service>/<address>"), "{e}");
        let e = Target::parse("etcd:///svc?select.v=a b").unwrap_err();
        assert!(e.message().contains("' '"), "{e}");
    }

    #[test]
    fn huge_and_non_ascii_targets_fail_cleanly() {
        let long = format!("etcd:///{}", "é".repeat(MAX_TARGET_LEN));
        let e = Target::parse(&long).unwrap_err();
        assert!(e.message().contains("longer than"), "{e}");
        assert!(e.message().len() < 400);
        let e = Target::parse("pass:///hé:1").unwrap_err();
        assert!(e.message().contains("'é'"), "{e}");
        let long_unix = format!("unix:/{}", "a".repeat(200));
        assert!(Target::parse(&long_unix).unwrap_err().message().contains("at most 107"));
    }

    #[test]
    fn zk_targets_name_servers_an_ensemble_or_the_default_and_an_absolute_node_path() {
        let zk = |servers: &[&str], path: &str, copies| {
            let ensemble = if servers.is_empty() {
                EnsembleRef::Default
            } else {
                EnsembleRef::Servers(servers.iter().map(|s| s.to_string()).collect())
            };
            Target::Zk(ZkTarget { ensemble, path: path.into(), copies })
        };
        assert_eq!(ok("zk://127.0.0.1:2181/services/echo"), zk(&["127.0.0.1:2181"], "/services/echo", 1));
        assert_eq!(
            ok("zk://10.0.0.1:2181,zk2.internal:2182,[::1]:2183/a#3"),
            zk(&["10.0.0.1:2181", "zk2.internal:2182", "[::1]:2183"], "/a", 3)
        );
        assert_eq!(ok("zk:///services/echo"), zk(&[], "/services/echo", 1));
        assert_eq!(ok("ZK:///echo?empty=keep"), zk(&[], "/echo", 1));
        assert_eq!(ok("zk:///echo").scheme(), "zk");
        let named = |name: &str, path: &str| {
            Target::Zk(ZkTarget { ensemble: EnsembleRef::Named(name.into()), path: path.into(), copies: 1 })
        };
        assert_eq!(ok("zk://prod/services/echo"), named("prod", "/services/echo"));
        assert_eq!(ok("zk://zk-east.internal/echo"), named("zk-east.internal", "/echo"));
    }

    #[test]
    fn bad_zk_targets_are_rejected_naming_the_part() {
        let cases: &[(&str, &str)] = &[
            ("zk:echo", "zk: write zk://host:port[,host:port]/path, zk://NAME/path or zk:///path"),
            ("zk:///", "zk: the node path is empty (write zk://host:port/path/to/service)"),
            ("zk://127.0.0.1:2181", "zk: the node path is empty (write zk://host:port/path/to/service)"),
            ("zk:///echo/", "zk: path '/echo/' ends with '/'"),
            ("zk:///a//b", "zk: path '/a//b' has an empty segment"),
            ("zk:///a/../b", "zk: path '/a/../b' has a '..' segment; ZooKeeper paths are absolute"),
            ("zk:///a/./b", "zk: path '/a/./b' has a '.' segment; ZooKeeper paths are absolute"),
            ("zk:///echo#0", "zk: 'echo#0': '#0': the number of connections must be from 1 to 1000"),
            ("zk:///a#b#2", "zk: path '/a#b' contains '#'"),
            ("zk://prod,zk2:2181/echo", "zk: server 'prod': needs a port, as in host:80"),
            ("zk://[::1]/echo", "zk: server '[::1]': needs a port, as in host:80"),
            ("zk://pr*d/echo", "zk: ensemble name 'pr*d' may hold only letters, digits, '-', '_' and '.'"),
            ("zk://127.0.0.1:2181,/echo", "zk: server #2 is empty (stray comma?)"),
            ("zk://127.0.0.1:99999/echo", "zk: server '127.0.0.1:99999': port '99999' is larger than 65535"),
            ("zk://a:1,a:1/echo", "zk: server 'a:1' is listed twice"),
            (
                "zk://::1:2181/echo",
                "zk: server '::1:2181': an IPv6 address with a port is written in brackets, as in [::1]:80",
            ),
        ];
        for (input, expected) in cases {
            match Target::parse(input) {
                Ok(t) => panic!("'{input}' should be rejected, parsed as {t:?}"),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::InvalidTarget, "'{input}': {e}");
                    assert_eq!(e.message(), format!("invalid target '{input}': {expected}"));
                }
            }
        }
    }
}
