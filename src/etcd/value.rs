//! The values stored under a service's keys, read and written: etcd's Go naming JSON
//! (`{"Op":0,"Addr":"host:port","Metadata":...}`), a bare `host:port`, and the documents of the Go
//! frameworks (src/etcd/frameworks.rs), told apart by their shape.

use serde_json::Value;

use super::frameworks;
use crate::target::Target;
use crate::update::{Address, AddressFamily};

/// What one key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An address to dial.
    Add(Address),
    /// The addresses of a document that names more than one (every `grpc` endpoint of a Kratos
    /// instance, every node of a go-micro service), in the document's order.
    Several(Vec<Address>),
    /// etcd's `Op: 1`: the writer withdrew the address but left the key. Also what the watcher keeps
    /// for a key whose value it could not read.
    Withdrawn,
}

impl Entry {
    /// One address as `Add`, so that the usual key costs no list of its own.
    pub(crate) fn of(mut addresses: Vec<Address>) -> Entry {
        match addresses.len() {
            0 => Entry::Withdrawn,
            1 => Entry::Add(addresses.remove(0)),
            _ => Entry::Several(addresses),
        }
    }

    /// The addresses to dial: none when withdrawn.
    pub fn addresses(&self) -> &[Address] {
        match self {
            Entry::Add(address) => std::slice::from_ref(address),
            Entry::Several(addresses) => addresses,
            Entry::Withdrawn => &[],
        }
    }
}

/// The document a registration writes (see [`format`] and src/etcd/frameworks.rs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ValueFormat {
    /// etcd's Go naming JSON (or a bare `host:port`) under `<service>/<addr>`.
    #[default]
    Etcd,
    /// A Kratos `registry.ServiceInstance` under `/microservices/<name>/<id>`.
    Kratos,
    /// A go-micro `registry.Service` with one node under `/micro/registry/<name>/<node id>`.
    GoMicro,
}

impl ValueFormat {
    /// The names the C API, the bindings and the CLI take.
    pub const NAMES: &'static str = "etcd, kratos, go-micro";

    pub fn from_name(name: &str) -> Result<ValueFormat, String> {
        match name {
            "etcd" => Ok(ValueFormat::Etcd),
            "kratos" => Ok(ValueFormat::Kratos),
            "go-micro" => Ok(ValueFormat::GoMicro),
            _ => Err(format!("unknown registration format '{name}' (formats: {})", Self::NAMES)),
        }
    }
}

/// Reads a value in either format; `Err` names what is wrong (the caller logs and skips it).
pub fn parse(value: &[u8]) -> Result<Entry, String> {
    let text = std::str::from_utf8(value).map_err(|_| "value is not UTF-8".to_string())?.trim();
    if text.starts_with('{') {
        return parse_json(text);
    }
    endpoint_for(text, None).map(Entry::Add)
}

/// etcd's naming JSON as its Go writer writes it, read without building a generic JSON tree (a
/// fifth of listing 100,000 keys went to that). Anything it does not take (another shape, an odd
/// `Op`, a repeated field) goes the generic way, which decides.
#[derive(serde::Deserialize)]
struct Naming<'a> {
    #[serde(rename = "Op")]
    op: Option<u64>,
    #[serde(rename = "Addr", borrow)]
    addr: std::borrow::Cow<'a, str>,
    #[serde(rename = "Metadata")]
    metadata: Option<Value>,
}

fn parse_json(text: &str) -> Result<Entry, String> {
    if let Ok(naming) = serde_json::from_str::<Naming>(text) {
        match naming.op {
            None | Some(0) => return endpoint_for(&naming.addr, naming.metadata.as_ref()).map(Entry::Add),
            Some(1) => return Ok(Entry::Withdrawn),
            Some(_) => {}
        }
    }
    parse_json_tree(text)
}

/// Any JSON value, read as a tree: its shape says which format it is.
fn parse_json_tree(text: &str) -> Result<Entry, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("value is not valid JSON: {e}"))?;
    let obj = doc.as_object().ok_or("value is not a JSON object")?;
    // etcd's naming JSON always has "Addr"; go-micro's services have "nodes", Kratos's instances
    // (and only they) a list of endpoint URLs.
    if !obj.contains_key("Addr") {
        if obj.contains_key("nodes") {
            return frameworks::read_go_micro(obj).map(Entry::of);
        }
        if obj.get("endpoints").and_then(Value::as_array).is_some_and(|e| e.iter().all(Value::is_string)) {
            return frameworks::read_kratos(obj).map(Entry::of);
        }
    }
    match obj.get("Op") {
        None | Some(Value::Null) => {}
        Some(op) if op.as_u64() == Some(0) => {}
        Some(op) if op.as_u64() == Some(1) => return Ok(Entry::Withdrawn),
        Some(op) => return Err(format!("unknown Op {op}")),
    }
    let addr = obj.get("Addr").and_then(Value::as_str).ok_or("JSON value has no string \"Addr\"")?;
    let metadata = obj.get("Metadata").filter(|m| !m.is_null());
    endpoint_for(addr, metadata).map(Entry::Add)
}

/// The endpoint for `addr` with `metadata` (its `weight`, when a number from 1 up, is the weight: a JSON
/// number, or a string of digits as Go frameworks write their `map[string]string`); also how other
/// registries' formats (ZooKeeper's Curator JSON, the frameworks' documents) become endpoints.
pub(crate) fn endpoint_for(addr: &str, metadata: Option<&Value>) -> Result<Address, String> {
    let mut endpoint = address(addr)?;
    if let Some(metadata) = metadata {
        let weight = match metadata.get("weight") {
            Some(Value::String(digits)) if digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse::<f64>().ok(),
            Some(number) => number.as_f64(),
            None => None,
        };
        if let Some(weight) = weight {
            if weight >= 1.0 && weight <= u32::MAX as f64 {
                endpoint.weight = weight as u32;
            }
        }
        endpoint.metadata = Some(metadata.to_string().into());
    }
    Ok(endpoint)
}

/// Parses `host:port` with the same rules as a `pass:` target, so families agree everywhere. An IP
/// address already written the way the target parser writes it back (what registrars write) is taken
/// as it is: going through the target parser and back costs a fifth of listing 100,000 keys.
pub(crate) fn address(addr: &str) -> Result<Address, String> {
    if let Some(ip) = canonical_ip_address(addr) {
        let family = if ip.is_ipv4() { AddressFamily::Ipv4 } else { AddressFamily::Ipv6 };
        // `addr` is how the address writes itself: kept as it is, with no formatting.
        let mut address = Address::backend(String::new(), family);
        address.address = addr.into();
        return Ok(address);
    }
    if addr.is_empty() || addr.contains(['/', ',', '#', '?', ' ']) {
        return Err(format!("'{addr}' is not a host:port address"));
    }
    match Target::parse(&format!("pass:///{addr}")) {
        Ok(Target::Pass(entries)) if entries.len() == 1 => {
            let e = &entries[0];
            Ok(Address::from_host_port(&e.host, e.port))
        }
        _ => Err(format!("'{addr}' is not a host:port address")),
    }
}

/// `addr` as an IP socket address when it is one with a port and no zone, written exactly as its
/// `Display` writes it (so the text kept is `addr` itself); the target parser gives those the same.
fn canonical_ip_address(addr: &str) -> Option<std::net::SocketAddr> {
    use std::io::Write;
    let ip: std::net::SocketAddr = addr.parse().ok()?;
    let zoned = matches!(ip, std::net::SocketAddr::V6(v6) if v6.scope_id() != 0);
    if ip.port() == 0 || zoned {
        return None;
    }
    // Written on the stack: this runs once per key of a list.
    let mut written = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut written[..]);
    write!(cursor, "{ip}").ok()?;
    let len = cursor.position() as usize;
    (&written[..len] == addr.as_bytes()).then_some(ip)
}

/// Checks an address before it is registered.
pub fn validate_address(addr: &str) -> Result<(), String> {
    address(addr).map(|_| ())
}

/// The value to write for `addr`: etcd's JSON (readable by etcd's Go resolver), or bare. Fields
/// keep the order etcd's Go writer uses.
pub fn format(addr: &str, metadata: Option<&Value>, raw: bool) -> String {
    if raw {
        return addr.to_string();
    }
    let addr = Value::from(addr);
    match metadata {
        Some(m) => format!(r#"{{"Op":0,"Addr":{addr},"Metadata":{m}}}"#),
        None => format!(r#"{{"Op":0,"Addr":{addr}}}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::AddressFamily;

    /// The target parser's reading of `addr`, without the shortcut.
    fn through_the_target_parser(addr: &str) -> Result<Address, String> {
        match Target::parse(&format!("pass:///{addr}")) {
            Ok(Target::Pass(entries)) if entries.len() == 1 => {
                Ok(Address::from_host_port(&entries[0].host, entries[0].port))
            }
            _ => Err("rejected".into()),
        }
    }

    #[test]
    fn the_naming_shortcut_reads_values_as_the_generic_reader_does() {
        let values = [
            r#"{"Op":0,"Addr":"10.0.0.1:80"}"#,
            r#"{"Addr":"10.0.0.1:80","Op":0,"Metadata":{"zone":"a","weight":3}}"#,
            r#"{"Op":0,"Addr":"10.0.0.1:80","Metadata":null}"#,
            r#"{"Op":null,"Addr":"echo.internal:443"}"#,
            r#"{"Op":1,"Addr":"10.0.0.1:80"}"#,
            r#"{"Op":2,"Addr":"10.0.0.1:80"}"#,
            r#"{"Op":0.0,"Addr":"10.0.0.1:80"}"#,
            r#"{"Op":-1,"Addr":"10.0.0.1:80"}"#,
            r#"{"Op":"0","Addr":"10.0.0.1:80"}"#,
            r#"{"Op":0,"Addr":"10.0.0.1:80","Addr":"10.0.0.2:80"}"#,
            r#"{"Op":0,"Addr":"10.0.0.\u0031:80"}"#,
            r#"{"Op":0,"Addr":7}"#,
            r#"{"Op":0,"Addr":"10.0.0.1:80","nodes":[]}"#,
            r#"{"Op":0,"Addr":"10.0.0.1:80","Metadata":{"weight":"12"}}"#,
            r#"{"Op":0,"Addr":"10.0.0.1:0"}"#,
            r#"{"Op":0,"Addr":"10.0.0.1:80"} trailing"#,
            r#"{"id":"1","name":"echo","endpoints":["grpc://10.0.0.1:9000?isSecure=false"]}"#,
        ];
        for value in values {
            assert_eq!(parse_json(value), parse_json_tree(value), "{value}");
        }
    }

    #[test]
    fn the_ip_shortcut_reads_addresses_as_the_target_parser_does() {
        let taken = ["10.0.0.1:80", "127.0.0.1:65535", "[::1]:50051", "[2001:db8::1]:443", "0.0.0.0:1"];
        for addr in taken {
            assert!(canonical_ip_address(addr).is_some(), "{addr} should take the shortcut");
            assert_eq!(address(addr), through_the_target_parser(addr), "{addr}");
        }
        // Not canonical, zoned, port 0 or no IP: the target parser decides, as before.
        let parsed = ["10.0.0.1:0", "[::0001]:80", "[fe80::1%2]:80", "010.0.0.1:80", "svc:80", "[::ffff:1.2.3.4]:80"];
        for addr in parsed {
            assert_eq!(address(addr).ok(), through_the_target_parser(addr).ok(), "{addr}");
        }
    }

    fn add(value: &str) -> Address {
        match parse(value.as_bytes()) {
            Ok(Entry::Add(e)) => e,
            other => panic!("{value}: expected an address, got {other:?}"),
        }
    }

    #[test]
    fn raw_host_port_is_read() {
        let e = add("127.0.0.1:50051");
        assert_eq!(
            (e.address.as_str(), e.family, e.weight, e.metadata),
            ("127.0.0.1:50051", AddressFamily::Ipv4, 1, None)
        );
        assert_eq!(add("[::1]:7").family, AddressFamily::Ipv6);
        assert_eq!(add("db.internal:7").family, AddressFamily::Name);
    }

    #[test]
    fn go_naming_json_is_read_with_metadata_and_weight() {
        let e = add(r#"{"Op":0,"Addr":"10.0.0.1:80","Metadata":{"weight":5,"zone":"b"}}"#);
        assert_eq!(e.address, "10.0.0.1:80");
        assert_eq!(e.weight, 5);
        assert_eq!(e.metadata.as_deref(), Some(r#"{"weight":5,"zone":"b"}"#));
        // Go frameworks write every metadata value as a string.
        assert_eq!(add(r#"{"Addr":"10.0.0.1:80","Metadata":{"weight":"12"}}"#).weight, 12);
        for not_a_weight in [r#""1.5""#, r#""+3""#, r#""""#, r#""0""#, r#""99999999999""#] {
            let e = add(&format!(r#"{{"Addr":"10.0.0.1:80","Metadata":{{"weight":{not_a_weight}}}}}"#));
            assert_eq!(e.weight, 1, "{not_a_weight}");
        }
        let e = add(r#"{"Addr":"10.0.0.1:80","Metadata":"plain"}"#);
        assert_eq!((e.weight, e.metadata.as_deref()), (1, Some(r#""plain""#)));
    }

    #[test]
    fn op_one_withdraws_and_bad_values_are_errors() {
        assert_eq!(parse(br#"{"Op":1,"Addr":"10.0.0.1:80"}"#), Ok(Entry::Withdrawn));
        for bad in ["", "nonsense", "{", r#"{"Addr":5}"#, r#"{"Op":7,"Addr":"a:1"}"#, "a:1,b:2", "\u{0}"] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse(&[0xff, 0xfe]).is_err());
        // A target's `?query` is no part of an address: refused, not read as the address before it.
        for bad in ["10.0.0.1:80?empty=keep", r#"{"Addr":"10.0.0.1:80?select.v=x"}"#] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} should be rejected");
        }
        assert!(validate_address("127.0.0.1:80?empty=keep").is_err());
    }

    #[test]
    fn written_json_reads_back() {
        let meta = serde_json::json!({"weight": 3});
        let text = format("127.0.0.1:9", Some(&meta), false);
        assert_eq!(text, r#"{"Op":0,"Addr":"127.0.0.1:9","Metadata":{"weight":3}}"#);
        assert_eq!(add(&text).weight, 3);
        assert_eq!(format("127.0.0.1:9", Some(&meta), true), "127.0.0.1:9");
    }

    #[test]
    fn long_metadata_numbers_read_back_unchanged_when_written_again() {
        // Found by fuzzing (fuzz/regressions/etcd_value): without correctly rounded float parsing a
        // 111-digit number came back one unit in the last place off after a write and a read.
        let digits = format!("1{}", "3".repeat(110));
        let first = add(&format!(r#"{{"Op":0,"Addr":"h:1","Metadata":{{"x":[{digits}]}}}}"#));
        let meta: serde_json::Value = serde_json::from_str(&first.metadata.clone().expect("metadata")).unwrap();
        let again = add(&format("h:1", Some(&meta), false));
        assert_eq!(again.metadata, first.metadata);
    }
}
