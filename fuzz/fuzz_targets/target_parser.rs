//! The target parser (`Target::parse_with_policy`): never panics, fails only with the two target
//! statuses and a message quoting the input, a parsed target and its query's policy written back in
//! canonical form parse to themselves, and its `xds:///` form maps back, through the xDS server's
//! listener-name mapping, to the same target and policy.
#![no_main]

use gnaming::resolver::policy::Policy;
use gnaming::target::{ClusterRef, EnsembleRef, Target, MAX_TARGET_LEN};
use gnaming::xds::names;
use gnaming::ErrorKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let parsed = match Target::parse_with_policy(input) {
        Ok(parsed) => parsed,
        Err(e) => {
            assert!(matches!(e.kind(), ErrorKind::InvalidTarget | ErrorKind::UnsupportedScheme), "{input:?}: {e}");
            assert!(e.message().starts_with("invalid target '"), "{input:?}: {e}");
            return;
        }
    };
    for scheme in ["etcd", "dns"] {
        let xds = names::xds_target_for(input, scheme).unwrap_or_else(|e| panic!("{input:?} parsed but has no xds form: {e}"));
        let name = xds.strip_prefix("xds:///").unwrap_or_else(|| panic!("{input:?}: {xds:?} is no xds:/// target"));
        let back = names::target_for_listener(name, scheme).unwrap_or_else(|e| panic!("{input:?} via {xds:?}: {e}"));
        let again =
            Target::parse_with_policy(&back).unwrap_or_else(|e| panic!("{input:?} via {xds:?} became {back:?}: {e}"));
        assert_eq!(again, parsed, "{input:?} via {xds:?} became {back:?}");
    }
    let canonical = format!("{}{}", canonical(&parsed.0), canonical_query(&parsed.1));
    // Some addresses print longer than they can be written (`::ffff:a:b` prints as `::ffff:0.10.0.11`):
    // a canonical form past the length limit does not exist.
    if canonical.len() > MAX_TARGET_LEN {
        return;
    }
    match Target::parse_with_policy(&canonical) {
        Ok(again) => assert_eq!(again, parsed, "{input:?} parsed, its canonical form {canonical:?} parses differently"),
        Err(e) => panic!("{input:?} parsed, its canonical form {canonical:?} does not: {e}"),
    }
});

/// The target written in the one form each scheme's documentation gives, from its parsed parts only.
fn canonical(target: &Target) -> String {
    let copies = |n: u32| if n == 1 { String::new() } else { format!("#{n}") };
    match target {
        Target::Ipv4(addrs) => format!("ipv4:{}", join(addrs.iter().map(|a| a.to_string()))),
        Target::Ipv6(addrs) => format!("ipv6:{}", join(addrs.iter().map(|a| a.to_string()))),
        // `unix:` + `//x` would read `x` as an authority; the empty authority keeps absolute paths whole.
        Target::Unix(path) if path.starts_with('/') => format!("unix://{path}"),
        Target::Unix(path) => format!("unix:{path}"),
        Target::Passthrough(endpoint) => format!("passthrough:///{endpoint}"),
        Target::Pass(entries) => {
            format!(
                "pass:///{}",
                join(entries.iter().map(|e| format!("{}{}", e.host.with_port(e.port), copies(e.copies))))
            )
        }
        Target::Etcd(t) => {
            let authority = match &t.cluster {
                ClusterRef::Default => "",
                ClusterRef::Endpoint(endpoint) => endpoint,
                ClusterRef::Named(name) => name,
            };
            format!("etcd://{authority}/{}{}", t.service, copies(t.copies))
        }
        Target::Dns(t) => {
            let server = t.server.map(|s| s.to_string()).unwrap_or_default();
            format!("dns://{server}/{}", t.host.with_port(t.port))
        }
        Target::Zk(t) => {
            let authority = match &t.ensemble {
                EnsembleRef::Default => String::new(),
                EnsembleRef::Servers(servers) => servers.join(","),
                EnsembleRef::Named(name) => name.clone(),
            };
            format!("zk://{authority}{}{}", t.path, copies(t.copies))
        }
    }
}

/// The query in the README's order of keys, every value percent-encoded but for unreserved
/// characters; nothing when the target has none.
fn canonical_query(policy: &Policy) -> String {
    let mut items: Vec<String> =
        policy.selectors.iter().map(|(k, v)| format!("select.{}={}", encode(k), encode(v))).collect();
    if let Some(empty) = policy.empty {
        items.push(format!("empty={}", empty.name()));
    }
    if let Some(zone) = &policy.prefer_zone {
        items.push(format!("prefer-zone={}", encode(zone)));
    }
    if let Some(n) = policy.min_zone {
        items.push(format!("min-zone={n}"));
    }
    if let Some(n) = policy.subset {
        items.push(format!("subset={n}"));
    }
    if let Some(id) = &policy.client_id {
        items.push(format!("client-id={}", encode(id)));
    }
    if let Some(service) = &policy.health {
        items.push(format!("health={}", if service.is_empty() { "*".to_string() } else { encode(service) }));
    }
    if items.is_empty() { String::new() } else { format!("?{}", items.join("&")) }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(",")
}
