//! What a child of a ZooKeeper service node holds: Curator ServiceDiscovery's JSON instance
//! (`{"name","id","address","port","sslPort","payload",...}`), or any value the etcd reader takes
//! (etcd's Go naming JSON, a bare `host:port`, a Kratos instance, a go-micro service).

use std::net::Ipv6Addr;

use serde_json::{Map, Value};

use crate::etcd::value::{self, Entry};

/// Reads one child's data; `Err` names what is wrong (the caller logs and skips the child).
pub fn parse(data: &[u8]) -> Result<Entry, String> {
    let text = std::str::from_utf8(data).map_err(|_| "data is not UTF-8".to_string())?.trim();
    if text.starts_with('{') {
        // Curator writes lower-case "address"; etcd's naming JSON has "Addr" and goes to its reader.
        if let Ok(Value::Object(instance)) = serde_json::from_str::<Value>(text) {
            if instance.contains_key("address") && !instance.contains_key("Addr") {
                return curator(&instance);
            }
        }
    }
    value::parse(data)
}

/// A Curator `ServiceInstance`: `address` and `port` (else `sslPort`) are the address, `payload` the
/// metadata; `"enabled": false` (Curator 5) withdraws it.
fn curator(instance: &Map<String, Value>) -> Result<Entry, String> {
    if instance.get("enabled") == Some(&Value::Bool(false)) {
        return Ok(Entry::Withdrawn);
    }
    let address =
        instance.get("address").and_then(Value::as_str).ok_or("Curator instance has no string \"address\"")?;
    let port = |key: &str| instance.get(key).filter(|p| !p.is_null());
    let port =
        port("port").or_else(|| port("sslPort")).ok_or("Curator instance has neither \"port\" nor \"sslPort\"")?;
    let port =
        port.as_u64().filter(|p| (1..=65535).contains(p)).ok_or(format!("Curator port {port} is not 1 to 65535"))?;
    let host_port = match address.parse::<Ipv6Addr>() {
        Ok(ip) => format!("[{ip}]:{port}"),
        Err(_) => format!("{address}:{port}"),
    };
    let payload = instance.get("payload").filter(|p| !p.is_null());
    value::endpoint_for(&host_port, payload).map(Entry::Add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::{Address, AddressFamily};

    fn add(data: &str) -> Address {
        match parse(data.as_bytes()) {
            Ok(Entry::Add(e)) => e,
            other => panic!("{data}: expected an address, got {other:?}"),
        }
    }

    #[test]
    fn curator_instances_are_read_with_their_payload_as_metadata() {
        let e = add(r#"{"name":"echo","id":"7c1a","address":"10.0.0.1","port":9000,"sslPort":null,
                "payload":{"zone":"a","weight":3},"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC",
                "uriSpec":null}"#);
        assert_eq!((e.address.as_str(), e.family, e.weight), ("10.0.0.1:9000", AddressFamily::Ipv4, 3));
        assert_eq!(e.metadata.as_deref(), Some(r#"{"weight":3,"zone":"a"}"#));
        let e = add(r#"{"name":"echo","address":"::1","port":null,"sslPort":9443}"#);
        assert_eq!((e.address.as_str(), e.family, e.metadata), ("[::1]:9443", AddressFamily::Ipv6, None));
        assert_eq!(add(r#"{"address":"echo-1.internal","port":7}"#).family, AddressFamily::Name);
    }

    #[test]
    fn etcd_values_and_bare_addresses_read_as_in_etcd() {
        assert_eq!(add("127.0.0.1:50051").address, "127.0.0.1:50051");
        let e = add(r#"{"Op":0,"Addr":"10.0.0.2:80","Metadata":{"zone":"b"}}"#);
        assert_eq!((e.address.as_str(), e.metadata.as_deref()), ("10.0.0.2:80", Some(r#"{"zone":"b"}"#)));
        assert_eq!(parse(br#"{"Op":1,"Addr":"10.0.0.2:80"}"#), Ok(Entry::Withdrawn));
    }

    #[test]
    fn kratos_instances_from_its_zookeeper_registry_give_every_grpc_endpoint() {
        let data = br#"{"id":"k1","name":"echo","version":"v1","metadata":null,
            "endpoints":["grpc://10.0.0.1:9000?isSecure=false","http://10.0.0.1:8000","grpc://10.0.0.1:9001"]}"#;
        let entry = parse(data).expect("a Kratos instance");
        let read: Vec<_> = entry.addresses().iter().map(|a| a.address.to_string()).collect();
        assert_eq!(read, ["10.0.0.1:9000", "10.0.0.1:9001"]);
    }

    #[test]
    fn disabled_curator_instances_are_withdrawn_and_garbage_is_an_error() {
        assert_eq!(parse(br#"{"address":"10.0.0.1","port":1,"enabled":false}"#), Ok(Entry::Withdrawn));
        let bad: &[&str] = &[
            "",
            "garbage",
            "{",
            r#"{"address":"10.0.0.1"}"#,
            r#"{"address":"10.0.0.1","port":0}"#,
            r#"{"address":"10.0.0.1","port":65536}"#,
            r#"{"address":"10.0.0.1","port":"80"}"#,
            r#"{"address":7,"port":80}"#,
            r#"{"address":"bad host!","port":80}"#,
            r#"{"address":"10.0.0.1/x","port":80}"#,
        ];
        for data in bad {
            assert!(parse(data.as_bytes()).is_err(), "{data:?} should be rejected, got {:?}", parse(data.as_bytes()));
        }
        assert!(parse(&[0xff]).is_err());
    }
}
