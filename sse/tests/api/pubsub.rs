//! Losing the Pub/Sub connection: the process resubscribes, re-reads `{sb}:top`, and clients converge.

use std::time::Duration;

use redis::AsyncCommands;
use scoreboard_shared::redis::keys;

use crate::helpers::{TestApp, counter, snapshot, token};

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn killed_pubsub_connection_resubscribes_and_clients_converge() {
    let app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut client = app.connect(&token(&format!("u{i}"))).await;
        client.next_snapshot(T).await.unwrap();
        clients.push(client);
    }
    let mut conn = app.redis.connection().await;
    // Kill the subscription and, in the same transaction, publish a version nobody hears: only the
    // re-read of {sb}:top after resubscribing can deliver it.
    let json = serde_json::to_string(&snapshot(10)).unwrap();
    let (killed, (), receivers): (u64, (), u64) = redis::pipe()
        .atomic()
        .cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .set(keys::TOP, &json)
        .publish(keys::EVENTS_CHANNEL, &json)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(killed, 1, "exactly one Pub/Sub connection per process");
    assert_eq!(receivers, 0, "the publish happened while unsubscribed");
    for client in &mut clients {
        client.until_version(10, T).await;
    }
    // Live again: later publishes reach everyone through the new subscription.
    app.wait_health(|h| h["subscribed"] == true).await;
    let _: () = conn.set("unrelated", 1).await.unwrap();
    assert_eq!(app.publish(&snapshot(11)).await, 1);
    for client in &mut clients {
        assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(11));
    }
}

#[tokio::test]
async fn redis_restart_is_survived() {
    let mut app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let mut client = app.connect(&token("u1")).await;
    client.next_snapshot(T).await.unwrap();
    app.redis.restart(); // loses the data too
    app.wait_health(|h| h["subscribed"] == true).await;
    assert_eq!(app.publish(&snapshot(2)).await, 1);
    assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(2));
}

/// The `redis-server` process id, from `INFO server`.
async fn redis_pid(app: &TestApp) -> u32 {
    let mut conn = app.redis.connection().await;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
        .expect("process_id in INFO server")
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

/// A `SIGSTOP`ped `redis-server`: the TCP connection stays open but nothing answers (a half-open link).
/// Resumed (`SIGCONT`) when dropped, so a failing test does not leave it frozen.
struct Frozen(u32);

impl Frozen {
    fn freeze(pid: u32) -> Self {
        signal(pid, "-STOP");
        Self(pid)
    }

    fn thaw(self) {}
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

#[tokio::test]
async fn a_frozen_redis_is_caught_by_ping_and_healthz_goes_503_until_resubscribed() {
    let app = TestApp::spawn(
        &[
            ("SSE_PUBSUB_PING_SECS", "1"),
            ("SSE_PUBSUB_PING_TIMEOUT_MS", "500"),
            ("SSE_UNHEALTHY_AFTER_SECS", "1"),
            ("SSE_HEARTBEAT_SECS", "1"),
            ("REDIS_CONNECT_TIMEOUT_MS", "500"),
            ("REDIS_RESPONSE_TIMEOUT_MS", "500"),
        ],
        Some(&snapshot(1)),
    )
    .await;
    let mut client = app.connect(&token("u1")).await;
    assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(1));
    let healthy = app
        .wait_health_status(200, T, |h| h["subscribed"] == true)
        .await;
    assert_eq!(healthy["status"], "ok");

    let frozen = Frozen::freeze(redis_pid(&app).await);
    // Ping every 1 s, pong due in 0.5 s, unhealthy 1 s after the unanswered ping: well within 10 s.
    let down = app
        .wait_health_status(503, T, |h| h["subscribed"] == false)
        .await;
    assert_eq!(down["status"], "unavailable");
    assert_eq!(down["version"], 1, "same body shape: {down}");
    assert!(counter(&app.metrics().await, "sse_pubsub_pings_missed_total") >= 1);
    frozen.thaw();

    // Back: resubscribed (re-reading {sb}:top), healthy, and a later snapshot reaches the open stream.
    app.wait_health_status(200, Duration::from_secs(15), |h| h["subscribed"] == true)
        .await;
    assert!(app.publish(&snapshot(2)).await >= 1);
    assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(2));
}

#[tokio::test]
async fn healthz_is_503_after_the_grace_while_redis_is_down_and_200_after_restart() {
    let grace = Duration::from_secs(3);
    let mut app = TestApp::spawn(&[("SSE_UNHEALTHY_AFTER_SECS", "3")], Some(&snapshot(1))).await;
    app.wait_health_status(200, T, |h| h["subscribed"] == true)
        .await;
    app.redis.stop();
    let stopped = tokio::time::Instant::now();
    // Lost at once, but still routed during the grace: a resubscription usually lands within it.
    app.wait_health_status(200, grace, |h| h["subscribed"] == false)
        .await;
    let down = app
        .wait_health_status(503, T, |h| h["subscribed"] == false)
        .await;
    assert!(
        stopped.elapsed() >= grace - Duration::from_millis(200),
        "503 before the grace: {down}"
    );
    app.redis.restart();
    app.wait_health_status(200, Duration::from_secs(15), |h| h["subscribed"] == true)
        .await;
    assert_eq!(app.publish(&snapshot(2)).await, 1);
}
