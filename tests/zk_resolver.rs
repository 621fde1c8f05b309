//! `zk:` targets against real ZooKeeper ensembles on loopback (tests/harness/zk_ensemble.py):
//! children coming, going and changing, every data format, session expiry, a killed leader, a stopped
//! ensemble and a server cut off while the others take changes.

mod common;
mod zk_support;

use std::time::{Duration, Instant};

use common::{addrs, resolve, resolve_with, sorted, LogCapture};
use gnaming::log::Level;
use gnaming::resolver::cache::CacheOptions;
use gnaming::resolver::ResolverOptions;
use gnaming::Update;
use zk_support::{Ensemble, Writer};
use zookeeper_client::{Client, SessionState};

const WAIT: Duration = Duration::from_secs(10);

fn show(u: &Update) -> String {
    format!("{:?} {:?}", u.state, addrs(u))
}

#[test]
fn children_coming_going_and_changing_reach_the_resolver_even_before_the_node_exists() {
    let zk = Ensemble::start(3);
    let w = Writer::connect(&zk.servers);
    let mut updates = resolve(&format!("zk://{}/services/echo", zk.servers));
    // No node yet: an empty list that is the registry's real state, not an error.
    let first = updates.wait_for(WAIT, "an empty OK list", |u| u.is_ok());
    assert!(first.addresses.is_empty(), "{}", show(&first));

    w.mkdir("/services/echo");
    w.create("/services/echo/a", "127.0.0.1:1001");
    w.create("/services/echo/b", "127.0.0.1:1002");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:1001", "127.0.0.1:1002"]));
    w.create("/services/echo/c", "127.0.0.1:1003");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"]));
    w.delete("/services/echo/a");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:1002", "127.0.0.1:1003"]));
    w.set("/services/echo/b", "127.0.0.1:2002");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:1003", "127.0.0.1:2002"]));
    // Nodes below an instance are no instances.
    w.create("/services/echo/c/detail", "127.0.0.1:9999");
    w.create("/services/echo/d", "127.0.0.1:1004");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:1003", "127.0.0.1:1004", "127.0.0.1:2002"]));
    updates.drain();
    assert!(
        updates.seen.iter().all(|u| u.is_ok()),
        "no error was due: {:?}",
        updates.seen.iter().map(|u| show(u)).collect::<Vec<_>>()
    );
}

#[test]
fn curator_plain_and_etcd_json_children_are_read_and_garbage_is_skipped_with_a_warning() {
    let capture = LogCapture::start(Level::Warn);
    let zk = Ensemble::start(1);
    let w = Writer::connect(&zk.servers);
    w.mkdir("/formats");
    w.create(
        "/formats/f0f1c2d3",
        r#"{"name":"formats","id":"f0f1c2d3","address":"127.0.0.1","port":7001,"sslPort":null,
            "payload":{"zone":"a","weight":4},"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC",
            "uriSpec":{"parts":[{"value":"address","variable":true}]}}"#,
    );
    w.create("/formats/plain", "127.0.0.1:7002");
    w.create("/formats/etcd", r#"{"Op":0,"Addr":"127.0.0.1:7003","Metadata":{"zone":"b"}}"#);
    w.create("/formats/garbage", "this is no address");
    let mut updates = resolve(&format!("zk://{}/formats", zk.servers));
    let u = updates.wait_list(WAIT, &sorted(&["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]));
    let by_address = |a: &str| u.addresses.iter().find(|e| e.address == a).expect("address listed").clone();
    let curator = by_address("127.0.0.1:7001");
    assert_eq!((curator.weight, curator.metadata.as_deref()), (4, Some(r#"{"weight":4,"zone":"a"}"#)));
    assert_eq!(by_address("127.0.0.1:7002").metadata, None);
    assert_eq!(by_address("127.0.0.1:7003").metadata.as_deref(), Some(r#"{"zone":"b"}"#));
    let warned = |child: &str| capture.lines().iter().any(|l| l.starts_with("Warn") && l.contains(child));
    assert!(warned("'/formats/garbage' skipped"), "no warning names the garbage child: {:?}", capture.lines());
    assert!(!warned("/formats/plain"), "{:?}", capture.lines());

    // Garbage written over a good child takes it out, with a warning; good data brings it back.
    w.set("/formats/plain", "{\"Addr\":");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:7001", "127.0.0.1:7003"]));
    assert!(warned("'/formats/plain' skipped"), "{:?}", capture.lines());
    w.set("/formats/garbage", "127.0.0.1:7004");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:7001", "127.0.0.1:7003", "127.0.0.1:7004"]));
    gnaming::log::set_sink(None, Level::Off);
}

#[test]
fn an_expired_session_is_replaced_and_a_change_made_meanwhile_is_listed() {
    let zk = Ensemble::start(3);
    // The resolver knows one follower only; the writer and the thief below use the other two servers.
    let follower = (zk.leader() + 1) % 3;
    let w = Writer::connect(&zk.others(follower));
    w.mkdir("/expiry");
    w.create("/expiry/a", "127.0.0.1:3001");
    let mut updates = resolve(&format!("zk://{}/expiry", zk.server(follower)));
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:3001"]));
    let session = gnaming::zk::session_of("/expiry").expect("the resolver has a session");

    // Closing the session from another client is how ZooKeeper expires it: the resolver's next
    // contact is refused with SESSION_EXPIRED, and its persistent watch is gone with the session.
    // The thief must not race the resolver for the session: ZooKeeper drops a session's older
    // connection when a client presents it anew, and the resolver's client reconnects at once, so
    // each takes the session back from the other until the thief's connect times out. With the
    // resolver's only server stopped, the thief holds the session alone until it has closed it.
    zk.signal(follower, "STOP");
    w.rt.block_on(async {
        let thief = Client::connector()
            .with_session(session.clone())
            .connect(&zk.others(follower))
            .await
            .expect("the thief takes the resolver's session over");
        let mut state = thief.state_watcher();
        drop(thief);
        // Closed once ZooKeeper has answered the close.
        let closed = async { while state.changed().await != SessionState::Closed {} };
        tokio::time::timeout(WAIT, closed).await.expect("the thief's client closes the session");
    });
    w.create("/expiry/b", "127.0.0.1:3002");
    w.delete("/expiry/a");
    zk.signal(follower, "CONT");
    // The resolver may still hold the old session's list until the server refuses it: wait for the new one.
    let deadline = Instant::now() + WAIT;
    while gnaming::zk::session_of("/expiry").is_some_and(|now| now.id() == session.id()) {
        assert!(Instant::now() < deadline, "the resolver is still on session {:?} after {WAIT:?}", session.id());
        std::thread::sleep(Duration::from_millis(20));
    }
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:3002"]));
    w.create("/expiry/c", "127.0.0.1:3003");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:3002", "127.0.0.1:3003"]));
}

#[test]
fn killing_the_leader_during_200_changes_loses_none_and_pushes_no_empty_list() {
    let zk = Ensemble::start(3);
    let leader = zk.leader();
    // The writer avoids the leader, so it is not cut off itself; the resolver may be on any server.
    let w = Writer::connect(&zk.others(leader));
    w.mkdir("/churn");
    let address = |k: usize| format!("127.0.0.1:{}", 4000 + k);
    // Children 0..3 stay, so every real state is non-empty; 3..16 come and go.
    let mut present: std::collections::BTreeSet<usize> = (0..3).collect();
    for k in &present {
        w.create(&format!("/churn/{k}"), &address(*k));
    }
    let list = |p: &std::collections::BTreeSet<usize>| {
        let mut v: Vec<String> = p.iter().map(|k| address(*k)).collect();
        v.sort();
        v
    };
    let mut updates = resolve(&format!("zk://{}/churn", zk.servers));
    updates.wait_list(WAIT, &list(&present));
    let mut seed = 0x9e3779b9u64;
    for op in 0..200 {
        if op == 60 {
            zk.kill(leader);
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let k = 3 + (seed % 13) as usize;
        if present.remove(&k) {
            w.delete(&format!("/churn/{k}"));
        } else {
            present.insert(k);
            w.create(&format!("/churn/{k}"), &address(k));
        }
    }
    let in_zk = w.addresses("/churn");
    assert_eq!(in_zk, list(&present), "the writer's model vs ZooKeeper");
    updates.wait_list(Duration::from_secs(20), &in_zk);
    updates.drain();
    for u in &updates.seen {
        assert!(!u.addresses.is_empty(), "an empty list was pushed: {}", show(u));
    }
    // One more change after the election: the watch still works.
    w.delete("/churn/0");
    let mut expected = in_zk.clone();
    expected.retain(|a| *a != address(0));
    updates.wait_list(WAIT, &expected);
}

/// Also the cold-start cache: a resolver started during the outage serves the list an earlier one
/// wrote, then the live list.
#[test]
fn a_stopped_ensemble_keeps_the_last_list_as_a_transient_error_then_the_live_list_comes_back() {
    let zk = Ensemble::start(3);
    let w = Writer::connect(&zk.servers);
    w.mkdir("/outage");
    w.create("/outage/a", "127.0.0.1:5001");
    w.create("/outage/b", "127.0.0.1:5002");
    let cache_dir = zk.dir.join("cache");
    let options = ResolverOptions {
        cache: CacheOptions { dir: Some(cache_dir.clone()), ..CacheOptions::default() },
        ..ResolverOptions::default()
    };
    // The servers in another order: the same ensemble, the same cache file.
    let mut reversed: Vec<&str> = zk.servers.split(',').collect();
    reversed.reverse();
    let mut updates = resolve_with(&format!("zk://{}/outage", zk.servers), &options);
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:5001", "127.0.0.1:5002"]));
    drop(w);
    updates.resolver.close();
    let mut updates = resolve(&format!("zk://{}/outage", zk.servers));
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:5001", "127.0.0.1:5002"]));

    zk.stop_all();
    let stopped = Instant::now();
    let kept = updates.wait_for(WAIT, "a transient error", |u| !u.is_ok());
    assert_eq!(addrs(&kept), sorted(&["127.0.0.1:5001", "127.0.0.1:5002"]), "the last list must be kept");
    std::thread::sleep(Duration::from_secs(5).saturating_sub(stopped.elapsed()));
    updates.drain();
    let last = updates.seen.last().expect("updates");
    assert!(!last.is_ok() && addrs(last) == addrs(&kept), "5 s into the outage: {}", show(last));
    assert!(updates.seen.iter().all(|u| !u.addresses.is_empty()), "an empty list was pushed");
    let mut cold = resolve_with(&format!("zk://{}/outage", reversed.join(",")), &options);
    let cached = cold.wait_for(WAIT, "the cached list", |u| !u.is_ok());
    assert_eq!(addrs(&cached), sorted(&["127.0.0.1:5001", "127.0.0.1:5002"]), "{}", show(&cached));
    let message = cached.error_message().unwrap_or_default();
    assert!(message.starts_with("serving the cached list written"), "{message}");

    zk.start_all();
    let w = Writer::connect(&zk.servers);
    updates.wait_list(Duration::from_secs(20), &sorted(&["127.0.0.1:5001", "127.0.0.1:5002"]));
    w.create("/outage/c", "127.0.0.1:5003");
    let live = sorted(&["127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003"]);
    updates.wait_list(WAIT, &live);
    cold.wait_list(Duration::from_secs(20), &live);
}

#[test]
fn a_resolver_cut_off_from_its_only_server_lists_the_changes_the_others_took_meanwhile() {
    let zk = Ensemble::start(3);
    let w = Writer::connect(&zk.others(0));
    w.mkdir("/cutoff");
    w.create("/cutoff/a", "127.0.0.1:6001");
    w.create("/cutoff/b", "127.0.0.1:6002");
    // Only server 0 is known to the resolver: killing it cuts the resolver off while the other two
    // keep a quorum and take changes, which a watch re-armed after the outage would never report.
    let mut updates = resolve(&format!("zk://{}/cutoff", zk.server(0)));
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:6001", "127.0.0.1:6002"]));
    zk.kill(0);
    let kept = updates.wait_for(WAIT, "a transient error", |u| !u.is_ok());
    assert_eq!(addrs(&kept), sorted(&["127.0.0.1:6001", "127.0.0.1:6002"]), "the last list must be kept");
    w.delete("/cutoff/a");
    w.set("/cutoff/b", "127.0.0.1:6022");
    w.create("/cutoff/c", "127.0.0.1:6003");
    zk.restart(0);
    updates.wait_list(Duration::from_secs(20), &sorted(&["127.0.0.1:6003", "127.0.0.1:6022"]));
}
