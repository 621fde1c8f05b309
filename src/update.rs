//! What a resolver delivers: the complete current address list with weights, copies, metadata and
//! service config, plus whether the list is fresh or kept through a transient error.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::target::Host;

/// How a consumer should dial an entry's address string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// `a.b.c.d:port`
    Ipv4,
    /// `[v6]:port`
    Ipv6,
    /// `unix:/path`
    Unix,
    /// `host:port` or an opaque passthrough string, left for the consumer to resolve.
    Name,
}

/// What an entry points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKind {
    /// A server that handles RPCs.
    Backend,
    /// A grpclb balancer (DNS `_grpclb._tcp` SRV records).
    Balancer,
}

/// Immutable text shared by reference count: an entry copied from a watch's state into a resolver's
/// list, and from there into each update, copies a pointer, not its strings.
#[derive(Clone, PartialOrd, Ord)]
pub struct SharedStr(Arc<str>);

impl SharedStr {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        // The same text is most often the same allocation: an unchanged entry of the previous list.
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for SharedStr {}

impl std::hash::Hash for SharedStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> Self {
        SharedStr(text.into())
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> Self {
        SharedStr(text.into())
    }
}

impl std::fmt::Display for SharedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

/// One entry of an address list. Entries that share an address differ in `copy`, so that stacks which
/// merge identical addresses still open one connection per entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub address: SharedStr,
    pub family: AddressFamily,
    pub kind: AddressKind,
    /// Relative share of traffic; 1 unless the source says otherwise.
    pub weight: u32,
    /// 0..N-1 for an address asked for N times (`#N`).
    pub copy_index: u32,
    /// Metadata as JSON text: the same JSON value as the source had, written out compactly (key order
    /// and number forms may differ from the source's text).
    pub metadata: Option<SharedStr>,
}

impl Address {
    /// A backend with weight 1, copy 0 and no metadata.
    pub fn backend(address: String, family: AddressFamily) -> Self {
        Address {
            address: address.into(),
            family,
            kind: AddressKind::Backend,
            weight: 1,
            copy_index: 0,
            metadata: None,
        }
    }

    pub fn from_socket_addr(addr: SocketAddr) -> Self {
        let family = if addr.is_ipv4() { AddressFamily::Ipv4 } else { AddressFamily::Ipv6 };
        Self::backend(addr.to_string(), family)
    }

    pub fn from_host_port(host: &Host, port: u16) -> Self {
        let family = match host {
            Host::Ip(ip) if ip.is_ipv4() => AddressFamily::Ipv4,
            Host::Ip(_) => AddressFamily::Ipv6,
            Host::Name(_) => AddressFamily::Name,
        };
        Self::backend(host.with_port(port), family)
    }

    /// This entry `copies` times, numbered 0..copies-1, appended to `out`.
    pub fn push_copies(self, copies: u32, out: &mut Vec<Address>) {
        for copy in 1..copies {
            out.push(Address { copy_index: copy, ..self.clone() });
        }
        out.push(self);
        let n = out.len();
        // The original went last to avoid one clone; put it first so copies read 0, 1, 2...
        out[n - copies as usize..].rotate_right(1);
    }
}

/// Whether an update's list is fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverState {
    /// The list is what the source says now.
    Ok,
    /// The source could not be read; the list is the last good one (empty if there never was one).
    TransientError(String),
}

/// One delivery: always the complete list, never a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Counts the updates a resolver published, from 1. A gap means coalescing skipped updates that
    /// were superseded before the consumer took them.
    pub sequence: u64,
    pub state: ResolverState,
    /// Shared with the resolver's last good list, which errors deliver again without a copy.
    pub addresses: Arc<Vec<Address>>,
    /// The chosen service config as JSON text, if the source provides one.
    pub service_config: Option<String>,
}

impl Update {
    pub fn is_ok(&self) -> bool {
        self.state == ResolverState::Ok
    }

    pub fn error_message(&self) -> Option<&str> {
        match &self.state {
            ResolverState::Ok => None,
            ResolverState::TransientError(m) => Some(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_copies_numbers_entries_from_zero() {
        let mut out = vec![Address::backend("x:1".into(), AddressFamily::Name)];
        Address::backend("a:1".into(), AddressFamily::Name).push_copies(3, &mut out);
        let copies: Vec<_> = out.iter().map(|e| (e.address.as_str(), e.copy_index)).collect();
        assert_eq!(copies, vec![("x:1", 0), ("a:1", 0), ("a:1", 1), ("a:1", 2)]);
    }
}
