//! Registration in ZooKeeper against a real 3-server ensemble on loopback (tests/harness/zk_ensemble.py):
//! the node a `zk://` service registration writes is what a `zk:` resolver reads, a close or drain
//! deletes it, a warm-up delays it, and after its session expires it is put back, replacing a stale
//! node in the way.

mod common;
mod zk_support;

use std::time::{Duration, Instant};

use common::{addrs, resolve, sorted};
use gnaming::etcd::registration::{RegistrationOptions, RegistrationState};
use gnaming::zk::registration::Registration;
use zk_support::{Ensemble, Writer};
use zookeeper_client::{Client, SessionState};

const WAIT: Duration = Duration::from_secs(10);

/// Polls until the registration is in `state`, for at most `WAIT`.
fn wait_state(reg: &Registration, state: RegistrationState) {
    let deadline = Instant::now() + WAIT;
    while reg.state() != state {
        assert!(Instant::now() < deadline, "expected {state:?} within {WAIT:?}; observed {:?}", reg.state());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_registration_is_a_curator_node_the_resolver_reads_put_back_when_deleted_and_removed_by_close_or_drain() {
    let zk = Ensemble::start(3);
    let w = Writer::connect(&zk.servers);
    let options = RegistrationOptions {
        metadata: Some(serde_json::json!({"zone": "a", "weight": 2})),
        ..RegistrationOptions::default()
    };
    // The service node does not exist yet: the registration creates it.
    let reg = Registration::start(&format!("zk://{}/services/echo", zk.servers), "127.0.0.1:7001", &options)
        .expect("registration starts");
    reg.wait(Some(WAIT)).expect("registered");
    let id = reg.path().strip_prefix("/services/echo/").expect("a child of the service node");

    let (data, owner) = w.node(reg.path()).expect("the node exists");
    assert_ne!(owner, 0, "the node must be ephemeral");
    let doc: serde_json::Value = serde_json::from_str(&data).expect("JSON");
    assert_eq!(
        (&doc["name"], &doc["id"], &doc["address"], &doc["port"], &doc["sslPort"], &doc["serviceType"]),
        (&"echo".into(), &id.into(), &"127.0.0.1".into(), &7001.into(), &serde_json::Value::Null, &"DYNAMIC".into()),
        "{data}"
    );
    assert!(doc["registrationTimeUTC"].as_u64().is_some_and(|t| t > 1_700_000_000_000), "{data}");

    let mut updates = resolve(&format!("zk://{}/services/echo", zk.servers));
    let u = updates.wait_list(WAIT, &sorted(&["127.0.0.1:7001"]));
    assert_eq!((u.addresses[0].weight, u.addresses[0].metadata.as_deref()), (2, Some(r#"{"weight":2,"zone":"a"}"#)));

    // Deleted by someone else: put back.
    w.delete(reg.path());
    updates.wait_list(WAIT, &[]);
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:7001"]));
    wait_state(&reg, RegistrationState::Registered);

    reg.close(Duration::from_secs(5)).expect("ZooKeeper confirms the deletion");
    assert_eq!(reg.state(), RegistrationState::Closed);
    assert_eq!(w.node(reg.path()), None, "the node outlived the close");
    updates.wait_list(WAIT, &[]);

    // A warm-up writes nothing until it ends; a drain deletes, then waits.
    let options = RegistrationOptions { warmup: Duration::from_millis(500), ..RegistrationOptions::default() };
    let warm = Registration::start(&format!("zk://{}/services/echo", zk.servers), "127.0.0.1:7011", &options)
        .expect("registration starts");
    assert_eq!(warm.state(), RegistrationState::WarmingUp);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(w.node(warm.path()), None, "written during the warm-up");
    warm.wait(Some(WAIT)).expect("registered after the warm-up");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:7011"]));
    let draining = Instant::now();
    warm.drain(Duration::from_millis(300), Duration::from_secs(5)).expect("drained");
    assert!(draining.elapsed() >= Duration::from_millis(300), "the drain returned after {:?}", draining.elapsed());
    assert_eq!(w.node(warm.path()), None, "the node outlived the drain");
    updates.wait_list(WAIT, &[]);
}

#[test]
fn after_its_session_expires_the_node_is_put_back_replacing_a_stale_one_in_the_way() {
    let zk = Ensemble::start(3);
    // The registration knows one follower only; the writer and the thief below use the other two.
    let follower = (zk.leader() + 1) % 3;
    let w = Writer::connect(&zk.others(follower));
    let options = RegistrationOptions { ttl: Duration::from_secs(6), ..RegistrationOptions::default() };
    let reg = Registration::start(&format!("zk://{}/expiry/echo", zk.server(follower)), "127.0.0.1:7002", &options)
        .expect("registration starts");
    reg.wait(Some(WAIT)).expect("registered");
    let mut updates = resolve(&format!("zk://{}/expiry/echo", zk.others(follower)));
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:7002"]));
    let session = reg.session().expect("the registration has a session");

    // ZooKeeper expires a session that another client takes over and closes; with the registration's
    // only server stopped, the registration cannot take it back meanwhile (see tests/zk_resolver.rs).
    zk.signal(follower, "STOP");
    w.rt.block_on(async {
        let thief = Client::connector()
            .with_session(session.clone())
            .connect(&zk.others(follower))
            .await
            .expect("the thief takes the registration's session over");
        let mut state = thief.state_watcher();
        drop(thief);
        let closed = async { while state.changed().await != SessionState::Closed {} };
        tokio::time::timeout(WAIT, closed).await.expect("the thief's client closes the session");
    });
    // The session's node went with it.
    updates.wait_list(WAIT, &[]);
    // A node at the registration's path that another session holds, as an expired session's node that
    // ZooKeeper has not removed yet would be.
    w.create_ephemeral(reg.path(), "127.0.0.1:1");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:1"]));
    wait_state(&reg, RegistrationState::Retrying);
    zk.signal(follower, "CONT");

    // Back on a new session, with its own node in place of the stale one.
    updates.wait_list(Duration::from_secs(20), &sorted(&["127.0.0.1:7002"]));
    wait_state(&reg, RegistrationState::Registered);
    let now = reg.session().expect("a session");
    assert_ne!(now.id(), session.id(), "still on the expired session");
    let (_, owner) = w.node(reg.path()).expect("the node is back");
    assert_eq!(owner, now.id().0, "the node must be the new session's");
    updates.drain();
    assert!(
        updates.seen.last().is_some_and(|u| u.is_ok() && addrs(u) == sorted(&["127.0.0.1:7002"])),
        "{:?}",
        updates.seen.last().map(|u| addrs(u))
    );
    reg.close(Duration::from_secs(5)).expect("closed");
    updates.wait_list(WAIT, &[]);
}

#[test]
fn through_a_20_second_outage_of_the_whole_ensemble_the_list_is_kept_and_the_node_is_back_within_2_s() {
    let zk = Ensemble::start(3);
    let service = format!("zk://{}/outage/echo", zk.servers);
    let reg = Registration::start(&service, "127.0.0.1:7801", &RegistrationOptions::default()).expect("starts");
    reg.wait(Some(WAIT)).expect("registered");
    let mut updates = resolve(&service);
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:7801"]));
    let listed = updates.seen.len();

    zk.stop_all();
    std::thread::sleep(Duration::from_secs(20));
    zk.start_all();
    let recovered = Instant::now();
    // The session outlived the outage or was replaced: either way the node is there again soon.
    let w = Writer::connect(&zk.servers);
    while w.node(reg.path()).is_none() {
        assert!(recovered.elapsed() < Duration::from_secs(2), "the node was not back within 2 s of recovery");
        std::thread::sleep(Duration::from_millis(20));
    }
    reg.wait(Some(Duration::from_secs(2))).expect("registered again within 2 s of recovery");
    updates.wait_for(WAIT, "a fresh list with the node", |u| {
        u.state == gnaming::ResolverState::Ok && addrs(u) == ["127.0.0.1:7801"]
    });
    let during: Vec<_> = updates.seen[listed..].iter().map(|u| addrs(u)).collect();
    assert!(during.iter().all(|l| !l.is_empty()), "an empty list during or after the outage: {during:?}");
    reg.close(Duration::from_secs(5)).expect("closed");
}

#[test]
fn digest_credentials_and_the_node_acl_guard_registrations_on_a_named_ensemble() {
    use gnaming::zk::ensemble::{self, EnsembleConfig, NodeAcl};
    let zk = Ensemble::start(1);
    let digest = |user: &str, password: &str| Some((user.to_string(), password.to_string()));
    let named = |name: &str, credentials, node_acl| {
        let config = EnsembleConfig { servers: zk.servers.clone(), digest: credentials, node_acl };
        ensemble::register(name, config).expect("ensemble configured");
    };
    named("zk-owner", digest("svc", "right"), NodeAcl::CreatorAll);
    named("zk-wrong-password", digest("svc", "wrong"), NodeAcl::Open);
    named("zk-public-read", digest("svc", "right"), NodeAcl::CreatorAllAnyoneRead);
    let options = RegistrationOptions::default();

    // Creator-only: the nodes the registration creates are the credentials' alone.
    let private = Registration::start("zk://zk-owner/secure/echo", "127.0.0.1:7100", &options).expect("starts");
    private.wait(Some(WAIT)).expect("registered with digest credentials");
    let mut owner = resolve("zk://zk-owner/secure/echo");
    owner.wait_list(WAIT, &sorted(&["127.0.0.1:7100"]));
    let refused = |u: &gnaming::update::Update| u.error_message().is_some_and(|m| m.contains("not authorized"));
    for target in [format!("zk://{}/secure/echo", zk.servers), "zk://zk-wrong-password/secure/echo".to_string()] {
        let mut stranger = resolve(&target);
        let seen = stranger.wait_for(WAIT, "a 'not authorized' error", refused);
        assert!(seen.addresses.is_empty(), "{target}: a stranger read {:?}", addrs(&seen));
        std::thread::sleep(Duration::from_millis(300));
        stranger.drain();
        assert!(stranger.seen.iter().all(|u| u.addresses.is_empty()), "{target}: a stranger read the list");
    }
    let anonymous = Writer::connect(&zk.servers);
    let read = anonymous.rt.block_on(anonymous.client.get_data(private.path()));
    assert_eq!(read.err(), Some(zookeeper_client::Error::NoAuth), "an anonymous session read the node");
    // ZooKeeper shows a node's ACL only to who may read it (CVE-2019-0201).
    let owner_writer = Writer::connect(&zk.servers);
    owner_writer.rt.block_on(owner_writer.client.auth("digest", b"svc:right")).expect("auth");
    let (acl, _) = owner_writer.rt.block_on(owner_writer.client.get_acl(private.path())).expect("the ACL");
    assert_eq!(acl.len(), 1, "{acl:?}");
    assert_eq!((acl[0].scheme(), acl[0].id().split(':').next()), ("digest", Some("svc")), "{acl:?}");
    assert_eq!(acl[0].permission(), zookeeper_client::Permission::ALL);

    // Deleted by a session with the same credentials: put back, with the same ACL. (The resolver may
    // see the deletion and the new node as one change: the node's creation is what tells.)
    let created = |w: &Writer| w.rt.block_on(w.client.check_stat(private.path())).expect("stat").map(|stat| stat.czxid);
    let first = created(&owner_writer).expect("the node exists");
    owner_writer.delete(private.path());
    let deadline = Instant::now() + WAIT;
    while created(&owner_writer).is_none_or(|czxid| czxid == first) {
        assert!(Instant::now() < deadline, "the deleted node was not put back within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (acl, _) = owner_writer.rt.block_on(owner_writer.client.get_acl(private.path())).expect("the ACL");
    assert_eq!((acl.len(), acl[0].scheme()), (1, "digest"), "{acl:?}");
    owner.wait_list(WAIT, &sorted(&["127.0.0.1:7100"]));
    wait_state(&private, RegistrationState::Registered);

    // Creator-all, anyone-read: clients need no credentials, and still cannot remove the node.
    let public = Registration::start("zk://zk-public-read/public/echo", "127.0.0.1:7101", &options).expect("starts");
    public.wait(Some(WAIT)).expect("registered");
    let mut reader = resolve(&format!("zk://{}/public/echo", zk.servers));
    reader.wait_list(WAIT, &sorted(&["127.0.0.1:7101"]));
    let stranger = Writer::connect(&zk.servers);
    let removed = stranger.rt.block_on(stranger.client.delete(public.path(), None));
    assert_eq!(removed.err(), Some(zookeeper_client::Error::NoAuth), "an anonymous session removed the node");

    // Closing deletes with the credentials.
    private.close(Duration::from_secs(5)).expect("closed");
    public.close(Duration::from_secs(5)).expect("closed");
    owner.wait_list(WAIT, &[]);
    reader.wait_list(WAIT, &[]);

    // A creator ACL without credentials is refused at configuration, not node by node.
    let e = ensemble::register(
        "zk-no-credentials",
        EnsembleConfig { servers: zk.servers.clone(), digest: None, node_acl: NodeAcl::CreatorAll },
    )
    .unwrap_err();
    assert!(e.message().contains("needs digest credentials"), "{e}");
    let unknown = Registration::start("zk://zk-nowhere/echo", "127.0.0.1:7102", &options).err().expect("refused");
    assert_eq!(unknown.kind(), gnaming::error::ErrorKind::NotFound, "{unknown}");
}
