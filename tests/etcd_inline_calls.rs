//! A callback called on the thread that received the change (a watch with one subscriber whose last
//! call was quick) holds up only its own watch: a call that blocks for longer than the watch's stall
//! limit is not mistaken for a dead stream, and the changes made meanwhile arrive as one update. With
//! two subscribers on one watch, a blocking one holds up only itself.

mod common;

use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{addrs, rt, sorted, EtcdCluster, LogCapture};
use gnaming::log::Level;
use gnaming::{Resolver, ResolverOptions, Update};

const WAIT: Duration = Duration::from_secs(15);
/// Longer than the watch's stall limit (5 s of silence).
const BLOCKED_FOR: Duration = Duration::from_secs(6);

#[test]
fn a_callback_that_blocks_past_the_stall_limit_is_not_taken_for_a_dead_stream() {
    let capture = LogCapture::start(Level::Warn);
    let etcd = EtcdCluster::start(3);
    etcd.register_as("inline");
    let rt = rt();
    let mut client = rt.block_on(etcd.client());
    let put = |client: &mut etcd_client::Client, addr: &str| {
        rt.block_on(client.put(format!("blocked/{addr}"), addr, None)).expect("put");
    };
    put(&mut client, "127.0.0.1:9001");

    // The first call listing 9004 blocks: the calls before it were quick, so it runs on the watch's
    // own thread.
    let (tx, rx) = channel::<(Instant, Arc<Update>)>();
    let mut blocked = false;
    let handler = move |u: &Arc<Update>| {
        if !blocked && addrs(u).iter().any(|a| a == "127.0.0.1:9004") {
            blocked = true;
            std::thread::sleep(BLOCKED_FOR);
        }
        let _ = tx.send((Instant::now(), Arc::clone(u)));
    };
    let resolver = Resolver::start("etcd://inline/blocked", &ResolverOptions::default(), Some(Box::new(handler)))
        .expect("resolver starts");
    let wait_for = |want: &[&str]| {
        let want = sorted(want);
        let end = Instant::now() + WAIT + BLOCKED_FOR;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let (at, u) = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no update listing {want:?}"));
            if addrs(&u) == want {
                return at;
            }
        }
    };
    wait_for(&["127.0.0.1:9001"]);
    put(&mut client, "127.0.0.1:9002");
    wait_for(&["127.0.0.1:9001", "127.0.0.1:9002"]);
    put(&mut client, "127.0.0.1:9003");
    wait_for(&["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]);
    // The call with this change blocks; two more changes come meanwhile.
    let blocked_at = Instant::now();
    put(&mut client, "127.0.0.1:9004");
    std::thread::sleep(Duration::from_millis(500));
    put(&mut client, "127.0.0.1:9005");
    put(&mut client, "127.0.0.1:9006");
    let all =
        ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003", "127.0.0.1:9004", "127.0.0.1:9005", "127.0.0.1:9006"];
    let caught_up = wait_for(&all);
    assert!(caught_up.duration_since(blocked_at) >= BLOCKED_FOR, "the blocking call did not block");
    // A progress round after the blocked call: a stream judged dead would be dropped and logged now.
    std::thread::sleep(Duration::from_secs(3));
    put(&mut client, "127.0.0.1:9007");
    let mut more = all.to_vec();
    more.push("127.0.0.1:9007");
    wait_for(&more);

    let stalls: Vec<String> =
        capture.lines().into_iter().filter(|line| line.contains("'blocked/'") || line.contains("stalled")).collect();
    assert!(stalls.is_empty(), "the watch was judged dead while its callback ran: {stalls:?}");
    drop(resolver);
    gnaming::log::set_sink(None, Level::Off);
}

/// With two subscribers on one watch, no call runs on the watch's thread: a subscriber whose call
/// blocks holds up only itself, and the other one hears each change at once.
#[test]
fn a_blocking_subscriber_does_not_hold_up_another_subscriber_of_the_same_watch() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("shared");
    let rt = rt();
    let mut client = rt.block_on(etcd.client());
    rt.block_on(client.put("pair/127.0.0.1:9101", "127.0.0.1:9101", None)).expect("put");

    let (tx, rx) = channel::<(Instant, Arc<Update>)>();
    let quick = move |u: &Arc<Update>| {
        let _ = tx.send((Instant::now(), Arc::clone(u)));
    };
    let _quick = Resolver::start("etcd://shared/pair", &ResolverOptions::default(), Some(Box::new(quick)))
        .expect("resolver starts");
    // The slow subscriber, attached last, is called last: its calls are quick until a list holds
    // 9102, and then each takes 3 s.
    let slow = |u: &Arc<Update>| {
        if addrs(u).iter().any(|a| a == "127.0.0.1:9102") {
            std::thread::sleep(Duration::from_secs(3));
        }
    };
    let _slow = Resolver::start("etcd://shared/pair", &ResolverOptions::default(), Some(Box::new(slow)))
        .expect("resolver starts");
    let wait_for = |want: &[&str]| {
        let want = sorted(want);
        loop {
            let (at, u) = rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("no update listing {want:?}"));
            if addrs(&u) == want {
                return at;
            }
        }
    };
    wait_for(&["127.0.0.1:9101"]);
    let mut want = vec!["127.0.0.1:9101"];
    for addr in ["127.0.0.1:9102", "127.0.0.1:9103", "127.0.0.1:9104"] {
        let put_at = Instant::now();
        rt.block_on(client.put(format!("pair/{addr}"), addr, None)).expect("put");
        want.push(addr);
        let heard = wait_for(&want).duration_since(put_at);
        assert!(heard < Duration::from_secs(1), "{addr} reached the quick subscriber after {heard:?}");
    }
}
