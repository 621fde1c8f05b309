//! The `dns:` resolver against a real DNS server (hickory-server in-process on loopback) whose records
//! change while the resolver runs. Every resolver here is given the loopback server explicitly.

mod common;
mod dns_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dns_server::{DnsServer, Mode};
use gnaming::{AddressKind, ErrorKind, Resolver, ResolverOptions, Update};
use hickory_server::proto::rr::RecordType;

const HOST: &str = "svc.gn.test";
/// Longest wait for an update that should come.
const PATIENCE: Duration = Duration::from_secs(5);

/// Options for a fast test: the given server, short intervals, no TTL refresh unless a test turns it on.
fn options(server: &DnsServer) -> ResolverOptions {
    let mut o = ResolverOptions::default();
    o.dns.nameserver = Some(server.addr());
    o.dns.min_resolve_interval = Duration::from_millis(200);
    o.dns.ttl_refresh = false;
    o.dns.backoff_initial = Duration::from_millis(100);
    o.dns.backoff_max = Duration::from_millis(400);
    o.dns.query_timeout = Duration::from_millis(300);
    o.dns.query_attempts = 1;
    o
}

fn start(target: &str, options: &ResolverOptions) -> Resolver {
    Resolver::start(target, options, None).unwrap_or_else(|e| panic!("start '{target}': {e}"))
}

fn addresses(update: &Update) -> Vec<String> {
    update.addresses.iter().map(|e| e.address.to_string()).collect()
}

fn show(update: &Update) -> String {
    format!("{:?} {:?} config={:?}", update.state, addresses(update), update.service_config)
}

/// Takes updates until one satisfies `want`; fails naming what was expected and what came.
fn wait_for(resolver: &Resolver, expected: &str, want: impl Fn(&Update) -> bool) -> Arc<Update> {
    common::next_until(resolver, PATIENCE, expected, show, want)
}

fn wait_for_list(resolver: &Resolver, expected: &[&str]) -> Arc<Update> {
    wait_for(resolver, &format!("an OK update with {expected:?}"), |u| u.is_ok() && addresses(u) == expected)
}

/// Asserts that no update comes within `quiet`.
fn assert_no_update(resolver: &Resolver, quiet: Duration) {
    match resolver.next(Some(quiet)) {
        Err(e) if e.kind() == ErrorKind::Timeout => {}
        Ok(update) => panic!("expected no update within {quiet:?}, observed {}", show(&update)),
        Err(e) => panic!("next(): {e}"),
    }
}

#[test]
fn a_and_aaaa_records_become_one_list_on_the_target_port_ipv6_first() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.2", "127.0.0.1", "fd00::1"], 60);
    let resolver = start(&format!("dns:///{HOST}:8080"), &options(&server));
    let update = wait_for_list(&resolver, &["[fd00::1]:8080", "127.0.0.1:8080", "127.0.0.2:8080"]);
    assert_eq!(update.service_config, None);
    assert!(update.addresses.iter().all(|e| e.kind == AddressKind::Backend && e.weight == 1 && e.copy_index == 0));
}

#[test]
fn targets_without_a_port_use_443() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 60);
    let resolver = start(&format!("dns:{HOST}"), &options(&server));
    wait_for_list(&resolver, &["127.0.0.1:443"]);
}

#[test]
fn the_server_named_in_the_target_is_asked_without_any_option() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.7"], 60);
    let mut o = options(&server);
    o.dns.nameserver = None;
    let resolver = start(&format!("dns://{}/{HOST}:81", server.addr()), &o);
    wait_for_list(&resolver, &["127.0.0.7:81"]);
    assert!(!server.queries(HOST, Some(RecordType::A)).is_empty());
}

#[test]
fn ip_literals_resolve_to_themselves_without_a_query() {
    let server = DnsServer::start();
    let o = options(&server);
    let resolver = start("dns:///[::1]:50051", &o);
    wait_for_list(&resolver, &["[::1]:50051"]);
    let resolver = start("dns:127.0.0.1", &o);
    wait_for_list(&resolver, &["127.0.0.1:443"]);
    assert_eq!(server.query_count(), 0);
}

#[test]
fn added_and_removed_addresses_are_seen_after_resolve_now() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 60);
    let resolver = start(&format!("dns:///{HOST}:1"), &options(&server));
    wait_for_list(&resolver, &["127.0.0.1:1"]);

    server.set_addresses(HOST, &["127.0.0.1", "127.0.0.2", "fd00::2"], 60);
    resolver.resolve_now();
    wait_for_list(&resolver, &["[fd00::2]:1", "127.0.0.1:1", "127.0.0.2:1"]);

    server.set_addresses(HOST, &["127.0.0.2"], 60);
    resolver.resolve_now();
    wait_for_list(&resolver, &["127.0.0.2:1"]);
}

#[test]
fn resolve_now_is_rate_limited_to_the_minimum_interval() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 60);
    let mut o = options(&server);
    o.dns.min_resolve_interval = Duration::from_millis(1000);
    let resolver = start(&format!("dns:///{HOST}:1"), &o);
    wait_for_list(&resolver, &["127.0.0.1:1"]);

    server.set_addresses(HOST, &["127.0.0.2"], 60);
    let asked = Instant::now();
    for _ in 0..10 {
        resolver.resolve_now();
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for_list(&resolver, &["127.0.0.2:1"]);
    let lookups = server.queries(HOST, Some(RecordType::A));
    assert_eq!(lookups.len(), 2, "ten resolve_now calls within the interval make one lookup: {lookups:#?}");
    // The interval runs from the start of a lookup; the server sees the first query a little later
    // (the resolver sets up its socket first), hence the margin. Without the limit the gap is ~20 ms.
    let gap = lookups[1].at - lookups[0].at;
    assert!(gap >= Duration::from_millis(800), "second lookup {gap:?} after the first; the minimum is 1 s");
    assert!(asked.elapsed() < Duration::from_millis(2500), "the rate-limited lookup came late: {:?}", asked.elapsed());
}

#[test]
fn unchanged_answers_publish_nothing_new() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1", "127.0.0.2"], 60);
    let resolver = start(&format!("dns:///{HOST}:1"), &options(&server));
    let first = wait_for_list(&resolver, &["127.0.0.1:1", "127.0.0.2:1"]);
    // The server now lists the same records in the other order: the same set, so no update.
    server.set_addresses(HOST, &["127.0.0.2", "127.0.0.1"], 60);
    resolver.resolve_now();
    assert_no_update(&resolver, Duration::from_millis(800));
    assert_eq!(server.queries(HOST, Some(RecordType::A)).len(), 2, "the second lookup should have happened");
    assert_eq!(first.sequence, 1);
}

#[test]
fn an_expiring_ttl_triggers_a_refresh_without_resolve_now() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 1);
    let mut o = options(&server);
    o.dns.ttl_refresh = true;
    o.dns.refresh_min = Duration::from_secs(1);
    o.dns.refresh_max = Duration::from_secs(60);
    let resolver = start(&format!("dns:///{HOST}:1"), &o);
    wait_for_list(&resolver, &["127.0.0.1:1"]);
    server.set_addresses(HOST, &["127.0.0.3"], 1);
    let started = Instant::now();
    wait_for_list(&resolver, &["127.0.0.3:1"]);
    assert!(started.elapsed() < Duration::from_millis(2500), "refresh took {:?}", started.elapsed());
}

#[test]
fn long_ttls_are_clamped_to_the_refresh_maximum_and_zero_ttls_to_the_minimum() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 86_400);
    server.set_addresses("zero.gn.test", &["127.0.0.9"], 0);
    let mut o = options(&server);
    o.dns.ttl_refresh = true;
    o.dns.refresh_min = Duration::from_millis(1000);
    o.dns.refresh_max = Duration::from_millis(1000);
    let long = start(&format!("dns:///{HOST}:1"), &o);
    let zero = start("dns:///zero.gn.test:1", &o);
    wait_for_list(&long, &["127.0.0.1:1"]);
    wait_for_list(&zero, &["127.0.0.9:1"]);
    server.set_addresses(HOST, &["127.0.0.4"], 86_400);
    wait_for_list(&long, &["127.0.0.4:1"]);
    // Three lookups of the TTL-0 name take two refresh periods; give them three.
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.queries("zero.gn.test", Some(RecordType::A)).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let lookups = server.queries("zero.gn.test", Some(RecordType::A));
    let gaps: Vec<Duration> = lookups.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps.len() >= 2, "a TTL of 0 should still be refreshed, once a second; gaps between lookups: {gaps:?}");
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(950)),
        "TTL 0 must not cause lookups faster than refresh_min: {gaps:?}"
    );
}

#[test]
fn nxdomain_after_success_keeps_the_last_list_and_reports_an_error() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 60);
    let resolver = start(&format!("dns:///{HOST}:1"), &options(&server));
    wait_for_list(&resolver, &["127.0.0.1:1"]);
    server.remove(HOST);
    resolver.resolve_now();
    let update = wait_for(&resolver, "a transient error keeping [\"127.0.0.1:1\"]", |u| !u.is_ok());
    assert_eq!(addresses(&update), ["127.0.0.1:1"], "the last good list must stay: {}", show(&update));
    let message = update.error_message().unwrap();
    assert!(message.contains("NXDOMAIN") && message.contains(HOST), "{message}");
}

#[test]
fn servfail_and_timeouts_after_success_keep_the_last_list() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 60);
    let resolver = start(&format!("dns:///{HOST}:1"), &options(&server));
    wait_for_list(&resolver, &["127.0.0.1:1"]);

    server.set_mode(Mode::ServFail);
    resolver.resolve_now();
    let update = wait_for(&resolver, "a SERVFAIL error", |u| u.error_message().is_some_and(|m| m.contains("SERVFAIL")));
    assert_eq!(addresses(&update), ["127.0.0.1:1"], "{}", show(&update));

    server.set_mode(Mode::Silent);
    let update =
        wait_for(&resolver, "a timeout error", |u| u.error_message().is_some_and(|m| m.contains("no answer in time")));
    assert_eq!(addresses(&update), ["127.0.0.1:1"], "{}", show(&update));

    server.set_mode(Mode::Answer);
    server.set_addresses(HOST, &["127.0.0.5"], 60);
    wait_for_list(&resolver, &["127.0.0.5:1"]);
}

#[test]
fn a_server_that_does_not_answer_at_start_gets_the_cached_list_then_the_live_one() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1", "127.0.0.2"], 60);
    let dir = std::env::temp_dir().join(format!("gnaming-dns-cache-{}", std::process::id()));
    let mut options = options(&server);
    options.cache.dir = Some(dir.clone());
    let target = format!("dns:///{HOST}:1");
    let live = start(&target, &options);
    wait_for_list(&live, &["127.0.0.1:1", "127.0.0.2:1"]);
    // Closing waits for the cache write.
    drop(live);

    server.set_mode(Mode::Silent);
    let cold = start(&target, &options);
    let update = wait_for(&cold, "the cached list", |u| !u.is_ok() && !u.addresses.is_empty());
    assert_eq!(addresses(&update), ["127.0.0.1:1", "127.0.0.2:1"], "{}", show(&update));
    let message = update.error_message().unwrap();
    assert!(
        message.starts_with("serving the cached list written 0 s ago: ") && message.contains("no answer"),
        "{message}"
    );

    server.set_mode(Mode::Answer);
    server.set_addresses(HOST, &["127.0.0.3"], 60);
    wait_for_list(&cold, &["127.0.0.3:1"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failing_first_lookup_reports_an_error_with_no_addresses_then_retries_with_backoff() {
    let server = DnsServer::start();
    let resolver = start(&format!("dns:///{HOST}:1"), &options(&server));
    let update = wait_for(&resolver, "an error with no addresses", |u| !u.is_ok());
    assert!(update.addresses.is_empty(), "{}", show(&update));
    assert!(update.error_message().unwrap().contains("NXDOMAIN"), "{}", show(&update));

    // Retries go on without resolve_now: 100 ms, then ×1.6 up to 400 ms, each ±20%.
    std::thread::sleep(Duration::from_millis(1500));
    let lookups = server.queries(HOST, Some(RecordType::A));
    let gaps: Vec<Duration> = lookups.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!((3..=9).contains(&lookups.len()), "expected 3 to 9 lookups in 1.5 s of backoff, gaps: {gaps:?}");
    assert!(gaps[0] >= Duration::from_millis(75), "first retry came after {:?}", gaps[0]);
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_millis(600)),
        "a retry waited longer than the 400 ms cap: {gaps:?}"
    );
    assert!(gaps.last() > gaps.first(), "retries should slow down: {gaps:?}");

    server.set_addresses(HOST, &["127.0.0.1"], 60);
    wait_for_list(&resolver, &["127.0.0.1:1"]);
}

#[test]
fn srv_backend_mode_gives_targets_ports_priorities_and_weights() {
    let server = DnsServer::start();
    server.set_srv(
        &format!("_grpc._tcp.{HOST}"),
        &[(10, 5, 7001, "b1.gn.test"), (10, 20, 7002, "b2.gn.test"), (20, 1, 7003, "b3.gn.test")],
        60,
    );
    server.set_addresses("b1.gn.test", &["127.0.1.1"], 60);
    server.set_addresses("b2.gn.test", &["127.0.1.2", "fd00::12"], 60);
    server.set_addresses("b3.gn.test", &["127.0.1.3"], 60);
    let mut o = options(&server);
    o.dns.srv_backends = Some("_grpc._tcp".into());
    let resolver = start(&format!("dns:///{HOST}"), &o);
    let update = wait_for_list(&resolver, &["[fd00::12]:7002", "127.0.1.2:7002", "127.0.1.1:7001", "127.0.1.3:7003"]);
    let weights: Vec<u32> = update.addresses.iter().map(|e| e.weight).collect();
    assert_eq!(weights, [20, 20, 5, 1], "{update:?}");
    assert_eq!(update.addresses[3].metadata.as_deref(), Some(r#"{"priority":20,"target":"b3.gn.test."}"#));
    assert!(update.addresses.iter().all(|e| e.kind == AddressKind::Backend));

    server.set_srv(&format!("_grpc._tcp.{HOST}"), &[(10, 50, 7001, "b1.gn.test"), (10, 0, 7002, "b2.gn.test")], 60);
    resolver.resolve_now();
    let update = wait_for_list(&resolver, &["127.0.1.1:7001", "[fd00::12]:7002", "127.0.1.2:7002"]);
    let weights: Vec<u32> = update.addresses.iter().map(|e| e.weight).collect();
    assert_eq!(weights, [50, 1, 1], "weight 0 becomes 1: {update:?}");
    assert!(server.queries(HOST, Some(RecordType::A)).is_empty(), "SRV mode must not look up the host's own A records");
}

#[test]
fn srv_backend_mode_takes_a_configured_label_and_numbers_repeated_targets() {
    let server = DnsServer::start();
    server.set_srv(&format!("_echo._udp.{HOST}"), &[(0, 1, 9000, "b1.gn.test"), (0, 1, 9000, "alias.gn.test")], 60);
    server.set_addresses("b1.gn.test", &["127.0.2.1"], 60);
    server.set_addresses("alias.gn.test", &["127.0.2.1"], 60);
    let mut o = options(&server);
    o.dns.srv_backends = Some("_echo._udp".into());
    let resolver = start(&format!("dns:///{HOST}"), &o);
    let update = wait_for_list(&resolver, &["127.0.2.1:9000", "127.0.2.1:9000"]);
    let copies: Vec<u32> = update.addresses.iter().map(|e| e.copy_index).collect();
    assert_eq!(copies, [0, 1], "{update:?}");
}

#[test]
fn grpclb_mode_adds_balancers_after_the_backends() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 60);
    server.set_srv(&format!("_grpclb._tcp.{HOST}"), &[(0, 0, 1234, "lb.gn.test")], 60);
    server.set_addresses("lb.gn.test", &["127.0.9.9"], 60);
    let mut o = options(&server);
    let plain = start(&format!("dns:///{HOST}:1"), &o);
    wait_for_list(&plain, &["127.0.0.1:1"]);
    o.dns.grpclb = true;
    let resolver = start(&format!("dns:///{HOST}:1"), &o);
    let update = wait_for_list(&resolver, &["127.0.0.1:1", "127.0.9.9:1234"]);
    let kinds: Vec<AddressKind> = update.addresses.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [AddressKind::Backend, AddressKind::Balancer]);
    assert_eq!(update.addresses[1].metadata.as_deref(), Some(r#"{"priority":0,"target":"lb.gn.test."}"#));
}

const CONFIG_NAME: &str = "_grpc_config.svc.gn.test";

#[test]
fn txt_service_config_is_chosen_by_client_language_and_follows_changes() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 60);
    // One record of two strings: they are joined before parsing.
    server.set_txt(
        CONFIG_NAME,
        &[&[
            r#"grpc_config=[{"clientLanguage":["go"],"serviceConfig":{"loadBalancingConfig":[{"pick_first":{}}]}},"#,
            r#"{"clientLanguage":["python"],"serviceConfig":{"loadBalancingConfig":[{"round_robin":{}}]}}]"#,
        ]],
        60,
    );
    let mut o = options(&server);
    o.client_language = "python".into();
    let resolver = start(&format!("dns:///{HOST}:1"), &o);
    let update = wait_for_list(&resolver, &["127.0.0.1:1"]);
    assert_eq!(update.service_config.as_deref(), Some(r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#));

    o.client_language = "c".into();
    let other = start(&format!("dns:///{HOST}:1"), &o);
    let update = wait_for_list(&other, &["127.0.0.1:1"]);
    assert_eq!(update.service_config, None, "no choice names language c");

    server.set_txt(CONFIG_NAME, &[&[r#"grpc_config=[{"percentage":100,"serviceConfig":{"methodConfig":[]}}]"#]], 60);
    resolver.resolve_now();
    let update = wait_for(&resolver, "the changed service config", |u| {
        u.service_config.as_deref() == Some(r#"{"methodConfig":[]}"#)
    });
    assert!(update.is_ok(), "{}", show(&update));
}

#[test]
fn txt_choices_match_the_configured_client_hostname() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 60);
    server.set_txt(
        CONFIG_NAME,
        &[&[r#"grpc_config=[{"clientHostname":["node-7"],"serviceConfig":{"n":7}},{"serviceConfig":{"n":0}}]"#]],
        60,
    );
    let mut o = options(&server);
    o.dns.client_hostname = Some("node-7".into());
    let update = wait_for_list(&start(&format!("dns:///{HOST}:1"), &o), &["127.0.0.1:1"]);
    assert_eq!(update.service_config.as_deref(), Some(r#"{"n":7}"#));
    o.dns.client_hostname = Some("node-8".into());
    let update = wait_for_list(&start(&format!("dns:///{HOST}:1"), &o), &["127.0.0.1:1"]);
    assert_eq!(update.service_config.as_deref(), Some(r#"{"n":0}"#));
}

#[test]
fn a_bad_txt_service_config_is_a_transient_error_that_keeps_the_last_list_and_config() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 60);
    server.set_txt(CONFIG_NAME, &[&[r#"grpc_config=[{"serviceConfig":{"n":1}}]"#]], 60);
    let resolver = start(&format!("dns:///{HOST}:1"), &options(&server));
    wait_for(&resolver, "config n=1", |u| u.is_ok() && u.service_config.as_deref() == Some(r#"{"n":1}"#));

    server.set_txt(CONFIG_NAME, &[&[r#"grpc_config=[{"serviceConfig":"#]], 60);
    server.set_addresses(HOST, &["127.0.0.2"], 60);
    resolver.resolve_now();
    let update = wait_for(&resolver, "a bad-config error", |u| !u.is_ok());
    let message = update.error_message().unwrap();
    assert!(message.contains("bad service config") && message.contains("not valid JSON"), "{message}");
    assert_eq!(addresses(&update), ["127.0.0.1:1"], "{}", show(&update));
    assert_eq!(update.service_config.as_deref(), Some(r#"{"n":1}"#));

    server.set_txt(CONFIG_NAME, &[&[r#"grpc_config=[{"percentage":"all","serviceConfig":{}}]"#]], 60);
    let update =
        wait_for(&resolver, "a bad-choice error", |u| u.error_message().is_some_and(|m| m.contains("percentage")));
    assert!(!update.is_ok());
}

#[test]
fn service_config_lookups_can_be_turned_off() {
    let server = DnsServer::start();
    server.set_addresses(HOST, &["127.0.0.1"], 60);
    server.set_txt(CONFIG_NAME, &[&[r#"grpc_config=[{"serviceConfig":{"n":1}}]"#]], 60);
    let mut o = options(&server);
    o.dns.service_config = false;
    let update = wait_for_list(&start(&format!("dns:///{HOST}:1"), &o), &["127.0.0.1:1"]);
    assert_eq!(update.service_config, None);
    assert!(server.queries(CONFIG_NAME, None).is_empty(), "no TXT lookup should be made");
}

#[test]
fn bad_dns_options_fail_the_start_with_a_clear_error() {
    let server = DnsServer::start();
    let mut o = options(&server);
    o.dns.refresh_min = Duration::from_secs(10);
    o.dns.refresh_max = Duration::from_secs(5);
    let e = Resolver::start(&format!("dns:///{HOST}:1"), &o, None).err().expect("start must fail");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("refresh range"), "{e}");
}
