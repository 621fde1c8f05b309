//! The one mapping between xDS listener names and libgnaming targets, both ways.
//!
//! A client dials `xds:///NAME` and asks for the listener NAME (percent-decoded by gRPC; decoded here
//! again, which leaves an already decoded name as it is unless it holds a literal `%XX`):
//! - NAME that starts with a libgnaming scheme (`dns:///host:443`, `etcd://prod/echo`,
//!   `pass:///127.0.0.1:1,127.0.0.1:2`) is that target;
//! - any other NAME (`echo`) means `<default scheme>:///NAME`, the default scheme being etcd unless
//!   the server was told otherwise.
//!
//! The same NAME is the Cluster's and the ClusterLoadAssignment's name, so one name is one target
//! through all three resource types.

use crate::error::Error;
use crate::target::{EtcdTarget, PassEntry, Target, ZkTarget, SCHEMES};

/// The scheme a bare name resolves with unless the server is told otherwise.
pub const DEFAULT_SCHEME: &str = "etcd";

/// The target a listener name stands for, as text (the key under which its resolver is shared).
pub fn target_for_listener(name: &str, default_scheme: &str) -> Result<String, Error> {
    let decoded = percent_decode(name)?;
    if decoded.is_empty() {
        return Err(Error::invalid_argument("xds: the listener name is empty"));
    }
    Ok(if names_scheme(&decoded) { decoded } else { format!("{default_scheme}:///{decoded}") })
}

/// The `xds:///` target that reaches `target` through a server whose default scheme is
/// `default_scheme`: the short form `xds:///NAME` when `target` is `<default>:///NAME` with a plain
/// NAME, otherwise `xds:///` and the whole target, percent-encoded where a URI path cannot hold it.
/// `#N` survives the trip but means one connection per address to an xDS client.
pub fn xds_target_for(target: &str, default_scheme: &str) -> Result<String, Error> {
    Target::parse(target)?;
    check_scheme(default_scheme)?;
    let short = target.strip_prefix(default_scheme).and_then(|rest| rest.strip_prefix(":///"));
    if let Some(name) = short.filter(|n| !n.is_empty() && !names_scheme(n) && n.bytes().all(is_plain)) {
        return Ok(format!("xds:///{name}"));
    }
    if !names_scheme(target) {
        // The parser reads a target without a scheme (`host:port`) as gRPC does: `dns:///host:port`.
        return Ok(format!("xds:///dns:///{}", percent_encode(target)));
    }
    Ok(format!("xds:///{}", percent_encode(target)))
}

/// One of the xDS channels a client opens for a target: its `xds:` target and its share of the picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsChannel {
    pub target: String,
    pub share: u32,
}

/// The xDS channels that give `target`'s `#N` connections per address, since xDS cannot list an
/// address twice: channel `c` holds the addresses asked for more than `c` times, so N channels, each
/// with subchannels of its own, open N connections to an address with `#N`. A client picks a channel
/// in proportion to its share (the entries it holds), which keeps every entry's share of the picks
/// what the list gives it. A target without `#N` is one channel.
pub fn xds_channels_for(target: &str, default_scheme: &str) -> Result<Vec<XdsChannel>, Error> {
    let one = |t: &str, share: u32| xds_target_for(t, default_scheme).map(|target| XdsChannel { target, share });
    match Target::parse(target)? {
        Target::Etcd(EtcdTarget { copies, .. }) | Target::Zk(ZkTarget { copies, .. }) if copies > 1 => {
            // Every address of an etcd or zk target gets the same N: N equal channels on the target
            // without its `#N` (which may stand before or after a `?query`, which stays).
            let (before, after) = target.rsplit_once('#').expect("the parser read a #N");
            let channel = one(&format!("{before}{}", after.trim_start_matches(|c: char| c.is_ascii_digit())), 1)?;
            Ok(vec![channel; copies as usize])
        }
        Target::Pass(entries) if entries.iter().any(|e| e.copies > 1) => {
            let layers = entries.iter().map(|e| e.copies).max().unwrap_or(1);
            // Each layer keeps the target's policies; as in a URI, a '#' ends the query.
            let query = target.find('?').map_or("", |q| target[q..].split('#').next().unwrap_or_default());
            (0..layers)
                .map(|layer| {
                    let held: Vec<&PassEntry> = entries.iter().filter(|e| e.copies > layer).collect();
                    let list: Vec<String> = held.iter().map(|e| e.host.with_port(e.port)).collect();
                    one(&format!("pass:///{}{query}", list.join(",")), held.len() as u32)
                })
                .collect()
        }
        _ => Ok(vec![one(target, 1)?]),
    }
}

/// Checks a default scheme given by an operator.
pub fn check_scheme(scheme: &str) -> Result<(), Error> {
    if SCHEMES.contains(&scheme) {
        Ok(())
    } else {
        Err(Error::invalid_argument(format!(
            "xds: unknown default scheme '{scheme}' (libgnaming serves: {})",
            SCHEMES.join(", ")
        )))
    }
}

/// Whether `name` begins with one of libgnaming's schemes (in any case, as the parser reads them)
/// and a ':'.
fn names_scheme(name: &str) -> bool {
    name.split_once(':').is_some_and(|(scheme, _)| SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)))
}

/// Characters a short name keeps as they are: the ones no scheme or URI parser treats specially.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// Percent-encodes what a URI path cannot hold as is (RFC 3986 pchar plus '/'); keeps the rest
/// readable.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> Result<String, Error> {
    crate::target::percent_decode(text)
        .map_err(|m| Error::invalid_argument(format!("xds: bad percent-encoding in listener name '{text}': {m}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_means_the_default_scheme() {
        assert_eq!(target_for_listener("echo", "etcd").unwrap(), "etcd:///echo");
        assert_eq!(target_for_listener("echo.test:50051", "dns").unwrap(), "dns:///echo.test:50051");
    }

    #[test]
    fn a_full_target_is_taken_as_it_is_and_decoded() {
        assert_eq!(target_for_listener("dns:///host:443", "etcd").unwrap(), "dns:///host:443");
        assert_eq!(target_for_listener("etcd://prod/echo", "dns").unwrap(), "etcd://prod/echo");
        assert_eq!(target_for_listener("pass:///%5B::1%5D:1%232", "etcd").unwrap(), "pass:///[::1]:1#2");
    }

    #[test]
    fn copies_become_channels_each_holding_the_addresses_asked_for_more_than_its_index() {
        let plain = xds_channels_for("etcd:///echo", "etcd").unwrap();
        assert_eq!(plain, vec![XdsChannel { target: "xds:///echo".into(), share: 1 }]);
        let three = xds_channels_for("etcd://prod/echo#3", "etcd").unwrap();
        assert_eq!(three, vec![XdsChannel { target: "xds:///etcd://prod/echo".into(), share: 1 }; 3]);
        let pass = xds_channels_for("pass:///127.0.0.1:1#3,[::1]:2,127.0.0.1:3#2", "etcd").unwrap();
        let expect = [
            ("xds:///pass:///127.0.0.1:1,%5B::1%5D:2,127.0.0.1:3", 3),
            ("xds:///pass:///127.0.0.1:1,127.0.0.1:3", 2),
            ("xds:///pass:///127.0.0.1:1", 1),
        ];
        let got: Vec<(&str, u32)> = pass.iter().map(|c| (c.target.as_str(), c.share)).collect();
        assert_eq!(got, expect);
        assert_eq!(xds_channels_for("etcd:///echo", "dns").unwrap()[0].target, "xds:///etcd:///echo");
        assert_eq!(xds_channels_for("dns:///h:1", "etcd").unwrap().len(), 1);
        assert!(xds_channels_for("etcd:///echo#0", "etcd").is_err());
        let zk = xds_channels_for("zk://prod/services/echo#2?empty=keep", "etcd").unwrap();
        assert_eq!(zk, vec![XdsChannel { target: "xds:///zk://prod/services/echo%3Fempty=keep".into(), share: 1 }; 2]);
    }

    #[test]
    fn copies_keep_the_query_in_every_channel() {
        let channel = |t: &str| XdsChannel { target: t.into(), share: 1 };
        let query = "xds:///etcd:///echo%3Fselect.version=v2&empty=keep";
        assert_eq!(
            xds_channels_for("etcd:///echo?select.version=v2&empty=keep#2", "etcd").unwrap(),
            vec![channel(query); 2]
        );
        assert_eq!(
            xds_channels_for("etcd:///echo#2?select.version=v2&empty=keep", "etcd").unwrap(),
            vec![channel(query); 2]
        );
        let pass = xds_channels_for("pass:///127.0.0.1:1#2,127.0.0.1:2?empty=keep", "etcd").unwrap();
        let got: Vec<&str> = pass.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(
            got,
            ["xds:///pass:///127.0.0.1:1,127.0.0.1:2%3Fempty=keep", "xds:///pass:///127.0.0.1:1%3Fempty=keep"]
        );
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        assert!(target_for_listener("", "etcd").is_err());
        let e = target_for_listener("a%zz", "etcd").unwrap_err();
        assert!(e.message().contains("percent"), "{}", e.message());
        let e = target_for_listener("echo%+1", "etcd").unwrap_err();
        assert!(e.message().contains("'%+1' is not a %XX escape"), "{}", e.message());
    }

    #[test]
    fn the_short_form_is_used_only_where_it_maps_back_to_the_same_target() {
        assert_eq!(xds_target_for("etcd:///echo", "etcd").unwrap(), "xds:///echo");
        assert_eq!(xds_target_for("etcd:///echo", "dns").unwrap(), "xds:///etcd:///echo");
        assert_eq!(xds_target_for("etcd://prod/echo", "etcd").unwrap(), "xds:///etcd://prod/echo");
        assert_eq!(xds_target_for("etcd:///echo#2", "etcd").unwrap(), "xds:///etcd:///echo%232");
        assert_eq!(xds_target_for("pass:///[::1]:1", "etcd").unwrap(), "xds:///pass:///%5B::1%5D:1");
        assert_eq!(
            xds_target_for("etcd:////microservices/echo", "etcd").unwrap(),
            "xds:///etcd:////microservices/echo"
        );
    }

    #[test]
    fn every_xds_target_maps_back_to_its_target() {
        for (target, scheme) in [
            ("etcd:///echo", "etcd"),
            ("etcd:///echo", "dns"),
            ("dns:///host.test:443", "etcd"),
            ("etcd://prod/echo#3", "etcd"),
            ("pass:///127.0.0.1:1#2,[::1]:2", "etcd"),
            ("unix:///tmp/x.sock", "etcd"),
            ("eTcd://prod/o", "etcd"),
            ("etcd:///echo?select.version=v2&prefer-zone=a#2", "etcd"),
            ("etcd:///echo?select.team=a%26b%25", "dns"),
            ("dns:///host.test:443?empty=keep", "etcd"),
            ("etcd:///echo?subset=25&client-id=web%2F7#2", "etcd"),
            ("etcd:///echo?health=*#2", "etcd"),
            ("pass:///127.0.0.1:1,127.0.0.1:2?subset=1", "dns"),
            ("pass:///127.0.0.1:1?health=echo.Echo", "dns"),
            // Prefixes at etcd's root, where Kratos and go-micro register.
            ("etcd:////microservices/echo", "etcd"),
            ("etcd://prod//micro/registry/echo#2", "etcd"),
            ("zk://prod/services/echo", "etcd"),
            ("zk://127.0.0.1:2181,[::1]:2182/services/echo#2?empty=keep", "etcd"),
            ("zk:///services/echo", "zk"),
        ] {
            let xds = xds_target_for(target, scheme).unwrap();
            let name = xds.strip_prefix("xds:///").unwrap();
            assert_eq!(target_for_listener(name, scheme).unwrap(), target, "via {xds}");
        }
    }

    #[test]
    fn a_target_without_a_scheme_keeps_its_dns_meaning() {
        assert_eq!(xds_target_for("localhost:50051", "etcd").unwrap(), "xds:///dns:///localhost:50051");
    }

    #[test]
    fn an_invalid_target_or_scheme_has_no_xds_form() {
        assert!(xds_target_for("nosuch:///x", "etcd").is_err());
        assert!(xds_target_for("etcd:///echo", "nosuch").is_err());
    }
}
