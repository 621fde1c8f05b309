//! etcd scenarios that watch process-wide gauges or whole-cluster outages, one at a time in this
//! binary: shared watches, a registrar killed with SIGKILL, and every member down longer than the TTL.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{resolve, rt, sorted, EtcdCluster};
use gnaming::etcd::stats::STATS;
use gnaming::etcd::{Registration, RegistrationOptions, RegistrationState};

const WAIT: Duration = Duration::from_secs(15);
/// The gauges are process-wide: these tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn options(cluster: &str) -> RegistrationOptions {
    RegistrationOptions { cluster: cluster.into(), ttl: Duration::from_secs(2), ..Default::default() }
}

#[test]
fn a_thousand_resolvers_on_one_target_share_one_watch() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let etcd = EtcdCluster::start(1);
    etcd.register_as("l10");
    let reg = Registration::start("shared", "127.0.0.1:8100", &options("l10")).unwrap();
    reg.wait(Some(WAIT)).unwrap();
    let before = STATS.watches_active.load(Ordering::Relaxed);
    let mut all: Vec<_> = (0..1000).map(|_| resolve("etcd://l10/shared")).collect();
    // The registration already watches its own service: the resolvers join that watch.
    let during = STATS.watches_active.load(Ordering::Relaxed);
    assert_eq!(during, before, "1,000 resolvers should add no watch to the {before} running");
    for u in all.iter_mut() {
        u.wait_list(WAIT, &sorted(&["127.0.0.1:8100"]));
    }
    drop(all);
    drop(reg);
    let deadline = Instant::now() + WAIT;
    while STATS.watches_active.load(Ordering::Relaxed) >= before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(STATS.watches_active.load(Ordering::Relaxed), before - 1, "the watch stops with its last subscriber");
}

/// Not a test on its own: the registering process of the next test, started from this binary.
#[test]
fn registrar_child_process() {
    let Ok(endpoints) = std::env::var("GNAMING_TEST_CHILD_ENDPOINTS") else { return };
    let config = gnaming::etcd::ClusterConfig {
        endpoints: endpoints.split(',').map(str::to_string).collect(),
        ..Default::default()
    };
    gnaming::etcd::cluster::register("child", config).unwrap();
    let reg = Registration::start("killed", "127.0.0.1:8200", &options("child")).unwrap();
    reg.wait(Some(WAIT)).unwrap();
    println!("REGISTERED");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_registrar_killed_with_sigkill_disappears_after_the_ttl() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let etcd = EtcdCluster::start(1);
    etcd.register_as("l2");
    let mut updates = resolve("etcd://l2/killed");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "registrar_child_process", "--nocapture", "--test-threads=1"])
        .env("GNAMING_TEST_CHILD_ENDPOINTS", etcd.endpoints.join(","))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:8200"]));
    child.kill().unwrap();
    let killed = Instant::now();
    child.wait().unwrap();
    updates.wait_list(Duration::from_secs(6), &[]);
    let gone = killed.elapsed();
    assert!(gone >= Duration::from_millis(500), "gone after {gone:?}: only the lease's expiry can remove it");
    assert!(updates.seen.last().unwrap().is_ok(), "an empty list is pushed only when etcd says so");
}

#[test]
fn with_every_member_down_past_the_ttl_resolvers_keep_their_list_and_registrations_come_back_with_fresh_leases() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let etcd = EtcdCluster::start(3);
    etcd.register_as("l5");
    let reg = Registration::start("outage", "127.0.0.1:8500", &options("l5")).unwrap();
    reg.wait(Some(WAIT)).unwrap();
    let rt = rt();
    let lease_of = |etcd: &EtcdCluster| {
        rt.block_on(async {
            let mut c = etcd.client().await;
            c.get("outage/127.0.0.1:8500", None).await.ok().and_then(|r| r.kvs().first().map(|kv| kv.lease()))
        })
    };
    let old_lease = lease_of(&etcd).expect("registered key");
    let mut updates = resolve("etcd://l5/outage");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:8500"]));
    // A resolver joining the registration's shared watch may first see the prefix as it was before
    // the put reached the watch (a real, older state); only what comes during the outage counts.
    let before_outage = updates.seen.len();

    etcd.stop_all();
    let stopped = Instant::now();
    let err = updates.wait_for(WAIT, "an error state", |u| !u.is_ok());
    assert_eq!(common::addrs(&err), sorted(&["127.0.0.1:8500"]), "the last list is kept through the outage");
    // The outage must outlast the TTL so the old lease is gone for good.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(stopped.elapsed()));
    assert_ne!(reg.state(), RegistrationState::Registered, "the registration knows its lease is lost");

    updates.drain();
    let during_outage = updates.seen.len();
    let outage = &updates.seen[before_outage..];
    assert!(
        outage.iter().all(|u| !u.addresses.is_empty()),
        "no empty list while etcd was down: {:?}",
        outage.iter().map(|u| common::addrs(u)).collect::<Vec<_>>()
    );
    etcd.start_all();
    let back = Instant::now();
    reg.wait(Some(WAIT)).unwrap();
    let took = back.elapsed();
    assert!(took <= Duration::from_secs(2), "registered again {took:?} after etcd recovered; expected at most 2 s");
    let new_lease = lease_of(&etcd).expect("the key is back");
    assert_ne!(new_lease, old_lease, "the key is back under a fresh lease");
    // Once etcd answers again, an old key whose lease ran out may briefly be really gone.
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:8500"]));
    assert!(updates.seen.len() > during_outage);
}
