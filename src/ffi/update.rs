//! `gn_update` and `gn_address`: a C view of one complete address list, built once per delivery.

use std::ffi::c_char;
use std::net::SocketAddr;
use std::sync::Arc;

use super::plumbing::{free_handle, on_handle};
use crate::update::{AddressFamily, AddressKind, ResolverState, Update};

/// How to dial an address string.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gn_address_family {
    /// "a.b.c.d:port"
    Ipv4 = 0,
    /// "[v6]:port"
    Ipv6 = 1,
    /// "unix:/path"
    Unix = 2,
    /// "host:port" or an opaque passthrough string: the consumer resolves it.
    Name = 3,
}

/// What an entry points at.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gn_address_kind {
    /// A server that handles RPCs.
    Backend = 0,
    /// A grpclb load balancer.
    Balancer = 1,
}

/// Whether an update's list is fresh.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gn_resolver_state {
    /// The list is what the source says now.
    Ok = 0,
    /// The source could not be read; the list is the last good one (empty if there was none) and
    /// `gn_update_error_message` says why.
    TransientError = 1,
}

/// One entry of an address list. Read it through the pointer `gn_update_address` returns; fields may
/// be appended in later versions, so never copy or allocate a `gn_address` by value. All pointers
/// are borrowed from the update and valid as long as it is.
#[repr(C)]
pub struct gn_address {
    /// The address, NUL-terminated UTF-8, in the form `family` says.
    pub addr: *const c_char,
    pub family: gn_address_family,
    pub kind: gn_address_kind,
    /// Relative share of traffic, at least 1.
    pub weight: u32,
    /// 0..N-1 when the target asked for N connections to this address (`#N`): entries with the same
    /// `addr` differ here, so a stack must keep them apart to open N connections.
    pub copy_index: u32,
    /// Metadata as JSON text: the same JSON value as the source had, written out compactly (key order
    /// and number forms may differ from the source's text); NULL when there is none.
    pub metadata_json: *const c_char,
    /// For `GN_ADDRESS_FAMILY_IPV4` and `GN_ADDRESS_FAMILY_IPV6`: the IP of `addr` as the library
    /// parsed it, in network byte order, ready for `sin_addr` (the first 4 bytes) or `sin6_addr`
    /// (all 16); the rest is zero. All zero for other families.
    pub ip: [u8; 16],
    /// The port of `addr` in host byte order (pass it through `htons` for a `sockaddr`); 0 for
    /// families other than IPv4 and IPv6.
    pub port: u16,
    /// For IPv6: the zone of a link-local address as the interface index it was written as
    /// (`[fe80::1%2]:80` gives 2), ready for `sin6_scope_id`; 0 when `addr` has no zone and for other
    /// families.
    pub scope_id: u32,
}

/// One complete address list with its state and service config. An update handed to a callback is
/// borrowed for that call only; one returned by `gn_resolver_next` is owned by the caller and freed
/// with `gn_update_free`. Immutable: it may be read from any thread.
pub struct gn_update {
    update: Arc<Update>,
    addresses: Vec<gn_address>,
    error_message: *const c_char,
    service_config: *const c_char,
    // Every string the pointers above point into, NUL-terminated one after the other: building an
    // update allocates twice, whatever the list's length.
    _text: Vec<u8>,
}

// SAFETY: the raw pointers point into `_text`, owned by the same immutable value.
unsafe impl Send for gn_update {}
unsafe impl Sync for gn_update {}

/// `ip`, `port` and `scope_id` of an entry. IP entries hold the text of the `SocketAddr` the core
/// parsed (written by its `Display`), so reading it back gives that same value.
fn socket_fields(address: &str, family: AddressFamily) -> ([u8; 16], u16, u32) {
    let mut ip = [0u8; 16];
    if !matches!(family, AddressFamily::Ipv4 | AddressFamily::Ipv6) {
        return (ip, 0, 0);
    }
    if let Some((octets, port)) = ipv4_with_port(address) {
        ip[..4].copy_from_slice(&octets);
        return (ip, port, 0);
    }
    match address.parse::<SocketAddr>() {
        Ok(SocketAddr::V4(a)) => {
            ip[..4].copy_from_slice(&a.ip().octets());
            (ip, a.port(), 0)
        }
        Ok(SocketAddr::V6(a)) => (a.ip().octets(), a.port(), a.scope_id()),
        Err(_) => (ip, 0, 0),
    }
}

/// `a.b.c.d:port` as `Display` writes an IPv4 socket address (no leading zeros, port 1 and up), read
/// by hand: an update of 100,000 entries reads every one, and the general parser took a quarter of
/// a change's CPU there. Anything else is `None`, for the general parser.
fn ipv4_with_port(text: &str) -> Option<([u8; 4], u16)> {
    fn number(digits: &[u8], max: u32) -> Option<u32> {
        if digits.is_empty() || digits.len() > 5 || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        let mut value = 0u32;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(d - b'0');
        }
        (value <= max).then_some(value)
    }
    let (ip, port) = text.split_once(':')?;
    let mut octets = [0u8; 4];
    let mut parts = ip.split('.');
    for octet in &mut octets {
        *octet = number(parts.next()?.as_bytes(), 255)? as u8;
    }
    if parts.next().is_some() {
        return None;
    }
    let port = number(port.as_bytes(), 65535)?;
    (port > 0).then_some((octets, port as u16))
}

/// C strings written one after the other into a buffer allocated once at its final size, so that
/// the pointers handed out stay valid while the buffer lives.
struct Text {
    bytes: Vec<u8>,
}

impl Text {
    /// The bytes `text` takes: an inner NUL is written as the two characters `\0`, so that C sees
    /// the whole text.
    fn size(text: &str) -> usize {
        text.len() + text.bytes().filter(|b| *b == 0).count() + 1
    }

    fn with_size(size: usize) -> Self {
        Text { bytes: Vec::with_capacity(size) }
    }

    fn push(&mut self, text: &str) -> *const c_char {
        assert!(self.bytes.len() + Self::size(text) <= self.bytes.capacity(), "sized before");
        let at = self.bytes.len();
        for part in text.split('\0').enumerate() {
            if part.0 > 0 {
                self.bytes.extend_from_slice(b"\\0");
            }
            self.bytes.extend_from_slice(part.1.as_bytes());
        }
        self.bytes.push(0);
        // Within the capacity reserved at the start: the buffer never moves.
        self.bytes[at..].as_ptr().cast()
    }

    fn push_opt(&mut self, text: Option<&str>) -> *const c_char {
        text.map_or(std::ptr::null(), |t| self.push(t))
    }
}

impl gn_update {
    pub(crate) fn new(update: Arc<Update>) -> Self {
        let texts =
            update.addresses.iter().flat_map(|e| std::iter::once(e.address.as_str()).chain(e.metadata.as_deref()));
        let size = texts.chain(update.error_message()).chain(update.service_config.as_deref()).map(Text::size).sum();
        let mut text = Text::with_size(size);
        let mut addresses = Vec::with_capacity(update.addresses.len());
        for e in update.addresses.iter() {
            let (ip, port, scope_id) = socket_fields(&e.address, e.family);
            addresses.push(gn_address {
                addr: text.push(&e.address),
                family: match e.family {
                    AddressFamily::Ipv4 => gn_address_family::Ipv4,
                    AddressFamily::Ipv6 => gn_address_family::Ipv6,
                    AddressFamily::Unix => gn_address_family::Unix,
                    AddressFamily::Name => gn_address_family::Name,
                },
                kind: match e.kind {
                    AddressKind::Backend => gn_address_kind::Backend,
                    AddressKind::Balancer => gn_address_kind::Balancer,
                },
                weight: e.weight.max(1),
                copy_index: e.copy_index,
                metadata_json: text.push_opt(e.metadata.as_deref()),
                ip,
                port,
                scope_id,
            });
        }
        gn_update {
            error_message: text.push_opt(update.error_message()),
            service_config: text.push_opt(update.service_config.as_deref()),
            update,
            addresses,
            _text: text.bytes,
        }
    }
}

/// The update's state; `GN_RESOLVER_STATE_TRANSIENT_ERROR` for NULL.
#[no_mangle]
pub extern "C" fn gn_update_state(update: *const gn_update) -> gn_resolver_state {
    on_handle(update, gn_resolver_state::TransientError, |u| match u.update.state {
        ResolverState::Ok => gn_resolver_state::Ok,
        _ => gn_resolver_state::TransientError,
    })
}

/// Why the state is `GN_RESOLVER_STATE_TRANSIENT_ERROR`; NULL when the state is OK or `update` is NULL.
/// Borrowed from the update.
#[no_mangle]
pub extern "C" fn gn_update_error_message(update: *const gn_update) -> *const c_char {
    on_handle(update, std::ptr::null(), |u| u.error_message)
}

/// The update's number, counting from 1 per resolver. A gap means updates were superseded before
/// delivery (the latest complete list always wins). 0 for NULL.
#[no_mangle]
pub extern "C" fn gn_update_sequence(update: *const gn_update) -> u64 {
    on_handle(update, 0, |u| u.update.sequence)
}

/// How many entries the list has; 0 for NULL.
#[no_mangle]
pub extern "C" fn gn_update_address_count(update: *const gn_update) -> usize {
    on_handle(update, 0, |u| u.addresses.len())
}

/// Entry `index` of the list, borrowed from the update; NULL when `update` is NULL or `index` is out
/// of range.
#[no_mangle]
pub extern "C" fn gn_update_address(update: *const gn_update, index: usize) -> *const gn_address {
    on_handle(update, std::ptr::null(), |u| u.addresses.get(index).map_or(std::ptr::null(), |a| a as *const _))
}

/// The service config chosen for this client, as JSON text; NULL when there is none or `update` is
/// NULL. Borrowed from the update.
#[no_mangle]
pub extern "C" fn gn_update_service_config(update: *const gn_update) -> *const c_char {
    on_handle(update, std::ptr::null(), |u| u.service_config)
}

/// Frees an update returned by `gn_resolver_next`. NULL is a no-op. Never pass the update a callback
/// received: that one is borrowed.
#[no_mangle]
pub extern "C" fn gn_update_free(update: *mut gn_update) {
    free_handle(update)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ipv4_reader_agrees_with_the_general_parser_and_reads_what_display_writes() {
        let odd = [
            "1.2.3.4:5",
            "255.255.255.255:65535",
            "0.0.0.0:1",
            "01.2.3.4:5",
            "1.2.3.4:05",
            "1.2.3.4:0",
            "1.2.3.4:65536",
            "256.1.1.1:80",
            "1.2.3:80",
            "1.2.3.4.5:80",
            "1.2.3.4",
            "1.2.3.4:",
            ":80",
            "1..3.4:80",
            "1.2.3.4:8a",
            "+1.2.3.4:80",
            "1.2.3.4:+80",
            "[::1]:80",
            "1.2.3.4:80:1",
            "١.2.3.4:80",
            "1.2.3.4:999999",
        ];
        let canonical = (0..2000u32).map(|i| {
            let ip = std::net::Ipv4Addr::from(i.wrapping_mul(2_654_435_761));
            SocketAddr::from((ip, (i % 65535 + 1) as u16)).to_string()
        });
        for text in odd.iter().map(|s| s.to_string()).chain(canonical) {
            let general = match text.parse::<SocketAddr>() {
                Ok(SocketAddr::V4(a)) if a.port() > 0 => Some((a.ip().octets(), a.port())),
                _ => None,
            };
            let by_hand = ipv4_with_port(&text);
            if by_hand.is_some() || text.parse::<SocketAddr>().is_ok_and(|a| a.to_string() == text && a.port() > 0) {
                assert_eq!(by_hand, general, "{text}");
            }
            assert!(by_hand.is_none() || by_hand == general, "{text}");
        }
        assert_eq!(ipv4_with_port("10.0.0.1:80"), Some(([10, 0, 0, 1], 80)));
    }
}
