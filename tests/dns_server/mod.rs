//! A real DNS server for tests: hickory-server on an ephemeral loopback port (UDP and TCP), answering
//! from a record table the test changes while it runs, able to fail on purpose (SERVFAIL, silence),
//! and logging every query it receives.
#![allow(dead_code)]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, SRV, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;

/// How the server treats queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answer from the record table: records, NODATA, or NXDOMAIN for unknown names.
    Answer,
    /// Answer every query with SERVFAIL.
    ServFail,
    /// Read queries and never answer, so clients time out.
    Silent,
}

/// One query the server received.
#[derive(Debug, Clone)]
pub struct Query {
    pub name: String,
    pub record_type: RecordType,
    pub at: Instant,
}

struct Zone {
    records: Vec<Record>,
    mode: Mode,
    log: Vec<Query>,
}

pub struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    // Dropping the runtime stops the server.
    _runtime: tokio::runtime::Runtime,
}

fn name(text: &str) -> Name {
    Name::from_str(&format!("{}.", text.trim_end_matches('.'))).expect("a valid DNS name")
}

impl DnsServer {
    /// Starts a server on 127.0.0.1 with UDP and TCP on the same free port.
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let zone = Arc::new(Mutex::new(Zone { records: Vec::new(), mode: Mode::Answer, log: Vec::new() }));
        let handler = Handler { zone: Arc::clone(&zone) };
        let addr = runtime.block_on(async move {
            // The UDP port is free, but the same TCP port may not be: try a few.
            for _ in 0..20 {
                let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let addr = udp.local_addr().unwrap();
                let Ok(tcp) = tokio::net::TcpListener::bind(addr).await else {
                    continue;
                };
                let mut server = Server::new(handler);
                server.register_socket(udp);
                server.register_listener(tcp, Duration::from_secs(5), 16);
                // The server runs as long as its tasks; keep it alive in a task of its own.
                tokio::spawn(async move {
                    let _ = server.block_until_done().await;
                });
                return addr;
            }
            panic!("no free loopback port for UDP and TCP after 20 tries");
        });
        DnsServer { addr, zone, _runtime: runtime }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn edit(&self, f: impl FnOnce(&mut Zone)) {
        f(&mut self.zone.lock().unwrap())
    }

    /// Replaces the A and AAAA records of `host` with `ips`.
    pub fn set_addresses(&self, host: &str, ips: &[&str], ttl: u32) {
        let owner = name(host);
        self.edit(|z| {
            z.records.retain(|r| !(r.name == owner && matches!(r.record_type(), RecordType::A | RecordType::AAAA)));
            for ip in ips {
                let data = match ip.parse::<IpAddr>().expect("an IP address") {
                    IpAddr::V4(v4) => RData::A(A(v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                };
                z.records.push(Record::from_rdata(owner.clone(), ttl, data));
            }
        });
    }

    /// Replaces the SRV records at `owner` with `(priority, weight, port, target)` entries.
    pub fn set_srv(&self, owner: &str, entries: &[(u16, u16, u16, &str)], ttl: u32) {
        let owner = name(owner);
        self.edit(|z| {
            z.records.retain(|r| !(r.name == owner && r.record_type() == RecordType::SRV));
            for (priority, weight, port, target) in entries {
                let srv = SRV::new(*priority, *weight, *port, name(target));
                z.records.push(Record::from_rdata(owner.clone(), ttl, RData::SRV(srv)));
            }
        });
    }

    /// Replaces the TXT records at `owner`; each record is a list of strings.
    pub fn set_txt(&self, owner: &str, records: &[&[&str]], ttl: u32) {
        let owner = name(owner);
        self.edit(|z| {
            z.records.retain(|r| !(r.name == owner && r.record_type() == RecordType::TXT));
            for strings in records {
                let txt = TXT::new(strings.iter().map(|s| s.to_string()).collect());
                z.records.push(Record::from_rdata(owner.clone(), ttl, RData::TXT(txt)));
            }
        });
    }

    /// Removes every record of `owner`: the name then gets NXDOMAIN.
    pub fn remove(&self, owner: &str) {
        let owner = name(owner);
        self.edit(|z| z.records.retain(|r| r.name != owner));
    }

    pub fn set_mode(&self, mode: Mode) {
        self.edit(|z| z.mode = mode);
    }

    /// The queries received so far for `owner` (any type when `record_type` is `None`).
    pub fn queries(&self, owner: &str, record_type: Option<RecordType>) -> Vec<Query> {
        let owner = name(owner).to_ascii().to_ascii_lowercase();
        let zone = self.zone.lock().unwrap();
        zone.log.iter().filter(|q| q.name == owner && record_type.is_none_or(|t| q.record_type == t)).cloned().collect()
    }

    pub fn query_count(&self) -> usize {
        self.zone.lock().unwrap().log.len()
    }
}

struct Handler {
    zone: Arc<Mutex<Zone>>,
}

impl Handler {
    /// Logs the query and decides the answer: `None` means stay silent.
    fn answer(&self, request: &Request) -> Option<(ResponseCode, Vec<Record>)> {
        let query = request.queries.queries().first()?;
        let (owner, record_type) = (query.name().clone(), query.query_type());
        let mut zone = self.zone.lock().unwrap();
        let logged = Name::from(owner.clone()).to_ascii().to_ascii_lowercase();
        zone.log.push(Query { name: logged, record_type, at: Instant::now() });
        match zone.mode {
            Mode::Silent => None,
            Mode::ServFail => Some((ResponseCode::ServFail, Vec::new())),
            Mode::Answer => {
                let at_name: Vec<&Record> = zone.records.iter().filter(|r| LowerName::from(&r.name) == owner).collect();
                if at_name.is_empty() {
                    return Some((ResponseCode::NXDomain, Vec::new()));
                }
                let answers = at_name.into_iter().filter(|r| r.record_type() == record_type).cloned().collect();
                Some((ResponseCode::NoError, answers))
            }
        }
    }
}

// `RequestHandler` is declared with `async_trait`; this is the signature that macro produces.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        mut response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: 'async_trait + ResponseHandler,
        T: 'async_trait + Time,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let mut metadata = Metadata::response_from_request(&request.metadata);
            let Some((code, answers)) = self.answer(request) else {
                return ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() });
            };
            metadata.authoritative = true;
            metadata.response_code = code;
            let response = MessageResponseBuilder::from_message_request(request).build(
                metadata,
                answers.iter(),
                std::iter::empty(),
                std::iter::empty(),
                std::iter::empty(),
            );
            match response_handle.send_response(response).await {
                Ok(info) => info,
                Err(_) => ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() }),
            }
        })
    }
}
