//! The Go frameworks' etcd documents against real etcd members on loopback: Kratos instances and
//! go-micro services put by "someone else" resolve (added, changed, deleted, several endpoints per
//! instance, garbage skipped), and registrations in each framework's format are read back from etcd by
//! the same reader.

mod common;

use std::time::Duration;

use common::{resolve, rt, sorted, EtcdCluster};
use etcd_client::GetOptions;
use gnaming::etcd::value::{self, ValueFormat};
use gnaming::etcd::{Registration, RegistrationOptions};
use gnaming::ErrorKind;

const WAIT: Duration = Duration::from_secs(15);

fn options(cluster: &str, format: ValueFormat) -> RegistrationOptions {
    RegistrationOptions { cluster: cluster.into(), ttl: Duration::from_secs(2), format, ..Default::default() }
}

fn kratos(id: &str, endpoints: &[&str]) -> String {
    serde_json::json!({"id": id, "name": "echo", "version": "v1", "metadata": {"zone": "a"}, "endpoints": endpoints})
        .to_string()
}

#[test]
fn kratos_instances_in_etcd_resolve_as_their_grpc_endpoints_through_every_change() {
    let etcd = EtcdCluster::start(3);
    etcd.register_as("kr");
    let rt = rt();
    let mut c = rt.block_on(etcd.client());
    let put = |c: &mut etcd_client::Client, key: &str, value: &str| {
        rt.block_on(c.put(key, value, None)).expect("put");
    };
    put(
        &mut c,
        "/microservices/echo/a",
        &kratos("a", &["http://127.0.0.1:8001", "grpc://127.0.0.1:9001?isSecure=false"]),
    );
    put(&mut c, "/microservices/echo/b", &kratos("b", &["grpc://127.0.0.1:9002", "grpc://[::1]:9003"]));
    put(&mut c, "/microservices/echo/http-only", &kratos("h", &["http://127.0.0.1:8004"]));
    put(&mut c, "/microservices/echo/garbage", "{\"id\":");
    put(&mut c, "/microservices/echoes/other", &kratos("o", &["grpc://127.0.0.1:9999"]));

    let mut updates = resolve("etcd://kr//microservices/echo");
    let u = updates.wait_list(WAIT, &sorted(&["127.0.0.1:9001", "127.0.0.1:9002", "[::1]:9003"]));
    let a = u.addresses.iter().find(|e| e.address == "127.0.0.1:9001").unwrap();
    assert_eq!(a.metadata.as_deref(), Some(r#"{"id":"a","isSecure":false,"version":"v1","zone":"a"}"#));

    // Changed: instance a now serves TLS on another port; deleted: b; garbage fixed into an instance.
    put(&mut c, "/microservices/echo/a", &kratos("a", &["grpcs://127.0.0.1:9011"]));
    rt.block_on(c.delete("/microservices/echo/b", None)).expect("delete");
    put(&mut c, "/microservices/echo/garbage", &kratos("g", &["grpc://127.0.0.1:9005"]));
    let u = updates.wait_list(WAIT, &sorted(&["127.0.0.1:9011", "127.0.0.1:9005"]));
    let a = u.addresses.iter().find(|e| e.address == "127.0.0.1:9011").unwrap();
    assert_eq!(a.metadata.as_deref(), Some(r#"{"id":"a","isSecure":true,"version":"v1","zone":"a"}"#));

    // An instance that loses its last gRPC endpoint is skipped, like garbage.
    put(&mut c, "/microservices/echo/a", &kratos("a", &["http://127.0.0.1:8001"]));
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:9005"]));
}

#[test]
fn go_micro_services_in_etcd_resolve_as_their_nodes() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("gm");
    let rt = rt();
    let mut c = rt.block_on(etcd.client());
    let service = |nodes: serde_json::Value| {
        serde_json::json!({"name": "greeter", "version": "latest", "metadata": null, "endpoints": [], "nodes": nodes})
            .to_string()
    };
    let node =
        |id: &str, address: &str| serde_json::json!({"id": id, "address": address, "metadata": {"protocol": "grpc"}});
    rt.block_on(c.put(
        "/micro/registry/greeter/greeter-1",
        service(serde_json::json!([node("greeter-1", "127.0.0.1:7101")])),
        None,
    ))
    .unwrap();
    rt.block_on(c.put(
        "/micro/registry/greeter/greeter-2",
        service(serde_json::json!([node("greeter-2", "127.0.0.1:7102"), node("greeter-3", "127.0.0.1:7103")])),
        None,
    ))
    .unwrap();
    rt.block_on(c.put("/micro/registry/greeter/broken", service(serde_json::json!([{"id": "x"}])), None)).unwrap();

    let mut updates = resolve("etcd://gm//micro/registry/greeter");
    let u = updates.wait_list(WAIT, &sorted(&["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"]));
    let n3 = u.addresses.iter().find(|e| e.address == "127.0.0.1:7103").unwrap();
    assert_eq!(n3.metadata.as_deref(), Some(r#"{"id":"greeter-3","protocol":"grpc","version":"latest"}"#));

    rt.block_on(c.delete("/micro/registry/greeter/greeter-2", None)).unwrap();
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:7101"]));
}

#[test]
fn registrations_in_the_framework_formats_are_written_in_their_layout_and_read_back() {
    let etcd = EtcdCluster::start(1);
    etcd.register_as("fw");
    let meta = serde_json::json!({"version": "v2", "weight": 4});
    let kratos_reg = Registration::start(
        "echo",
        "127.0.0.1:9201",
        &RegistrationOptions { metadata: Some(meta), ..options("fw", ValueFormat::Kratos) },
    )
    .unwrap();
    let micro_reg = Registration::start("greeter", "127.0.0.1:9202", &options("fw", ValueFormat::GoMicro)).unwrap();
    kratos_reg.wait(Some(WAIT)).unwrap();
    micro_reg.wait(Some(WAIT)).unwrap();
    assert!(kratos_reg.key().starts_with("/microservices/echo/"), "{}", kratos_reg.key());
    assert!(micro_reg.key().starts_with("/micro/registry/greeter/greeter-"), "{}", micro_reg.key());

    // What etcd holds, under a lease, reads back through the one reader.
    let stored = rt().block_on(async {
        let mut c = etcd.client().await;
        let mut stored = Vec::new();
        for prefix in ["/microservices/", "/micro/registry/"] {
            let r = c.get(prefix, Some(GetOptions::new().with_prefix())).await.unwrap();
            for kv in r.kvs() {
                stored.push((kv.key_str().unwrap().to_string(), kv.lease(), value::parse(kv.value())));
            }
        }
        stored
    });
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0].0, kratos_reg.key());
    assert_eq!(stored[1].0, micro_reg.key());
    assert!(stored.iter().all(|(_, lease, _)| *lease != 0), "{stored:?}");
    let read: Vec<_> = stored
        .iter()
        .map(|(_, _, entry)| {
            let address = &entry.as_ref().expect("readable").addresses()[0];
            (address.address.to_string(), address.weight)
        })
        .collect();
    assert_eq!(read, [("127.0.0.1:9201".to_string(), 4), ("127.0.0.1:9202".to_string(), 1)]);

    let mut updates = resolve("etcd://fw//microservices/echo");
    updates.wait_list(WAIT, &sorted(&["127.0.0.1:9201"]));
    kratos_reg.close(Duration::from_secs(5)).unwrap();
    updates.wait_list(WAIT, &[]);
}

#[test]
fn framework_formats_refuse_what_the_frameworks_cannot_read() {
    let nested = serde_json::json!({"labels": {"a": "b"}});
    let cases = [
        RegistrationOptions { metadata: Some(nested), ..options("", ValueFormat::Kratos) },
        RegistrationOptions { raw_value: true, ..options("", ValueFormat::GoMicro) },
    ];
    for case in cases {
        let err = Registration::start("echo", "127.0.0.1:1", &case).err().expect("refused");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    }
    let zk = gnaming::zk::registration::Registration::start(
        "zk://127.0.0.1:1/services/echo",
        "127.0.0.1:1",
        &options("", ValueFormat::Kratos),
    );
    assert_eq!(zk.err().expect("refused").kind(), ErrorKind::InvalidArgument);
    assert!(ValueFormat::from_name("micro").unwrap_err().contains("etcd, kratos, go-micro"));
}
