//! etcd scenarios that watch process-wide gauges or whole-cluster outages, one at a time in this
//! binary: shared watches, a registrar killed with SIGKILL, every member down longer than the TTL, and a
//! cluster restored from an older snapshot.

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

/// A cluster restored from an older snapshot on the same addresses is back at an older revision. A
/// watch resumed from the revision after the last one seen would wait for revisions that already
/// passed and miss every change made until then: the resolver must notice and list again, and
/// registrations must put their keys back, so that the list ends equal to etcd's.
#[test]
fn a_cluster_restored_from_an_older_snapshot_is_listed_again_and_registrations_put_their_keys_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let etcd = EtcdCluster::start(3);
    etcd.register_as("restored");
    let rt = rt();
    let mut client = rt.block_on(etcd.client());
    let put = |client: &mut etcd_client::Client, key: &str| {
        rt.block_on(client.put(format!("restore/{key}"), key, None)).expect("put");
    };
    let long = RegistrationOptions { cluster: "restored".into(), ttl: Duration::from_secs(5), ..Default::default() };
    let before = Registration::start("restore", "127.0.0.1:8601", &long).unwrap();
    before.wait(Some(WAIT)).unwrap();
    put(&mut client, "127.0.0.1:8602");
    put(&mut client, "127.0.0.1:8603");
    let mut updates = resolve("etcd://restored/restore");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:8601", "127.0.0.1:8602", "127.0.0.1:8603"]));
    let snapshot = etcd.dir.join("backup.db");
    etcd.snapshot(&snapshot);

    // After the backup: a key deleted, one added, a registration, and revisions far ahead of it.
    rt.block_on(client.delete("restore/127.0.0.1:8602", None)).expect("delete");
    put(&mut client, "127.0.0.1:8604");
    let after = Registration::start("restore", "127.0.0.1:8605", &long).unwrap();
    after.wait(Some(WAIT)).unwrap();
    for i in 0..50 {
        rt.block_on(client.put(format!("elsewhere/{i}"), "x", None)).expect("put");
    }
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:8601", "127.0.0.1:8603", "127.0.0.1:8604", "127.0.0.1:8605"]));
    let rewinds = STATS.rewinds_seen.load(Ordering::Relaxed);

    etcd.restore(&snapshot);
    // The restored cluster holds what the backup held; the registration made after it puts its key
    // back; nothing written only after the backup by someone else comes back.
    let expected = sorted(&["127.0.0.1:8601", "127.0.0.1:8602", "127.0.0.1:8603", "127.0.0.1:8605"]);
    after.wait(Some(WAIT)).unwrap();
    updates.wait_list(Duration::from_secs(20), &expected);
    let mut client = rt.block_on(etcd.client());
    let in_etcd = rt.block_on(client.get("restore/", Some(etcd_client::GetOptions::new().with_prefix()))).unwrap();
    let mut keys: Vec<String> =
        in_etcd.kvs().iter().map(|kv| kv.key_str().unwrap().trim_start_matches("restore/").to_string()).collect();
    keys.sort();
    assert_eq!(keys, expected, "the resolver's list must equal etcd's");
    assert!(STATS.rewinds_seen.load(Ordering::Relaxed) > rewinds, "the rewind is counted");
    // A resolver started now joins the same watch: the registrations' writes before the restore, at
    // revisions the restored cluster has not reached, must not hold its first list back.
    let mut late = resolve("etcd://restored/restore");
    late.wait_list(WAIT, &expected);
    // Later changes reach the resolver too: it watches the restored cluster's revisions.
    put(&mut client, "127.0.0.1:8606");
    let mut more = expected.clone();
    more.push("127.0.0.1:8606".to_string());
    more.sort();
    updates.wait_list(WAIT, &more);
    before.close(Duration::from_secs(5)).unwrap();
    after.close(Duration::from_secs(5)).unwrap();
}
