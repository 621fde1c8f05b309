//! Targets whose list is in the target itself (`ipv4`, `ipv6`, `unix`, `passthrough`, `pass`):
//! one update, at once, and nothing to re-resolve.

use crate::resolver::{BackendTask, ResolverContext};
use crate::target::Target;
use crate::update::{Address, AddressFamily};

/// The list a static target stands for; empty for the schemes served elsewhere.
pub fn endpoints(target: &Target) -> Vec<Address> {
    let mut out = Vec::new();
    match target {
        Target::Ipv4(addrs) | Target::Ipv6(addrs) => out.extend(addrs.iter().copied().map(Address::from_socket_addr)),
        Target::Unix(path) => out.push(Address::backend(format!("unix:{path}"), AddressFamily::Unix)),
        Target::Passthrough(name) => out.push(Address::backend(name.clone(), AddressFamily::Name)),
        Target::Pass(entries) => {
            for entry in entries {
                Address::from_host_port(&entry.host, entry.port).push_copies(entry.copies, &mut out);
            }
        }
        Target::Etcd(_) | Target::Dns(_) | Target::Zk(_) => {}
    }
    out
}

pub(crate) fn resolver_task(target: &Target, mut ctx: ResolverContext) -> BackendTask {
    let list = endpoints(target);
    Box::pin(async move { ctx.publish(list, None) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_expands_copies_in_order() {
        let t = Target::parse("pass:///127.0.0.1:50051#2,[::1]:50052,name.test:7").unwrap();
        let got: Vec<_> = endpoints(&t).into_iter().map(|e| (e.address.to_string(), e.family, e.copy_index)).collect();
        assert_eq!(
            got,
            vec![
                ("127.0.0.1:50051".to_string(), AddressFamily::Ipv4, 0),
                ("127.0.0.1:50051".to_string(), AddressFamily::Ipv4, 1),
                ("[::1]:50052".to_string(), AddressFamily::Ipv6, 0),
                ("name.test:7".to_string(), AddressFamily::Name, 0),
            ]
        );
    }

    #[test]
    fn unix_and_passthrough_become_single_entries() {
        let e = endpoints(&Target::parse("unix:///run/x.sock").unwrap());
        assert_eq!((e[0].address.as_str(), e[0].family), ("unix:/run/x.sock", AddressFamily::Unix));
        let e = endpoints(&Target::parse("passthrough:///svc:1").unwrap());
        assert_eq!((e[0].address.as_str(), e[0].family), ("svc:1", AddressFamily::Name));
    }
}
