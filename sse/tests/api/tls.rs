//! `rediss://` with a private CA: the Pub/Sub subscription and the `{sb}:top` read go over TLS, trusting
//! `REDIS_CA_CERT_FILE` (the test kit's `test-ca.crt`) instead of the public roots.

use std::time::Duration;

use scoreboard_testkit::{RedisServer, fixture_path, free_port};

use crate::helpers::{TestApp, snapshot, token};

const T: Duration = Duration::from_secs(10);

fn fixture(name: &str) -> String {
    fixture_path(name).to_string_lossy().into_owned()
}

/// A redis-server that also listens for TLS with a certificate for 127.0.0.1 signed by the private test
/// CA; returns it, its `rediss://` URL and the TLS port.
fn tls_redis() -> (RedisServer, String, u16) {
    let tls_port = free_port();
    let port_arg = tls_port.to_string();
    let (cert, key, ca) = (
        fixture("redis-tls.crt"),
        fixture("redis-tls.key"),
        fixture("test-ca.crt"),
    );
    let redis = RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "no",
        "--tls-port",
        &port_arg,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]);
    (redis, format!("rediss://127.0.0.1:{tls_port}"), tls_port)
}

/// The local (server-side) ports of the Pub/Sub connections Redis holds now.
async fn pubsub_ports(redis: &RedisServer) -> Vec<u16> {
    let mut conn = redis.connection().await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    list.lines()
        .filter_map(|line| {
            line.split(' ')
                .find_map(|field| field.strip_prefix("laddr="))
                .and_then(|laddr| laddr.rsplit(':').next())
                .and_then(|port| port.parse().ok())
        })
        .collect()
}

/// The value of counter `name` on `/metrics` (0 while it was never incremented).
async fn counter(app: &TestApp, name: &str) -> u64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

#[tokio::test]
async fn subscribes_over_tls_to_a_redis_signed_by_a_private_ca() {
    let (redis, url, tls_port) = tls_redis();
    let ca = fixture("test-ca.crt");
    let app = TestApp::start(
        redis,
        &url,
        &[("REDIS_CA_CERT_FILE", ca.as_str())],
        Some(&snapshot(1)),
    )
    .await;
    app.wait_health(|h| h["subscribed"] == true).await;
    assert_eq!(
        pubsub_ports(&app.redis).await,
        vec![tls_port],
        "the one Pub/Sub connection is on the TLS port"
    );

    let mut client = app.connect(&token("u1")).await;
    assert_eq!(client.status, 200);
    let first = client
        .next_snapshot(T)
        .await
        .expect("snapshot read over TLS");
    assert_eq!(first.version(), Some(1));
    assert_eq!(app.publish(&snapshot(2)).await, 1, "one TLS subscriber");
    let published = client.next_snapshot(T).await.expect("published snapshot");
    assert_eq!(published.version(), Some(2));
    assert_eq!(published.snapshot(), snapshot(2));
}

#[tokio::test]
async fn without_the_private_ca_the_tls_redis_is_not_trusted() {
    let (redis, url, _) = tls_redis();
    let app = TestApp::start(redis, &url, &[], Some(&snapshot(1))).await;
    let before = counter(&app, "sse_pubsub_reconnects_total").await;
    // Bounded wait for two failed subscribe attempts (each retry counts one resubscription).
    let deadline = tokio::time::Instant::now() + T;
    while counter(&app, "sse_pubsub_reconnects_total").await < before + 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no resubscription attempts within {T:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let health = app.wait_health(|_| true).await;
    assert_eq!(health["subscribed"], false, "{health}");
    assert!(pubsub_ports(&app.redis).await.is_empty());
}
