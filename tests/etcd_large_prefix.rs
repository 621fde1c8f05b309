//! Prefixes too large for one etcd response: the etcd resolver (and `gnaming resolve`) list them in
//! pages at one revision and then follow their changes.
// It runs the `gnaming` binary, which needs the feature `cli`. The gate is here, not in Cargo.toml
// ([[test]] required-features), so that the manifest still parses where tests/ is absent (the
// Python sdist carries Cargo.toml, build.rs, src/ and include/ only).
#![cfg(feature = "cli")]

mod common;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{addrs, resolve, rt, EtcdCluster};
use etcd_client::{Client, CompactionOptions, GetOptions, Txn, TxnOp};
use gnaming::etcd::stats::STATS;
use gnaming::etcd::watcher::{self, PageRead};
use gnaming::target::ClusterRef;

const WAIT: Duration = Duration::from_secs(30);

/// etcd's Go naming value for `addr`, padded with `pad` bytes of metadata.
fn value(addr: &str, pad: usize) -> String {
    format!(r#"{{"Op":0,"Addr":"{addr}","Metadata":{{"pad":"{}"}}}}"#, "x".repeat(pad))
}

fn address(i: usize) -> String {
    format!("127.0.0.1:{}", 20000 + i)
}

/// Puts `service/<address(i)>` for every `i` in `range`, with `pad` bytes of metadata, as few
/// transactions as etcd's request limit (1.5 MiB) allows.
fn put_many(rt: &tokio::runtime::Runtime, c: &mut Client, service: &str, range: std::ops::Range<usize>, pad: usize) {
    let keys: Vec<usize> = range.collect();
    let batch = (1_000_000 / (pad + 100)).clamp(1, 100);
    for chunk in keys.chunks(batch) {
        let ops: Vec<TxnOp> = chunk
            .iter()
            .map(|i| TxnOp::put(format!("{service}/{}", address(*i)), value(&address(*i), pad), None))
            .collect();
        rt.block_on(c.txn(Txn::new().and_then(ops))).expect("etcd takes the batch");
    }
}

fn addresses(range: std::ops::Range<usize>) -> Vec<String> {
    let mut v: Vec<String> = range.map(address).collect();
    v.sort();
    v
}

fn put(service: &str, i: usize) -> TxnOp {
    TxnOp::put(key(service, i), value(&address(i), 0), None)
}

fn key(service: &str, i: usize) -> String {
    format!("{service}/{}", address(i))
}

/// Applies one transaction (one revision) and returns its revision.
fn txn(rt: &tokio::runtime::Runtime, c: &mut Client, ops: Vec<TxnOp>) -> i64 {
    rt.block_on(c.txn(Txn::new().and_then(ops))).expect("etcd takes the transaction").header().unwrap().revision()
}

/// The addresses etcd holds under `service/`, sorted.
fn in_etcd(rt: &tokio::runtime::Runtime, c: &mut Client, service: &str) -> Vec<String> {
    let r = rt.block_on(c.get(format!("{service}/"), Some(GetOptions::new().with_prefix().with_keys_only()))).unwrap();
    let mut v: Vec<String> =
        r.kvs().iter().map(|kv| kv.key_str().unwrap().trim_start_matches(&format!("{service}/")).to_string()).collect();
    v.sort();
    v
}

/// Lets a paused list read its remaining pages (at most 100); the pages it read.
fn resume_to_the_last_page(pause: &watcher::ListPause) -> Vec<PageRead> {
    let mut pages = Vec::new();
    for _ in 0..100 {
        pause.resume();
        let page = pause.next_page(WAIT).expect("the list reads its next page");
        pages.push(page);
        if page.last {
            return pages;
        }
    }
    panic!("no last page in 100: {pages:?}");
}

#[test]
fn a_prefix_above_4_mib_is_listed_whole_then_followed_and_gnaming_resolve_prints_it() {
    let etcd = EtcdCluster::start(3);
    etcd.register_as("big");
    let rt = rt();
    let mut c = rt.block_on(etcd.client());
    // 2,000 entries of about 4 KiB: 8 MB, twice gRPC's default receive limit.
    put_many(&rt, &mut c, "big", 0..2000, 4096);

    let mut updates = resolve("etcd://big/big");
    let expected = addresses(0..2000);
    updates.wait_for(WAIT, "all 2,000 addresses", |u| u.is_ok() && addrs(u) == expected);

    // Changes after the list reach the resolver.
    put_many(&rt, &mut c, "big", 2000..2001, 4096);
    rt.block_on(c.delete(format!("big/{}", address(0)), None)).unwrap();
    let expected = addresses(1..2001);
    updates.wait_for(WAIT, "2,000 addresses after one put and one delete", |u| u.is_ok() && addrs(u) == expected);

    let out = Command::new(env!("CARGO_BIN_EXE_gnaming"))
        .args(["resolve", "etcd:///big", "--etcd", &etcd.endpoints.join(","), "--json", "--timeout", "20"])
        .output()
        .expect("gnaming runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gnaming resolve failed: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("gnaming resolve prints JSON");
    let mut printed: Vec<String> =
        json["addresses"].as_array().unwrap().iter().map(|a| a["addr"].as_str().unwrap().to_string()).collect();
    printed.sort();
    assert_eq!(printed.len(), expected.len(), "gnaming resolve printed {} addresses", printed.len());
    assert!(printed == expected, "gnaming resolve printed other addresses than etcd holds");
}

#[test]
fn a_compaction_between_two_pages_starts_the_list_over_and_only_real_states_are_published() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("pcmp");
    let rt = rt();
    let mut c = rt.block_on(etcd.client());
    put_many(&rt, &mut c, "pcmp", 0..50, 0);
    let pause = watcher::pause_lists("pcmp/", 10);
    let compactions = STATS.compactions_seen.load(Ordering::Relaxed);
    let mut updates = resolve("etcd://pcmp/pcmp");

    let page = pause.next_page(WAIT).expect("the list reads its first page");
    assert_eq!(page, PageRead { number: 1, keys: 10, last: false });
    // After the first page etcd changes and compacts its history past the list's revision.
    let revision = txn(
        &rt,
        &mut c,
        vec![TxnOp::delete(key("pcmp", 3), None), TxnOp::delete(key("pcmp", 25), None), put("pcmp", 60)],
    );
    rt.block_on(c.compact(revision, Some(CompactionOptions::new().with_physical()))).unwrap();
    let mut first_state = addresses(0..50);
    first_state.retain(|a| *a != address(3) && *a != address(25));
    first_state.push(address(60));
    first_state.sort();

    pause.resume();
    let page = pause.next_page(WAIT).expect("the list reads a page after the compaction");
    assert_eq!(page, PageRead { number: 1, keys: 10, last: false }, "the list should have started over");
    assert!(STATS.compactions_seen.load(Ordering::Relaxed) > compactions, "the compaction is counted");
    // Changes between the pages of the new list, one of them in the page already read: the list,
    // pinned to its first page's revision, must not mix them in; the watch after it brings them.
    txn(&rt, &mut c, vec![TxnOp::delete(key("pcmp", 5), None), TxnOp::delete(key("pcmp", 40), None), put("pcmp", 61)]);
    let mut second_state = first_state.clone();
    second_state.retain(|a| *a != address(5) && *a != address(40));
    second_state.push(address(61));
    second_state.sort();
    let pages = resume_to_the_last_page(&pause);
    assert_eq!(pages.iter().map(|p| p.keys).sum::<usize>(), first_state.len() - 10, "keys in the later pages");
    pause.resume();
    drop(pause);

    updates.wait_for(WAIT, "the state after the second change", |u| u.is_ok() && addrs(u) == second_state);
    std::thread::sleep(Duration::from_millis(200));
    updates.drain();
    for u in &updates.seen {
        assert!(u.is_ok(), "no error may be published for a list that starts over: {:?}", u.state);
    }
    let published: Vec<Vec<String>> = updates.seen.iter().map(|u| addrs(u)).collect();
    assert!(
        published == [first_state.clone(), second_state.clone()],
        "expected the listed state ({} addresses) then the changed one ({}); published {} lists of sizes {:?}",
        first_state.len(),
        second_state.len(),
        published.len(),
        published.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(in_etcd(&rt, &mut c, "pcmp"), second_state, "etcd's contents vs the last list");
}

#[test]
fn values_of_1_mib_are_listed_in_smaller_pages_and_a_30_mib_backlog_reaches_the_watch_in_fragments() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("huge");
    let rt = rt();
    let mut c = rt.block_on(etcd.client());
    put_many(&rt, &mut c, "huge", 0..30, 1 << 20);
    let pause = watcher::pause_lists("huge/", watcher::PAGE_KEYS);
    let mut updates = resolve("etcd://huge/huge");

    // 30 MiB in one page is above the receive limit: the page is asked for again with fewer keys.
    let first = pause.next_page(WAIT).expect("the list reads its first page");
    assert!(first.number == 1 && first.keys > 0 && first.keys < 30, "first page: {first:?}");
    let mut pages = vec![first];
    if !first.last {
        pages.extend(resume_to_the_last_page(&pause));
    }
    assert_eq!(pages.iter().map(|p| p.keys).sum::<usize>(), 30, "keys listed in {pages:?}");

    // 30 more values before the watch starts: it catches up on 30 MiB of events in one response,
    // which etcd sends in fragments below its request limit, and which is pushed once complete.
    put_many(&rt, &mut c, "huge", 30..60, 1 << 20);
    pause.resume();
    drop(pause);
    let all = addresses(0..60);
    updates.wait_for(WAIT, "all 60 addresses", |u| u.is_ok() && addrs(u) == all);
    std::thread::sleep(Duration::from_millis(200));
    updates.drain();
    for u in &updates.seen {
        assert!(u.is_ok(), "no error expected: {:?}", u.state);
    }
    let published: Vec<usize> = updates.seen.iter().map(|u| addrs(u).len()).collect();
    assert_eq!(published, [30, 60], "sizes of the lists pushed: the listed one, then the caught-up one");
}

/// What a subscriber of a shared watch saw: each state's revision, entry count and where its entries
/// live.
type Seen = Arc<Mutex<Vec<(i64, usize, usize)>>>;

#[test]
fn changes_after_the_list_are_made_in_place_and_lent_to_subscribers_which_see_every_state_in_order() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("inplace");
    let rt = rt();
    let mut c = rt.block_on(etcd.client());
    put_many(&rt, &mut c, "inplace", 0..1000, 0);
    let cluster = gnaming::etcd::cluster::for_ref(&ClusterRef::Named("inplace".into())).unwrap();
    let watch = watcher::subscribe(&cluster, "inplace/").unwrap();
    let seen: Seen = Arc::default();
    // The same state may be handed over twice (once listed, again when the watch is established).
    let record = |seen: &Seen| {
        let seen = Arc::clone(seen);
        move |s: &watcher::Snapshot| {
            if s.listed && s.error.is_none() {
                let mut seen = seen.lock().unwrap();
                let state = (s.revision, s.entries.len(), Arc::as_ptr(&s.entries) as usize);
                if seen.last() != Some(&state) {
                    seen.push(state);
                }
            }
        }
    };
    let _first = watch.attach(record(&seen));
    let listed = wait_for_revision(&seen, 1, "the list");
    // One revision at a time, each seen before the next is made.
    let mut revisions = vec![listed];
    for i in 1000..1020 {
        revisions.push(txn(&rt, &mut c, vec![put("inplace", i)]));
        wait_for_revision(&seen, *revisions.last().unwrap(), "each change");
    }
    let states = seen.lock().unwrap().clone();
    let got: Vec<(i64, usize)> = states.iter().map(|s| (s.0, s.1)).collect();
    let expected: Vec<(i64, usize)> = revisions.iter().enumerate().map(|(i, r)| (*r, 1000 + i)).collect();
    assert_eq!(got, expected, "(revision, entries) of every state, in order");
    let places: std::collections::BTreeSet<usize> = states.iter().map(|s| s.2).collect();
    assert_eq!(
        places.len(),
        1,
        "the entries were copied for a change: {} places for {} states",
        places.len(),
        states.len()
    );

    // A subscriber attached later starts from the current state, then hears the next one.
    let late: Seen = Arc::default();
    let attached = watch.attach(record(&late));
    assert_eq!(
        late.lock().unwrap().clone().iter().map(|s| s.0).collect::<Vec<_>>(),
        [*revisions.last().unwrap()],
        "the current state is handed over on attaching"
    );
    let next = txn(&rt, &mut c, vec![TxnOp::delete(key("inplace", 0), None)]);
    wait_for_revision(&late, next, "the change after attaching");
    // Detached, it hears nothing more.
    drop(attached);
    let after = txn(&rt, &mut c, vec![TxnOp::delete(key("inplace", 1), None)]);
    wait_for_revision(&seen, after, "the change after detaching");
    let late_revisions: Vec<i64> = late.lock().unwrap().iter().map(|s| s.0).collect();
    assert_eq!(late_revisions, [*revisions.last().unwrap(), next], "what the detached subscriber heard");
}

/// Waits (bounded) until `seen` holds a state at `revision` or later; returns the newest revision.
fn wait_for_revision(seen: &Seen, revision: i64, what: &str) -> i64 {
    let end = std::time::Instant::now() + WAIT;
    loop {
        if let Some(last) = seen.lock().unwrap().last().map(|s| s.0).filter(|r| *r >= revision) {
            return last;
        }
        assert!(std::time::Instant::now() < end, "{what}: no state at revision {revision} within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
