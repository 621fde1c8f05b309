//! The etcd resolver and registration against real etcd members on loopback: lists, removals,
//! member death and hangs, compaction, deleted keys, and the value formats found in the wild.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{addrs, resolve, rt, sorted, EtcdCluster};
use etcd_client::{GetOptions, PutOptions};
use gnaming::etcd::{Registration, RegistrationOptions, RegistrationState};

const WAIT: Duration = Duration::from_secs(15);

fn options(cluster: &str, ttl_ms: u64) -> RegistrationOptions {
    RegistrationOptions { cluster: cluster.into(), ttl: Duration::from_millis(ttl_ms), ..Default::default() }
}

#[test]
fn three_registrations_resolve_and_a_closed_one_is_gone_within_50_ms() {
    let etcd = EtcdCluster::start(3);
    etcd.register_as("s1");
    let addresses = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];
    let regs: Vec<Registration> =
        addresses.iter().map(|a| Registration::start("echo", a, &options("s1", 2000)).unwrap()).collect();
    for r in &regs {
        r.wait(Some(WAIT)).expect("registered");
    }
    let leases = rt().block_on(async {
        let mut c = etcd.client().await;
        let r = c.get("echo/", Some(GetOptions::new().with_prefix())).await.unwrap();
        r.kvs().iter().map(|kv| kv.lease()).collect::<Vec<_>>()
    });
    assert!(
        leases.len() == 3 && leases[0] != 0 && leases.iter().all(|l| *l == leases[0]),
        "one shared lease: {leases:?}"
    );
    let mut updates = resolve("etcd://s1/echo");
    updates.wait_list(WAIT, &sorted(&addresses));
    // Earlier lists may be real states from before the puts reached the watch; from here on the
    // list only shrinks by the closed address.
    let full = updates.seen.len();

    regs[1].close(Duration::from_secs(5)).expect("etcd confirms the removal");
    let closed = Instant::now();
    assert_eq!(regs[1].state(), RegistrationState::Closed);
    updates.wait_list(Duration::from_secs(5), &sorted(&[addresses[0], addresses[2]]));
    // From close's return to the callback's receipt; etcd may push the event before close returns.
    let lag = updates.arrivals.last().unwrap().saturating_duration_since(closed);
    assert!(lag <= Duration::from_millis(50), "removal seen {lag:?} after close returned; expected at most 50 ms");
    let after: Vec<_> = updates.seen[full..].iter().map(|u| addrs(u)).collect();
    assert!(after.iter().all(|l| !l.is_empty()), "no empty list may be pushed after the full one: {after:?}");
}

#[test]
fn both_value_formats_metadata_weight_and_copies_are_delivered_and_bad_values_skipped() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("s8");
    rt().block_on(async {
        let mut c = etcd.client().await;
        c.put("fmt/127.0.0.1:1", "127.0.0.1:1", None).await.unwrap();
        c.put("fmt/json", r#"{"Op":0,"Addr":"127.0.0.1:2","Metadata":{"weight":7,"zone":"a"}}"#, None).await.unwrap();
        c.put("fmt/withdrawn", r#"{"Op":1,"Addr":"127.0.0.1:3"}"#, None).await.unwrap();
        c.put("fmt/bad", "this is not an address", None).await.unwrap();
        c.put("fmt/badjson", r#"{"Addr":17}"#, None).await.unwrap();
        c.put("fmtx/other-service", "127.0.0.1:9", None).await.unwrap();
    });
    let mut updates = resolve("etcd://s8/fmt#2");
    let u = updates.wait_list(WAIT, &sorted(&["127.0.0.1:1", "127.0.0.1:1#1", "127.0.0.1:2", "127.0.0.1:2#1"]));
    let json: Vec<_> = u.addresses.iter().filter(|e| e.address == "127.0.0.1:2").collect();
    assert_eq!(json.iter().map(|e| (e.copy_index, e.weight)).collect::<Vec<_>>(), vec![(0, 7), (1, 7)]);
    assert_eq!(json[0].metadata.as_deref(), Some(r#"{"weight":7,"zone":"a"}"#));
    let raw = u.addresses.iter().find(|e| e.address == "127.0.0.1:1").unwrap();
    assert_eq!((raw.weight, raw.metadata.as_deref()), (1, None));

    // Written by the library: etcd's JSON by default, raw on request; both read back.
    let meta = serde_json::json!({"weight": 3});
    let json_reg = Registration::start(
        "fmt2",
        "127.0.0.1:11",
        &RegistrationOptions { metadata: Some(meta), ..options("s8", 2000) },
    )
    .unwrap();
    let raw_reg =
        Registration::start("fmt2", "127.0.0.1:12", &RegistrationOptions { raw_value: true, ..options("s8", 2000) })
            .unwrap();
    json_reg.wait(Some(WAIT)).unwrap();
    raw_reg.wait(Some(WAIT)).unwrap();
    let values = rt().block_on(async {
        let mut c = etcd.client().await;
        let r = c.get("fmt2/", Some(GetOptions::new().with_prefix())).await.unwrap();
        r.kvs().iter().map(|kv| kv.value_str().unwrap().to_string()).collect::<Vec<_>>()
    });
    assert_eq!(
        values,
        vec![r#"{"Op":0,"Addr":"127.0.0.1:11","Metadata":{"weight":3}}"#.to_string(), "127.0.0.1:12".into()]
    );
    let mut updates = resolve("etcd://s8/fmt2");
    let u = updates.wait_list(WAIT, &sorted(&["127.0.0.1:11", "127.0.0.1:12"]));
    assert_eq!(u.addresses.iter().map(|e| e.weight).collect::<Vec<_>>(), vec![3, 1]);
}

#[test]
fn a_registration_whose_key_someone_deletes_puts_it_back() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("s7");
    let reg = Registration::start("deleted", "127.0.0.1:7700", &options("s7", 2000)).unwrap();
    reg.wait(Some(WAIT)).unwrap();
    let mut updates = resolve("etcd://s7/deleted");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:7700"]));
    let rt = rt();
    let mut c = rt.block_on(etcd.client());
    let deleted_at = rt.block_on(c.delete("deleted/127.0.0.1:7700", None)).unwrap().header().unwrap().revision();
    let deadline = Instant::now() + WAIT;
    loop {
        let r = rt.block_on(c.get("deleted/127.0.0.1:7700", None)).unwrap();
        if r.kvs().first().is_some_and(|kv| kv.mod_revision() > deleted_at && kv.lease() != 0) {
            break;
        }
        assert!(Instant::now() < deadline, "the deleted key was not put back within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:7700"]));
    assert_eq!(reg.state(), RegistrationState::Registered);
}

/// Puts (`Some`) or deletes (`None`) a key, retrying while etcd elects a new leader (bounded: 100
/// tries, 100 ms apart). A failed write may have been applied; repeating it leads to the same state.
fn write(rt: &tokio::runtime::Runtime, client: &mut etcd_client::Client, key: &str, value: Option<&str>) {
    let mut last = String::new();
    for _ in 0..100 {
        let result = match value {
            Some(v) => rt.block_on(client.put(key, v, Some(PutOptions::new()))).map(|_| ()),
            None => rt.block_on(client.delete(key, None)).map(|_| ()),
        };
        match result {
            Ok(()) => return,
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("writing {key} kept failing: {last}");
}

/// The single-member view some tests give the resolver, so they know which member serves it.
fn register_member(etcd: &EtcdCluster, name: &str, member: usize) {
    let config = gnaming::etcd::ClusterConfig {
        endpoints: vec![etcd.endpoints[member].clone()],
        request_timeout: Duration::from_secs(1),
        dial_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    gnaming::etcd::cluster::register(name, config).unwrap();
}

#[test]
fn a_watcher_that_was_away_during_compaction_lists_again_and_converges() {
    let etcd = EtcdCluster::start(3);
    register_member(&etcd, "s6", 0);
    let rt = rt();
    let mut writer = rt.block_on(etcd_client::Client::connect(&etcd.endpoints[1..], None)).unwrap();
    rt.block_on(writer.put("cmp/a", "127.0.0.1:1", None)).unwrap();
    let mut updates = resolve("etcd://s6/cmp");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:1"]));

    // The resolver's only member goes away, so its watch is gone while history is compacted.
    etcd.signal(0, "KILL");
    write(&rt, &mut writer, "cmp/b", Some("127.0.0.1:2"));
    write(&rt, &mut writer, "cmp/a", None);
    write(&rt, &mut writer, "cmp/c", Some("127.0.0.1:3"));
    etcd.compact();
    let compactions = gnaming::etcd::stats::STATS.compactions_seen.load(std::sync::atomic::Ordering::Relaxed);
    etcd.restart(0);
    updates.wait_list(Duration::from_secs(20), &sorted(&["127.0.0.1:2", "127.0.0.1:3"]));
    let after = gnaming::etcd::stats::STATS.compactions_seen.load(std::sync::atomic::Ordering::Relaxed);
    assert!(after > compactions, "the watcher should have met the compaction (seen {compactions} → {after})");
}

#[test]
fn a_hung_member_does_not_stop_the_resolver_which_keeps_working_through_the_others() {
    let etcd = EtcdCluster::start(3);
    etcd.register_as("s4");
    let rt = rt();
    let mut writer = rt.block_on(etcd_client::Client::connect(&etcd.endpoints[1..], None)).unwrap();
    rt.block_on(writer.put("hang/a", "127.0.0.1:1", None)).unwrap();
    let mut updates = resolve("etcd://s4/hang");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:1"]));
    // The resolver's first list and watch went to member 0, the first one configured.
    etcd.signal(0, "STOP");
    write(&rt, &mut writer, "hang/b", Some("127.0.0.1:2"));
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:1", "127.0.0.1:2"]));
    etcd.signal(0, "CONT");
    write(&rt, &mut writer, "hang/c", Some("127.0.0.1:3"));
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]));
}

#[test]
fn killing_the_member_serving_the_watch_during_500_changes_pushes_only_real_states_and_converges() {
    let etcd = EtcdCluster::start(3);
    etcd.register_as("s3");
    let rt = rt();
    let mut writer = rt.block_on(etcd_client::Client::connect(&etcd.endpoints[1..], None)).unwrap();
    // Keys 0..3 stay, so every real state is non-empty; keys 3..16 come and go.
    let mut present: std::collections::BTreeSet<usize> = (0..3).collect();
    for k in &present {
        rt.block_on(writer.put(format!("churn/{k}"), format!("127.0.0.1:{}", 10000 + k), None)).unwrap();
    }
    let list = |p: &std::collections::BTreeSet<usize>| {
        let mut v: Vec<String> = p.iter().map(|k| format!("127.0.0.1:{}", 10000 + k)).collect();
        v.sort();
        v
    };
    let mut states: HashSet<Vec<String>> = HashSet::new();
    states.insert(list(&present));
    let mut updates = resolve("etcd://s3/churn");
    updates.wait_list(WAIT, &list(&present));

    let mut seed = 0x2545f491u64;
    for op in 0..500 {
        if op == 150 {
            etcd.signal(0, "KILL");
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let k = 3 + (seed % 13) as usize;
        let key = format!("churn/{k}");
        if present.contains(&k) {
            present.remove(&k);
            write(&rt, &mut writer, &key, None);
        } else {
            present.insert(k);
            let value = format!("127.0.0.1:{}", 10000 + k);
            write(&rt, &mut writer, &key, Some(&value));
        }
        states.insert(list(&present));
    }
    let final_list = updates.wait_list(Duration::from_secs(20), &list(&present));
    assert!(final_list.is_ok());
    updates.drain();
    for u in &updates.seen {
        assert!(!u.addresses.is_empty(), "an empty list was pushed (state {:?})", u.state);
        assert!(states.contains(&addrs(u)), "pushed list {:?} was never a state of etcd", addrs(u));
    }
    let in_etcd = rt.block_on(async {
        let r = writer.get("churn/", Some(GetOptions::new().with_prefix())).await.unwrap();
        let mut v: Vec<String> = r.kvs().iter().map(|kv| kv.value_str().unwrap().to_string()).collect();
        v.sort();
        v
    });
    assert_eq!(addrs(updates.seen.last().unwrap()), in_etcd, "final list vs etcd's state");
}

#[test]
fn a_resolver_started_after_a_registration_confirmed_in_this_process_first_delivers_a_list_with_it() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("s9");
    let mut registrations = Vec::new();
    // Each round joins the prefix's shared watch right after a put it has not applied yet.
    for round in 0..40u16 {
        let address = format!("127.0.0.1:{}", 7900 + round);
        let r = Registration::start("late", &address, &options("s9", 5000)).unwrap();
        r.wait(Some(WAIT)).expect("registered");
        let mut updates = resolve("etcd://s9/late");
        let first = updates.wait_for(WAIT, "a first update", |_| true);
        assert!(
            first.is_ok() && addrs(&first).contains(&address),
            "round {round}: the first list {:?} lacks {address}, registered before the resolver started",
            addrs(&first)
        );
        registrations.push(r);
    }
}

#[test]
fn a_resolver_started_after_a_deregistration_confirmed_in_this_process_first_delivers_a_list_without_it() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("s10");
    // Another registration of the prefix keeps its shared watch alive across the rounds.
    let keeper = Registration::start("gone", "127.0.0.1:7999", &options("s10", 5000)).unwrap();
    keeper.wait(Some(WAIT)).expect("registered");
    for round in 0..150u16 {
        let address = format!("127.0.0.1:{}", 8000 + round);
        let r = Registration::start("gone", &address, &options("s10", 5000)).unwrap();
        r.wait(Some(WAIT)).expect("registered");
        r.close(WAIT).expect("etcd confirms the removal");
        let mut updates = resolve("etcd://s10/gone");
        let first = updates.wait_for(WAIT, "a first update", |_| true);
        assert!(
            first.is_ok() && !addrs(&first).contains(&address),
            "round {round}: the first list {:?} holds {address}, deregistered before the resolver started",
            addrs(&first)
        );
    }
}

/// Sums one gauge of etcd's /metrics over the members at `endpoints`.
fn etcd_gauge(endpoints: &[String], name: &str) -> f64 {
    use std::io::{Read, Write};
    let mut total = 0.0;
    for endpoint in endpoints {
        let host = endpoint.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(host).expect("etcd serves metrics");
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(conn, "GET /metrics HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).expect("the gauge is reported");
        total += line.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
    }
    total
}

/// Waits (bounded) until etcd's gauge reads `want`; returns what it read last.
fn wait_for_gauge(etcd: &EtcdCluster, name: &str, want: f64) -> f64 {
    let end = Instant::now() + WAIT;
    loop {
        let now = etcd_gauge(&etcd.endpoints, name);
        if now == want || Instant::now() > end {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn resolvers_of_40_prefixes_share_one_watch_stream_and_move_together_when_its_member_dies() {
    let etcd = EtcdCluster::start(3);
    etcd.register_as("mux");
    let streams = "etcd_debugging_mvcc_watch_stream_total";
    let watchers = "etcd_debugging_mvcc_watcher_total";
    let (streams_before, watchers_before) =
        (etcd_gauge(&etcd.endpoints, streams), etcd_gauge(&etcd.endpoints, watchers));
    let rt = rt();
    let mut c = rt.block_on(etcd.client());
    let address = |i: usize, v: usize| format!("127.0.0.1:{}", 10000 + 100 * i + v);
    // Retried: after the kill below, the test's own client may first try the dead member.
    let put = |c: &mut etcd_client::Client, i: usize, v: usize| {
        let value = format!(r#"{{"Op":0,"Addr":"{}"}}"#, address(i, v));
        for attempt in 0..20 {
            match rt.block_on(c.put(format!("mux{i}/a"), value.clone(), None)) {
                Ok(_) => return,
                Err(e) if attempt == 19 => panic!("etcd takes no put: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    };
    for i in 0..40 {
        put(&mut c, i, 0);
    }
    let mut resolvers: Vec<_> = (0..40).map(|i| resolve(&format!("etcd://mux/mux{i}"))).collect();
    for (i, r) in resolvers.iter_mut().enumerate() {
        r.wait_list(WAIT, &[address(i, 0)]);
    }
    assert_eq!(wait_for_gauge(&etcd, watchers, watchers_before + 40.0), watchers_before + 40.0, "etcd watchers");
    assert_eq!(etcd_gauge(&etcd.endpoints, streams), streams_before + 1.0, "etcd watch streams for 40 prefixes");

    // Each prefix still hears only its own changes.
    for i in 0..40 {
        put(&mut c, i, 1);
    }
    for (i, r) in resolvers.iter_mut().enumerate() {
        r.wait_list(WAIT, &[address(i, 1)]);
    }
    // Closing half of them cancels their watches on etcd; the stream stays for the others.
    resolvers.truncate(20);
    assert_eq!(
        wait_for_gauge(&etcd, watchers, watchers_before + 20.0),
        watchers_before + 20.0,
        "watchers after closing 20"
    );
    assert_eq!(etcd_gauge(&etcd.endpoints, streams), streams_before + 1.0, "the shared stream stays open");

    // The member holding the stream dies: every watch moves to another member and follows on.
    let holder =
        (0..3).find(|m| etcd_gauge(&etcd.endpoints[*m..*m + 1], streams) > 0.0).expect("a member holds the stream");
    etcd.signal(holder, "KILL");
    for i in 0..20 {
        put(&mut c, i, 2);
    }
    for (i, r) in resolvers.iter_mut().enumerate() {
        r.wait_list(WAIT, &[address(i, 2)]);
    }
}
