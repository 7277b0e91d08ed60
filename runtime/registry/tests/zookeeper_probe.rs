//! `probe` against a real ZooKeeper: namespaces, digest ACLs, unreachable servers.

mod support;

use std::time::Duration;

use capstan_registry::{ConnectString, Error, ZkSettings, probe};
use support::ZooKeeper;
use zookeeper_client::{Acls, Client, CreateMode};

fn settings(connect: &str, namespace: &str, digest: Option<&str>) -> ZkSettings {
    ZkSettings {
        connect: connect.parse::<ConnectString>().expect("connect string"),
        namespace: namespace.to_owned(),
        digest: digest.map(str::to_owned),
        session_timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn probe_reads_the_namespace_and_respects_digest_acls() {
    let zk = ZooKeeper::start();
    let timeout = Duration::from_secs(10);

    let report = probe(&settings(&zk.connect(), "jobs", None), timeout)
        .await
        .expect("probe");
    assert!(!report.namespace_exists);
    assert_eq!(report.children, 0);

    let client = Client::connect(&zk.connect()).await.expect("client");
    let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.create("/jobs", b"", &open).await.expect("create");
    for job in ["orderJob", "billingJob"] {
        client
            .create(&format!("/jobs/{job}"), b"", &open)
            .await
            .expect("create job");
    }
    let report = probe(&settings(&zk.connect(), "jobs", None), timeout)
        .await
        .expect("probe");
    assert!(report.namespace_exists);
    assert_eq!(report.children, 2);

    // A namespace written by a digest-authenticated client, as Curator does it.
    let owner = Client::connector()
        .with_auth("digest", b"ops:secret")
        .connect(&zk.connect())
        .await
        .expect("digest client");
    owner
        .create(
            "/secured",
            b"",
            &CreateMode::Persistent.with_acls(Acls::creator_all()),
        )
        .await
        .expect("create secured");

    let err = probe(&settings(&zk.connect(), "secured", None), timeout)
        .await
        .expect_err("readable without the digest");
    assert!(
        matches!(err, Error::NoAuth(ref p) if p == "/secured"),
        "{err}"
    );
    let err = probe(
        &settings(&zk.connect(), "secured", Some("ops:wrong")),
        timeout,
    )
    .await
    .expect_err("readable with the wrong digest");
    assert!(matches!(err, Error::NoAuth(_)), "{err}");
    let report = probe(
        &settings(&zk.connect(), "secured", Some("ops:secret")),
        timeout,
    )
    .await
    .expect("readable with the digest");
    assert!(report.namespace_exists);
}

#[tokio::test]
async fn unreachable_servers_fail_fast_with_a_clear_error() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("addr")
        .port();
    let started = std::time::Instant::now();
    let err = probe(
        &settings(&format!("127.0.0.1:{port}"), "jobs", None),
        Duration::from_secs(5),
    )
    .await
    .expect_err("nothing listens");
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
    assert!(started.elapsed() < Duration::from_secs(5));
}
