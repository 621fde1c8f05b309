//! The documents Go frameworks register in etcd, read into addresses and written for registrations:
//! Kratos's `registry.ServiceInstance` and go-micro's `registry.Service`, with their key layouts.

use serde_json::{Map, Value};

use super::value::{self, ValueFormat};
use crate::update::Address;

/// Where Kratos's etcd registry keeps instances by default (its `Namespace` option).
pub const KRATOS_NAMESPACE: &str = "/microservices";
/// Where go-micro's etcd registry keeps services.
pub const GO_MICRO_PREFIX: &str = "/micro/registry";

/// A Kratos instance's `grpc` and `grpcs` endpoints, each with the instance's metadata plus `isSecure`
/// (TLS: the `grpcs` scheme of Kratos 2.8 or the `isSecure=true` query of earlier ones) and the
/// instance's `id` and `version` unless its metadata has keys of those names. Other schemes (`http`)
/// are not gRPC and are left out; an instance without a gRPC endpoint is an error, so the caller skips
/// it with a warning.
pub fn read_kratos(instance: &Map<String, Value>) -> Result<Vec<Address>, String> {
    let id = instance.get("id").and_then(Value::as_str).unwrap_or("");
    let endpoints = instance.get("endpoints").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut metadata = string_map(instance.get("metadata"), "Kratos instance metadata")?;
    for key in ["id", "version"] {
        if let Some(Value::String(v)) = instance.get(key) {
            if !v.is_empty() && !metadata.contains_key(key) {
                metadata.insert(key.into(), Value::String(v.clone()));
            }
        }
    }
    let mut addresses = Vec::new();
    for url in endpoints.iter().filter_map(Value::as_str) {
        let Some((host, secure)) = grpc_endpoint(url)? else { continue };
        let mut metadata = metadata.clone();
        metadata.insert("isSecure".into(), Value::Bool(secure));
        addresses.push(with_metadata(&host, metadata).map_err(|e| format!("Kratos endpoint '{url}': {e}"))?);
    }
    if addresses.is_empty() {
        return Err(format!("Kratos instance '{id}' has no grpc endpoint"));
    }
    Ok(addresses)
}

/// Every node of a go-micro service, each with its own metadata plus its `id` and the service's
/// `version` unless its metadata has keys of those names.
pub fn read_go_micro(service: &Map<String, Value>) -> Result<Vec<Address>, String> {
    let name = service.get("name").and_then(Value::as_str).unwrap_or("");
    let nodes = service.get("nodes").and_then(Value::as_array).ok_or("go-micro \"nodes\" is not a list")?;
    let version = service.get("version").and_then(Value::as_str).filter(|v| !v.is_empty());
    let mut addresses = Vec::with_capacity(nodes.len());
    for node in nodes {
        let node = node.as_object().ok_or("a go-micro node is not a JSON object")?;
        let id = node.get("id").and_then(Value::as_str).unwrap_or("");
        let address = node.get("address").and_then(Value::as_str).ok_or("a go-micro node has no string \"address\"")?;
        let mut metadata = string_map(node.get("metadata"), "go-micro node metadata")?;
        if !id.is_empty() && !metadata.contains_key("id") {
            metadata.insert("id".into(), Value::String(id.into()));
        }
        if let Some(version) = version.filter(|_| !metadata.contains_key("version")) {
            metadata.insert("version".into(), Value::String(version.into()));
        }
        addresses.push(with_metadata(address, metadata).map_err(|e| format!("go-micro node '{id}': {e}"))?);
    }
    if addresses.is_empty() {
        return Err(format!("go-micro service '{name}' has no nodes"));
    }
    Ok(addresses)
}

/// The host of a `grpc://` or `grpcs://` URL and whether it is TLS; `None` for another scheme.
fn grpc_endpoint(url: &str) -> Result<Option<(String, bool)>, String> {
    let (scheme, rest) = url.split_once("://").ok_or(format!("Kratos endpoint '{url}' is not a URL"))?;
    let tls_scheme = match scheme.to_ascii_lowercase().as_str() {
        "grpc" => false,
        "grpcs" => true,
        _ => return Ok(None),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(end);
    let query = tail.split('#').next().unwrap_or("").split_once('?').map_or("", |(_, q)| q);
    // Go's strconv.ParseBool, which Kratos read the flag with.
    let secure_query = query.split('&').any(|p| {
        matches!(p, "isSecure=true" | "isSecure=1" | "isSecure=t" | "isSecure=T" | "isSecure=TRUE" | "isSecure=True")
    });
    Ok(Some((host.to_string(), tls_scheme || secure_query)))
}

/// The framework's string map (`map[string]string` in Go); missing or null is empty.
fn string_map(value: Option<&Value>, what: &str) -> Result<Map<String, Value>, String> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(other) => Err(format!("{what} is not a JSON object: {other}")),
    }
}

/// The address with `metadata` (whose string `weight`, as the frameworks write it, is read as a number).
fn with_metadata(host_port: &str, metadata: Map<String, Value>) -> Result<Address, String> {
    value::endpoint_for(host_port, Some(&Value::Object(metadata)))
}

/// A registration in a framework's layout: its key under the service's prefix and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The prefix the key lies under, with its trailing '/': what a resolver of the service watches.
    pub prefix: String,
    pub key: String,
    pub value: String,
}

/// The key prefix (without the trailing '/') a framework registration of `service` goes under: a
/// service that starts with '/' is a full prefix (a Kratos namespace of one's own), any other is a name
/// under the framework's default place.
pub fn prefix(format: ValueFormat, service: &str) -> String {
    if service.starts_with('/') {
        return service.to_string();
    }
    match format {
        ValueFormat::Etcd => service.to_string(),
        ValueFormat::Kratos => format!("{KRATOS_NAMESPACE}/{service}"),
        ValueFormat::GoMicro => format!("{GO_MICRO_PREFIX}/{service}"),
    }
}

/// The framework's document for `address` of `service` (its last path segment is the name the
/// framework sees), under a fresh `id`. `metadata` must be a JSON object of strings, numbers or
/// booleans, as both write `map[string]string` (numbers and booleans are written as their text); its
/// `version`, if any, also becomes the document's version, which Kratos's version filter reads.
pub fn document(
    format: ValueFormat,
    service: &str,
    address: &str,
    metadata: Option<&Value>,
) -> Result<Document, String> {
    let prefix = prefix(format, service);
    // As a target's service: no empty segment, so that `etcd:///` and the prefix resolves it.
    if prefix.strip_prefix('/').unwrap_or(&prefix).split('/').any(str::is_empty) {
        return Err(format!("service '{service}' has an empty path segment"));
    }
    let name = prefix.rsplit('/').next().unwrap_or(&prefix).to_string();
    let metadata = strings_only(metadata)?;
    let version = metadata.get("version").cloned().unwrap_or_else(|| Value::String(String::new()));
    let id = random_id();
    let json = |v: Value| v.to_string();
    match format {
        ValueFormat::Etcd => Err("etcd's own format has no framework document".into()),
        ValueFormat::Kratos => {
            let instance = serde_json::json!({
                "id": id,
                "name": name,
                "version": version,
                "metadata": metadata,
                "endpoints": [format!("grpc://{address}?isSecure=false")],
            });
            Ok(Document { key: format!("{prefix}/{id}"), prefix: format!("{prefix}/"), value: json(instance) })
        }
        ValueFormat::GoMicro => {
            // go-micro names a node after its service and server id.
            let node_id = format!("{name}-{id}");
            let service = serde_json::json!({
                "name": name,
                "version": version,
                "metadata": null,
                "endpoints": [],
                "nodes": [{"id": node_id, "address": address, "metadata": metadata}],
            });
            Ok(Document { key: format!("{prefix}/{node_id}"), prefix: format!("{prefix}/"), value: json(service) })
        }
    }
}

/// `metadata` as a `map[string]string` the frameworks can decode: a value of another JSON type makes
/// Go's decoder reject the whole document, so it is refused here instead.
fn strings_only(metadata: Option<&Value>) -> Result<Map<String, Value>, String> {
    let Some(metadata) = metadata.filter(|m| !m.is_null()) else { return Ok(Map::new()) };
    let object = metadata.as_object().ok_or("metadata for a Kratos or go-micro registration must be a JSON object")?;
    let mut strings = Map::new();
    for (key, value) in object {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(format!(
                    "metadata key '{key}': Kratos and go-micro metadata are strings, numbers or booleans, not {other}"
                ))
            }
        };
        strings.insert(key.clone(), Value::String(text));
    }
    Ok(strings)
}

/// A random UUID (version 4), the ids Kratos and go-micro servers give themselves.
fn random_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::value::{parse, Entry};
    use crate::update::AddressFamily;

    fn addresses(doc: &str) -> Vec<Address> {
        match parse(doc.as_bytes()) {
            Ok(entry @ (Entry::Add(_) | Entry::Several(_))) => entry.addresses().to_vec(),
            other => panic!("{doc}: expected addresses, got {other:?}"),
        }
    }

    fn listed(addresses: &[Address]) -> Vec<(&str, Option<&str>)> {
        addresses.iter().map(|a| (&*a.address, a.metadata.as_deref())).collect()
    }

    #[test]
    fn a_kratos_instance_gives_each_grpc_endpoint_with_its_metadata_and_skips_http() {
        let doc = r#"{"id":"7c1a","name":"echo","version":"v2","metadata":{"zone":"a"},
            "endpoints":["http://10.0.0.1:8000","grpc://10.0.0.1:9000?isSecure=false","grpcs://[::1]:9443",
            "grpc://10.0.0.2:9000?isSecure=true"]}"#;
        let got = addresses(doc);
        assert_eq!(
            listed(&got),
            [
                ("10.0.0.1:9000", Some(r#"{"id":"7c1a","isSecure":false,"version":"v2","zone":"a"}"#)),
                ("[::1]:9443", Some(r#"{"id":"7c1a","isSecure":true,"version":"v2","zone":"a"}"#)),
                ("10.0.0.2:9000", Some(r#"{"id":"7c1a","isSecure":true,"version":"v2","zone":"a"}"#)),
            ]
        );
        assert_eq!(got[1].family, AddressFamily::Ipv6);
        // One endpoint is one address; the instance's own "version" metadata wins; a string weight counts.
        let one = addresses(
            r#"{"id":"x","name":"e","version":"v2","metadata":{"version":"canary","weight":"7"},"endpoints":["grpc://h:1"]}"#,
        );
        assert_eq!(listed(&one), [("h:1", Some(r#"{"id":"x","isSecure":false,"version":"canary","weight":"7"}"#))]);
        assert_eq!(one[0].weight, 7);
        assert!(matches!(parse(br#"{"id":"x","endpoints":["grpc://h:1"]}"#), Ok(Entry::Add(_))));
    }

    #[test]
    fn a_go_micro_service_gives_every_node() {
        let doc = r#"{"name":"echo","version":"1.0.0","metadata":null,"endpoints":[{"name":"Echo.Call"}],
            "nodes":[{"id":"echo-1","address":"10.0.0.1:9000","metadata":{"protocol":"grpc"}},
                     {"id":"echo-2","address":"[::1]:9001","metadata":null}]}"#;
        assert_eq!(
            listed(&addresses(doc)),
            [
                ("10.0.0.1:9000", Some(r#"{"id":"echo-1","protocol":"grpc","version":"1.0.0"}"#)),
                ("[::1]:9001", Some(r#"{"id":"echo-2","version":"1.0.0"}"#)),
            ]
        );
    }

    #[test]
    fn framework_documents_without_a_usable_address_are_errors() {
        let bad = [
            // No gRPC endpoint at all, or none.
            r#"{"id":"a","name":"e","endpoints":["http://10.0.0.1:8000"]}"#,
            r#"{"id":"a","name":"e","endpoints":[]}"#,
            r#"{"id":"a","endpoints":["grpc://"]}"#,
            r#"{"id":"a","endpoints":["grpc://10.0.0.1"]}"#,
            r#"{"id":"a","endpoints":["grpc:10.0.0.1:80"]}"#,
            r#"{"id":"a","endpoints":["grpc://10.0.0.1:80"],"metadata":[1]}"#,
            r#"{"name":"e","nodes":[]}"#,
            r#"{"name":"e","nodes":"x"}"#,
            r#"{"name":"e","nodes":[{"id":"n"}]}"#,
            r#"{"name":"e","nodes":[{"id":"n","address":"10.0.0.1:80"},{"id":"m","address":"bad host"}]}"#,
            r#"{"name":"e","nodes":[7]}"#,
        ];
        for doc in bad {
            assert!(parse(doc.as_bytes()).is_err(), "{doc} should be rejected, got {:?}", parse(doc.as_bytes()));
        }
    }

    #[test]
    fn registrations_in_each_format_read_back_as_their_address() {
        let meta = serde_json::json!({"zone": "a", "weight": 3, "version": "v2", "canary": true});
        let kratos = document(ValueFormat::Kratos, "echo", "127.0.0.1:9000", Some(&meta)).unwrap();
        assert!(kratos.key.starts_with("/microservices/echo/"), "{}", kratos.key);
        let id = kratos.key.rsplit('/').next().unwrap();
        let instance: Value = serde_json::from_str(&kratos.value).unwrap();
        assert_eq!(instance["name"], "echo");
        assert_eq!(instance["version"], "v2");
        assert_eq!(instance["endpoints"], serde_json::json!(["grpc://127.0.0.1:9000?isSecure=false"]));
        let read = addresses(&kratos.value);
        assert_eq!(read.len(), 1);
        assert_eq!((&*read[0].address, read[0].weight), ("127.0.0.1:9000", 3));
        let expected =
            format!(r#"{{"canary":"true","id":"{id}","isSecure":false,"version":"v2","weight":"3","zone":"a"}}"#);
        assert_eq!(read[0].metadata.as_deref(), Some(expected.as_str()));

        let micro = document(ValueFormat::GoMicro, "/micro/registry/echo", "[::1]:9001", None).unwrap();
        let node_id = micro.key.strip_prefix("/micro/registry/echo/").expect("go-micro key layout");
        assert!(node_id.starts_with("echo-"), "{node_id}");
        let read = addresses(&micro.value);
        let expected = format!(r#"{{"id":"{node_id}"}}"#);
        assert_eq!(listed(&read), [("[::1]:9001", Some(expected.as_str()))]);

        // A namespace of one's own; ids are fresh per registration.
        let own = document(ValueFormat::Kratos, "/apps/echo", "127.0.0.1:1", None).unwrap();
        assert!(own.key.starts_with("/apps/echo/"));
        assert_ne!(own.key, document(ValueFormat::Kratos, "/apps/echo", "127.0.0.1:1", None).unwrap().key);
    }

    #[test]
    fn framework_services_must_be_resolvable_prefixes() {
        for service in ["/", "a//b", "/apps//echo", "echo/"] {
            let err = document(ValueFormat::Kratos, service, "127.0.0.1:1", None).unwrap_err();
            assert!(err.contains("empty path segment"), "{service}: {err}");
        }
        let doc = document(ValueFormat::GoMicro, "team/echo", "127.0.0.1:1", None).unwrap();
        assert_eq!(doc.prefix, "/micro/registry/team/echo/");
        assert!(doc.key.starts_with("/micro/registry/team/echo/echo-"), "{}", doc.key);
    }

    #[test]
    fn framework_metadata_must_be_flat() {
        for meta in [serde_json::json!({"a": {"b": 1}}), serde_json::json!({"a": [1]}), serde_json::json!("x")] {
            let err = document(ValueFormat::Kratos, "echo", "127.0.0.1:1", Some(&meta)).unwrap_err();
            assert!(err.contains("metadata"), "{err}");
        }
    }

    #[test]
    fn ids_are_version_4_uuids() {
        let id = random_id();
        let bytes = id.as_bytes();
        assert_eq!((id.len(), bytes[14], bytes[8], bytes[13]), (36, b'4', b'-', b'-'), "{id}");
        assert!(matches!(bytes[19], b'8' | b'9' | b'a' | b'b'), "{id}");
    }

    #[test]
    fn format_names_are_checked() {
        assert_eq!(ValueFormat::from_name("go-micro"), Ok(ValueFormat::GoMicro));
        assert!(ValueFormat::from_name("Kratos").unwrap_err().contains("etcd, kratos, go-micro"));
    }
}
