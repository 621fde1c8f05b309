//! The soak: 100 resolvers, 100 registrations and 50 changes a second in one process against a real
//! 3-member etcd, for `GNAMING_SOAK_SECONDS` (20 s in `make test`; `make chaos` runs 30 minutes).
//! Every resolver must end with exactly the registered addresses of its prefix (no update lost) and
//! never be handed an empty list, no lease may be lost, and file descriptors must not pile up. RSS,
//! file descriptors and threads are sampled into `GNAMING_SOAK_CSV` when set; with a run of 10
//! minutes or more, their growth from minute 5 to the end must stay within 5 %.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::EtcdCluster;
use gnaming::etcd::stats::STATS;
use gnaming::etcd::{Registration, RegistrationOptions, RegistrationState};
use gnaming::{Resolver, ResolverOptions, Update};
use parking_lot::Mutex;

const PREFIXES: usize = 10;
const RESOLVERS_PER_PREFIX: usize = 10;
const REGISTRATIONS_PER_PREFIX: usize = 10;
const CHANGES_PER_SECOND: u64 = 50;
/// Growth from minute 5 to the end is judged only on runs this long.
const LONG_RUN: Duration = Duration::from_secs(600);

/// One resolver's view: its last list, and whether it was ever handed an empty one.
#[derive(Default)]
struct View {
    last: Vec<String>,
    empty_seen: bool,
    updates: u64,
}

/// What /proc says about this process now.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Duration,
    rss_kb: u64,
    fds: u64,
    threads: u64,
}

fn sample(at: Duration) -> Sample {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    Sample { at, rss_kb: field("VmRSS:"), fds, threads: field("Threads:") }
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

#[test]
fn a_soak_of_resolvers_registrations_and_changes_loses_no_update_and_leaks_nothing() {
    let length = env_secs("GNAMING_SOAK_SECONDS", 20);
    let every = env_secs("GNAMING_SOAK_SAMPLE_SECONDS", if length >= LONG_RUN { 10 } else { 2 });
    let etcd = EtcdCluster::start(3);
    etcd.register_as("soak");
    let options = RegistrationOptions { cluster: "soak".into(), ..Default::default() };
    let prefix = |p: usize| format!("soak/p{p}");

    let mut next_port = 10_000u16;
    let mut fresh_address = || {
        next_port = if next_port >= 60_000 { 10_000 } else { next_port + 1 };
        format!("127.0.0.1:{next_port}")
    };
    // registrations[p][slot] and, per prefix, the addresses registered now.
    let mut registrations: Vec<Vec<(String, Registration)>> = Vec::new();
    let mut expected: Vec<BTreeSet<String>> = vec![BTreeSet::new(); PREFIXES];
    for (p, wanted) in expected.iter_mut().enumerate() {
        let mut slots = Vec::new();
        for _ in 0..REGISTRATIONS_PER_PREFIX {
            let address = fresh_address();
            let reg = Registration::start(&prefix(p), &address, &options).expect("registration starts");
            wanted.insert(address.clone());
            slots.push((address, reg));
        }
        registrations.push(slots);
    }
    for slots in &registrations {
        for (_, reg) in slots {
            reg.wait(Some(Duration::from_secs(15))).expect("registered");
        }
    }

    let mut views: Vec<(usize, Arc<Mutex<View>>, Resolver)> = Vec::new();
    for p in 0..PREFIXES {
        for _ in 0..RESOLVERS_PER_PREFIX {
            let view = Arc::new(Mutex::new(View::default()));
            let seen = Arc::clone(&view);
            let handler = move |u: &Arc<Update>| {
                let mut v = seen.lock();
                v.updates += 1;
                if u.is_ok() {
                    v.empty_seen |= u.addresses.is_empty();
                    v.last = u.addresses.iter().map(|a| a.address.to_string()).collect();
                    v.last.sort();
                }
            };
            let target = format!("etcd://soak/{}", prefix(p));
            let resolver = Resolver::start(&target, &ResolverOptions::default(), Some(Box::new(handler)))
                .expect("resolver starts");
            views.push((p, view, resolver));
        }
    }
    let losses_before = STATS.lease_losses.load(Ordering::Relaxed);

    // Changes at a steady rate: one registration closed (its key deleted) and a new address
    // registered in its slot, round the prefixes and slots.
    let mut csv = std::env::var("GNAMING_SOAK_CSV").ok().map(|path| {
        let mut f = std::fs::File::create(path).expect("the CSV file can be written");
        writeln!(f, "seconds,rss_kb,fds,threads,changes,updates_delivered").unwrap();
        f
    });
    let started = Instant::now();
    let mut samples = vec![sample(Duration::ZERO)];
    let mut next_sample = started + every;
    let mut changes = 0u64;
    let tick = Duration::from_nanos(1_000_000_000 / CHANGES_PER_SECOND);
    while started.elapsed() < length {
        let due = started + tick * changes as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let p = (changes as usize) % PREFIXES;
        let slot = (changes as usize / PREFIXES) % REGISTRATIONS_PER_PREFIX;
        let address = fresh_address();
        let reg = Registration::start(&prefix(p), &address, &options).expect("registration starts");
        let (old_address, old) = std::mem::replace(&mut registrations[p][slot], (address.clone(), reg));
        old.close(Duration::from_secs(5)).expect("the old registration closes");
        expected[p].remove(&old_address);
        expected[p].insert(address);
        changes += 1;
        if Instant::now() >= next_sample {
            let s = sample(started.elapsed());
            if let Some(f) = csv.as_mut() {
                let delivered = STATS.updates_delivered.load(Ordering::Relaxed);
                writeln!(f, "{:.1},{},{},{},{changes},{delivered}", s.at.as_secs_f64(), s.rss_kb, s.fds, s.threads)
                    .unwrap();
                f.flush().unwrap();
            }
            samples.push(s);
            next_sample += every;
        }
    }
    let ran = started.elapsed();
    let rate = changes as f64 / ran.as_secs_f64();
    assert!(rate >= CHANGES_PER_SECOND as f64 * 0.9, "{changes} changes in {ran:?}: {rate:.1}/s");

    // Every resolver ends with exactly its prefix's registered addresses.
    let deadline = Instant::now() + Duration::from_secs(20);
    for (p, view, _) in &views {
        let want: Vec<String> = expected[*p].iter().cloned().collect();
        while view.lock().last != want {
            assert!(
                Instant::now() < deadline,
                "a resolver of {} ends with {:?}, not the registered {want:?}",
                prefix(*p),
                view.lock().last
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!view.lock().empty_seen, "a resolver of {} was handed an empty list", prefix(*p));
    }
    for slots in &registrations {
        for (address, reg) in slots {
            assert_eq!(reg.state(), RegistrationState::Registered, "{address}");
        }
    }
    assert_eq!(STATS.lease_losses.load(Ordering::Relaxed), losses_before, "a lease was lost during the soak");

    // Nothing piles up: descriptors after warm-up (a fifth of the run, at most 5 minutes) against the end.
    let warm = (length / 5).min(Duration::from_secs(300));
    let after_warm_up: Vec<&Sample> = samples.iter().filter(|s| s.at >= warm).collect();
    let first = after_warm_up.first().copied().copied().unwrap_or(samples[0]);
    let last = *samples.last().unwrap();
    let updates: u64 = views.iter().map(|(_, v, _)| v.lock().updates).sum();
    println!(
        "soak: {changes} changes in {ran:.1?} ({rate:.1}/s), {updates} updates to {} resolvers; after warm-up \
         {first:?}; at the end {last:?}",
        views.len()
    );
    assert!(last.fds <= first.fds + 16, "file descriptors grew from {} to {}", first.fds, last.fds);
    if length >= LONG_RUN {
        let window = |from: Duration, to: Duration| -> Vec<&Sample> {
            samples.iter().filter(|s| s.at >= from && s.at < to).collect()
        };
        let early = window(Duration::from_secs(300), Duration::from_secs(360));
        let late = window(ran.saturating_sub(Duration::from_secs(60)), ran + Duration::from_secs(1));
        for (what, of) in [
            ("RSS", (|s: &Sample| s.rss_kb) as fn(&Sample) -> u64),
            ("file descriptors", |s: &Sample| s.fds),
            ("threads", |s: &Sample| s.threads),
        ] {
            let (at5, end) =
                (median(early.iter().map(|s| of(s)).collect()), median(late.iter().map(|s| of(s)).collect()));
            let growth = (end as f64 - at5 as f64) / at5.max(1) as f64;
            println!("soak: {what} at minute 5 {at5}, in the last minute {end}: {:+.1} %", growth * 100.0);
            assert!(growth <= 0.05, "{what} grew {:.1} % from minute 5 to the end", growth * 100.0);
        }
    }
    drop(views);
}
