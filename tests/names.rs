//! Host names in lists resolved by the core (`resolve_host_names`) against a real DNS server
//! (hickory-server in-process on loopback) and a real etcd member: names become addresses that keep
//! the name's weight, copies and metadata; an unresolvable name keeps the last list with an error
//! naming it; `resolve_now` looks the names up again; a cold start from the cache resolves the cached
//! names.

mod common;
mod dns_server;

use std::sync::Arc;
use std::time::Duration;

use common::{rt, EtcdCluster};
use dns_server::DnsServer;
use gnaming::{AddressFamily, Resolver, ResolverOptions, Update};

const HOST: &str = "svc.gn.test";
/// Longest wait for an update that should come.
const PATIENCE: Duration = Duration::from_secs(10);

/// Names resolved through `server`, with short intervals so `resolve_now` acts within a test.
fn options(server: &DnsServer) -> ResolverOptions {
    let mut o = ResolverOptions { resolve_host_names: true, ..Default::default() };
    o.dns.nameserver = Some(server.addr());
    o.dns.min_resolve_interval = Duration::from_millis(100);
    o.dns.query_timeout = Duration::from_millis(300);
    o.dns.query_attempts = 1;
    o
}

fn start(target: &str, options: &ResolverOptions) -> Resolver {
    Resolver::start(target, options, None).unwrap_or_else(|e| panic!("start '{target}': {e}"))
}

/// Each entry as `address#copy weight=W family metadata`, in list order.
fn entries(update: &Update) -> Vec<String> {
    update
        .addresses
        .iter()
        .map(|e| {
            let meta = e.metadata.as_deref().unwrap_or("-");
            format!("{}#{} weight={} {:?} {meta}", e.address, e.copy_index, e.weight, e.family)
        })
        .collect()
}

fn show(update: &Update) -> String {
    format!("{:?} {:?}", update.state, entries(update))
}

/// Takes updates until one satisfies `want`; fails naming what was expected and what came.
fn wait_for(resolver: &Resolver, expected: &str, want: impl Fn(&Update) -> bool) -> Arc<Update> {
    common::next_until(resolver, PATIENCE, expected, show, want)
}

fn wait_for_entries(resolver: &Resolver, expected: &[&str]) -> Arc<Update> {
    wait_for(resolver, &format!("an OK update with {expected:#?}"), |u| u.is_ok() && entries(u) == expected)
}

#[test]
fn names_in_an_etcd_list_become_addresses_with_the_name_s_weight_copies_and_metadata() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.3", "127.0.0.2"], 60);
    let etcd = EtcdCluster::start(1);
    etcd.register_as("names1");
    rt().block_on(async {
        let mut c = etcd.client().await;
        let named = format!(r#"{{"Op":0,"Addr":"{HOST}:7","Metadata":{{"weight":3,"zone":"a"}}}}"#);
        c.put("named/a", named, None).await.unwrap();
        c.put("named/b", "127.0.0.1:9", None).await.unwrap();
    });
    let resolver = start("etcd://names1/named#2", &options(&server));
    let meta = r#"{"weight":3,"zone":"a"}"#;
    let update = wait_for(&resolver, "both keys, the name resolved", |u| u.is_ok() && u.addresses.len() == 6);
    let mut got = entries(&update);
    got.sort();
    let mut expected = vec![
        "127.0.0.1:9#0 weight=1 Ipv4 -".to_string(),
        "127.0.0.1:9#1 weight=1 Ipv4 -".to_string(),
        format!("127.0.0.2:7#0 weight=3 Ipv4 {meta}"),
        format!("127.0.0.2:7#1 weight=3 Ipv4 {meta}"),
        format!("127.0.0.3:7#0 weight=3 Ipv4 {meta}"),
        format!("127.0.0.3:7#1 weight=3 Ipv4 {meta}"),
    ];
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn pass_names_resolve_in_place_and_other_entries_stay() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.2", "fd00::2"], 60);
    let resolver = start(&format!("pass:///127.0.0.1:5,{HOST}:6#2,[::1]:7"), &options(&server));
    wait_for_entries(
        &resolver,
        &[
            "127.0.0.1:5#0 weight=1 Ipv4 -",
            "[fd00::2]:6#0 weight=1 Ipv6 -",
            "127.0.0.2:6#0 weight=1 Ipv4 -",
            "[fd00::2]:6#1 weight=1 Ipv6 -",
            "127.0.0.2:6#1 weight=1 Ipv4 -",
            "[::1]:7#0 weight=1 Ipv6 -",
        ],
    );
}

#[test]
fn an_unresolvable_name_keeps_the_last_list_with_an_error_naming_it() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.2"], 60);
    let resolver = start(&format!("pass:///{HOST}:6,127.0.0.1:5"), &options(&server));
    wait_for_entries(&resolver, &["127.0.0.2:6#0 weight=1 Ipv4 -", "127.0.0.1:5#0 weight=1 Ipv4 -"]);

    server.remove(HOST);
    resolver.resolve_now();
    let update = wait_for(&resolver, "a transient error", |u| !u.is_ok());
    let message = update.error_message().unwrap();
    assert!(message.contains(HOST), "the error must name the host: {message}");
    assert_eq!(entries(&update), ["127.0.0.2:6#0 weight=1 Ipv4 -", "127.0.0.1:5#0 weight=1 Ipv4 -"]);
}

#[test]
fn a_cold_start_from_the_cache_resolves_the_cached_names() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.3"], 60);
    let etcd = EtcdCluster::start(1);
    etcd.register_as("names-cache");
    rt().block_on(async {
        etcd.client().await.put("cached/a", format!("{HOST}:7"), None).await.unwrap();
    });
    let dir = std::env::temp_dir().join(format!("gnaming-names-cache-{}", std::process::id()));
    let mut options = options(&server);
    options.cache.dir = Some(dir.clone());
    let live = start("etcd://names-cache/cached", &options);
    wait_for_entries(&live, &["127.0.0.3:7#0 weight=1 Ipv4 -"]);
    // Closing waits for the cache write.
    drop(live);
    etcd.stop_all();
    let cold = start("etcd://names-cache/cached", &options);
    let update = wait_for(&cold, "the cached list, its name resolved", |u| !u.is_ok() && !u.addresses.is_empty());
    assert_eq!(entries(&update), ["127.0.0.3:7#0 weight=1 Ipv4 -"]);
    let message = update.error_message().unwrap();
    assert!(message.starts_with("serving the cached list written "), "{message}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_name_that_never_resolved_gives_an_error_naming_it_and_no_addresses() {
    let server = DnsServer::start();
    let resolver = start("pass:///nowhere.gn.test:6,127.0.0.1:5", &options(&server));
    let update = wait_for(&resolver, "a transient error", |u| !u.is_ok());
    assert!(update.error_message().unwrap().contains("nowhere.gn.test"), "{}", show(&update));
    assert!(update.addresses.is_empty(), "no part of a list may be published: {}", show(&update));
}

#[test]
fn resolve_now_picks_up_a_changed_a_record() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.2"], 60);
    let resolver = start(&format!("pass:///{HOST}:6"), &options(&server));
    wait_for_entries(&resolver, &["127.0.0.2:6#0 weight=1 Ipv4 -"]);

    server.set_addresses(HOST, &["127.0.0.4", "127.0.0.3"], 60);
    resolver.resolve_now();
    wait_for_entries(&resolver, &["127.0.0.3:6#0 weight=1 Ipv4 -", "127.0.0.4:6#0 weight=1 Ipv4 -"]);
}

#[test]
fn without_the_option_and_for_passthrough_names_stay_names() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.2"], 60);
    let off = ResolverOptions { resolve_host_names: false, ..options(&server) };
    let resolver = start(&format!("pass:///{HOST}:6"), &off);
    let update = wait_for(&resolver, "the first list", |u| u.is_ok());
    assert_eq!(entries(&update), [format!("{HOST}:6#0 weight=1 Name -")]);
    let resolver = start(&format!("passthrough:///{HOST}:6"), &options(&server));
    let update = wait_for(&resolver, "the first list", |u| u.is_ok());
    assert_eq!(entries(&update), [format!("{HOST}:6#0 weight=1 Name -")]);
    assert_eq!(server.query_count(), 0, "nothing may be looked up");
    assert!(update.addresses.iter().all(|e| e.family == AddressFamily::Name));
}
