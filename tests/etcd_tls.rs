//! Scenario 9: an etcd cluster that requires client certificates and user/password auth. The CA,
//! server and client certificates are made here with the `openssl` command; auth is switched on
//! through the client certificate before the library connects.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{resolve, rt, sorted, EtcdCluster, LogCapture};
use etcd_client::{Certificate, ConnectOptions, Identity, Permission, TlsOptions};
use gnaming::etcd::cluster::{self, ClusterConfig, TlsConfig};
use gnaming::etcd::{Registration, RegistrationOptions, RegistrationState};
use gnaming::log::Level;
use gnaming::ResolverState;

const WAIT: Duration = Duration::from_secs(15);
const USER: &str = "svc-user";
const PASSWORD: &str = "pw-7Hq2-sEcReT-xK9";
const WRONG_PASSWORD: &str = "pw-wrong-9Lm4-NoPe";
const ROOT_PASSWORD: &str = "root-pw-3Vd8-qQ1z";

/// Runs `openssl` in `dir` with whitespace-separated arguments.
fn openssl(dir: &Path, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = Command::new("openssl").args(&args).current_dir(dir).output().expect("the openssl command runs");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as the harness expects them.
fn make_pki(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(
        dir,
        &format!(
            "req -x509 {ec} -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=gnaming-test-CA \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
        ),
    );
    for (name, cn, ext) in [
        ("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"),
        // The common name is no etcd user, so only the password can authenticate this client.
        ("client", "gnaming-test-client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), format!("basicConstraints=CA:FALSE\n{ext}")).unwrap();
        openssl(dir, &format!("req {ec} -keyout {name}-key.pem -out {name}.csr -subj /CN={cn}"));
        openssl(
            dir,
            &format!(
                "x509 -req -in {name}.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out {name}.pem -days 2 \
                 -extfile {name}.ext"
            ),
        );
    }
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

fn tls_config(pki: &Path) -> TlsConfig {
    TlsConfig { ca_pem: read(pki, "ca.pem"), identity: Some((read(pki, "client.pem"), read(pki, "client-key.pem"))) }
}

/// Creates root and a user allowed only `tls-svc/`, then switches auth on, all through the client
/// certificate.
fn enable_auth(etcd: &EtcdCluster, pki: &Path) {
    rt().block_on(async {
        let tls = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(read(pki, "ca.pem")))
            .identity(Identity::from_pem(read(pki, "client.pem"), read(pki, "client-key.pem")));
        let options = ConnectOptions::new().with_tls(tls);
        let mut admin = etcd_client::Client::connect(&etcd.endpoints, Some(options)).await.expect("admin connects");
        admin.user_add("root", ROOT_PASSWORD, None).await.unwrap();
        admin.role_add("root").await.unwrap();
        admin.user_grant_role("root", "root").await.unwrap();
        admin.role_add("svc").await.unwrap();
        admin.role_grant_permission("svc", Permission::read_write("tls-svc/").with_prefix()).await.unwrap();
        admin.user_add(USER, PASSWORD, None).await.unwrap();
        admin.user_grant_role(USER, "svc").await.unwrap();
        admin.auth_enable().await.unwrap();
    });
}

/// The base64 lines of a PEM private key: none of them may leak.
fn key_lines(pem: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(pem)
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(String::from)
        .collect()
}

#[test]
fn with_client_certificates_and_a_password_registration_and_resolution_work_and_secrets_never_leak() {
    let capture = LogCapture::start(Level::Debug);
    let pki: PathBuf = std::env::temp_dir().join(format!("gnaming-etcd-tls-{}", std::process::id()));
    make_pki(&pki);
    let etcd = EtcdCluster::start_with(3, &["--tls-dir", pki.to_str().unwrap()]);
    assert!(etcd.endpoints.iter().all(|e| e.starts_with("https://")), "TLS endpoints: {:?}", etcd.endpoints);
    enable_auth(&etcd, &pki);

    let config = |password: &str| ClusterConfig {
        endpoints: etcd.endpoints.clone(),
        dial_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        tls: Some(tls_config(&pki)),
        auth: Some((USER.into(), password.into())),
    };
    cluster::register("tls-good", config(PASSWORD)).unwrap();
    cluster::register("tls-wrong", config(WRONG_PASSWORD)).unwrap();

    // The right password: a registration with metadata is resolved over TLS.
    let options = RegistrationOptions {
        cluster: "tls-good".into(),
        ttl: Duration::from_secs(2),
        metadata: Some(serde_json::json!({"weight": 4})),
        ..Default::default()
    };
    let reg = Registration::start("tls-svc", "127.0.0.1:9901", &options).unwrap();
    reg.wait(Some(WAIT)).expect("registered over TLS with a password");
    let mut good = resolve("etcd://tls-good/tls-svc");
    let u = good.wait_list(WAIT, &sorted(&["127.0.0.1:9901"]));
    assert_eq!(u.addresses[0].weight, 4, "the weight from the metadata");

    // A wrong password: the resolver reports why, the registration never gets in.
    let mut wrong = resolve("etcd://tls-wrong/tls-svc");
    let failed = wrong.wait_for(
        WAIT,
        "an error state saying authentication failed",
        |u| matches!(&u.state, ResolverState::TransientError(m) if m.contains("authentication failed")),
    );
    assert!(failed.addresses.is_empty(), "nothing was ever listed: {:?}", common::addrs(&failed));
    let denied = Registration::start(
        "tls-svc",
        "127.0.0.1:9902",
        &RegistrationOptions { cluster: "tls-wrong".into(), ..options.clone() },
    )
    .unwrap();
    let Err(denied_connect) = rt().block_on(cluster::for_name("tls-wrong").unwrap().client(0)) else {
        panic!("a wrong password must not connect");
    };
    assert_eq!(denied_connect.kind(), gnaming::ErrorKind::PermissionDenied, "{denied_connect}");
    assert!(denied_connect.message().contains("authentication failed"), "{denied_connect}");
    let e = denied.wait(Some(Duration::from_secs(2))).unwrap_err();
    assert_eq!(e.kind(), gnaming::ErrorKind::Timeout, "{e}");
    assert_eq!(denied.state(), RegistrationState::Registering);
    drop(denied);

    // Closing over TLS removes the address at once.
    reg.close(Duration::from_secs(5)).expect("etcd confirms the removal");
    good.wait_list(WAIT, &[]);
    wrong.drain();
    let updates: Vec<String> = good.seen.iter().chain(&wrong.seen).map(|u| format!("{u:?}")).collect();
    drop(good);
    drop(wrong);
    gnaming::log::set_sink(None, Level::Off);

    let logs = capture.lines();
    assert!(
        logs.iter().any(|l| l.contains("authentication failed")),
        "the registration's retries should log why; {} lines captured",
        logs.len()
    );
    let mut texts: Vec<(String, String)> = logs.into_iter().map(|l| ("log".into(), l)).collect();
    texts.push(("stats".into(), gnaming::etcd::stats::to_json()));
    texts.push(("wait error".into(), e.to_string()));
    texts.push(("connect error".into(), denied_connect.to_string()));
    texts.extend(updates.into_iter().map(|u| ("update".to_string(), u)));
    let mut secrets =
        vec![PASSWORD.to_string(), WRONG_PASSWORD.to_string(), ROOT_PASSWORD.into(), "PRIVATE KEY".into()];
    secrets.extend(key_lines(&read(&pki, "client-key.pem")));
    for (source, text) in &texts {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{source} text leaks a secret ({secret:?}): {text}");
        }
    }
    drop(etcd);
    let _ = std::fs::remove_dir_all(&pki);

    // With no etcd resolver left, a static target's one update is counted too.
    let delivered = || gnaming::etcd::stats::STATS.updates_delivered.load(std::sync::atomic::Ordering::Relaxed);
    let before = delivered();
    let mut fixed = resolve("pass:///127.0.0.1:1");
    fixed.wait_list(WAIT, &sorted(&["127.0.0.1:1"]));
    assert_eq!(delivered(), before + 1, "updates_delivered counts every resolver's updates");
}
