//! Host names in address lists: the one place the core looks up the `host:port` entries a source
//! left as names (etcd values, `pass:` items), with its own DNS client and the resolver's DNS options.
//! Used by resolvers started with `resolve_host_names` and by the xDS server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, Instant};

use super::Publisher;
use crate::dns::lookup::{Client, ClientConfig, Plan};
use crate::dns::DnsOptions;
use crate::update::{Address, AddressFamily, ResolverState, Update};

/// `host:port` → (host, port), for host names only: IP literals and opaque strings give `None`.
pub fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty() && host.parse::<IpAddr>().is_err() && !host.starts_with('[')).then_some((host, port))
}

/// Looks up host names with the core's DNS client, built on first use (on the runtime, where hickory
/// spawns its connections) from the DNS options: their nameserver, query timeout and attempts.
pub(crate) struct NameLookup {
    options: DnsOptions,
    client: Option<Client>,
}

impl NameLookup {
    pub(crate) fn new(options: &DnsOptions) -> Self {
        NameLookup { options: options.clone(), client: None }
    }

    /// The addresses of `address` (`host:port`), ordered as the `dns:` resolver orders them. Every
    /// lookup asks the server anew: callers look again because something changed.
    pub(crate) async fn resolve(&mut self, address: &str) -> Result<Vec<SocketAddr>, String> {
        let (host, port) = split_host_port(address).ok_or("not a host:port")?;
        if self.client.is_none() {
            let config = ClientConfig::new(None, &self.options).map_err(|e| e.message().to_string())?;
            self.client = Some(Client::new(&config).map_err(|e| e.message().to_string())?);
        }
        let client = self.client.as_ref().expect("set above");
        let plan = Plan { host: host.to_string(), port, srv_backends: None, grpclb: false, chooser: None };
        let answer = client.resolve(&plan).await?;
        Ok(answer.endpoints.iter().filter_map(|e| e.address.parse().ok()).collect())
    }

    /// `list` with every `host:port` name replaced, in place, by one entry per address it has, each
    /// with the name's weight, copy, kind and metadata. Other entries (IPs, unix sockets, opaque
    /// strings) stay as they are. One name that cannot be resolved fails the whole list, so that the
    /// caller keeps the last good one rather than publishing part of it; the error names the host.
    pub(crate) async fn resolve_list(&mut self, list: &[Address]) -> Result<Vec<Address>, String> {
        let mut found: HashMap<&str, Vec<SocketAddr>> = HashMap::new();
        let mut out = Vec::with_capacity(list.len());
        for entry in list {
            if entry.family != AddressFamily::Name || split_host_port(&entry.address).is_none() {
                out.push(entry.clone());
                continue;
            }
            if !found.contains_key(entry.address.as_str()) {
                let ips = self
                    .resolve(&entry.address)
                    .await
                    .map_err(|e| format!("cannot resolve host name '{}': {e}", entry.address))?;
                found.insert(&entry.address, ips);
            }
            for ip in &found[entry.address.as_str()] {
                let at = Address::from_socket_addr(*ip);
                out.push(Address { address: at.address, family: at.family, ..entry.clone() });
            }
        }
        Ok(out)
    }
}

/// What a backend published, before its names are looked up.
pub(crate) type Input = watch::Receiver<Option<Arc<Update>>>;

/// The stage between a backend and its delivery when host names are resolved: takes the latest list
/// the backend published, resolves its names and publishes the result. A backend's transient error
/// passes through (with the last resolved list); a name that cannot be resolved becomes one.
/// `resolve_now` looks the names of the current list up again, no sooner than `min_resolve_interval`
/// after the last round began, as the `dns:` resolver does. Runs until aborted with its resolver,
/// also after a static backend's task has finished.
pub(crate) async fn run(mut input: Input, resolve_now: Arc<Notify>, mut out: Publisher, options: DnsOptions) {
    let mut lookup = NameLookup::new(&options);
    let mut current: Option<Arc<Update>> = None;
    let mut backend_alive = true;
    let mut last_round: Option<Instant> = None;
    let mut on_demand: Option<Instant> = None;
    loop {
        tokio::select! {
            changed = input.changed(), if backend_alive => match changed {
                Ok(()) => {
                    current = input.borrow_and_update().clone();
                    // A new list is looked up at once; it answers any pending request too.
                    on_demand = None;
                }
                Err(_) => {
                    backend_alive = false;
                    continue;
                }
            },
            _ = resolve_now.notified() => {
                let earliest = last_round.map_or_else(Instant::now, |t| t + options.min_resolve_interval);
                on_demand.get_or_insert(earliest);
                continue;
            }
            _ = async { sleep_until(on_demand.expect("guarded")).await }, if on_demand.is_some() => {
                on_demand = None;
            }
        }
        let Some(update) = current.as_deref() else { continue };
        match &update.state {
            // A list in an error before any good one is the cold-start cache's: its names are looked
            // up as a live list's are.
            ResolverState::TransientError(message) if !out.has_list() && !update.addresses.is_empty() => {
                match lookup.resolve_list(&update.addresses).await {
                    Ok(list) => out.publish_stale(list, update.service_config.clone(), message.clone()),
                    Err(why) => out.publish_error(format!("{message}; {why}")),
                }
            }
            ResolverState::TransientError(message) => out.publish_error(message.clone()),
            ResolverState::Ok => {
                last_round = Some(Instant::now());
                match lookup.resolve_list(&update.addresses).await {
                    Ok(list) => out.publish(list, update.service_config.clone()),
                    Err(message) => {
                        tracing::debug!("{message}");
                        out.publish_error(message);
                    }
                }
            }
        }
    }
}
