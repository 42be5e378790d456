//! The real `scoreboard-sse` binary: configuration errors stop it with the variable's name, it serves
//! `/metrics` only on `METRICS_ADDR`, and SIGTERM ends open streams promptly, then the process exits cleanly.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scoreboard_testkit::{RedisServer, free_port, wait_until};

use crate::helpers::{SECRET, SseClient, snapshot, token};

const BIN: &str = env!("CARGO_BIN_EXE_scoreboard-sse");

#[test]
fn bad_configuration_stops_start_up_naming_the_variable() {
    let out = Command::new(BIN)
        .env_clear()
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("JWT_SECRET", SECRET)
        .env("SSE_HEARTBEAT_SECS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SSE_HEARTBEAT_SECS"), "{stderr}");
    assert!(!stderr.contains(SECRET), "secret echoed: {stderr}");
}

#[test]
fn bad_lifetime_liveness_or_metrics_settings_stop_start_up() {
    for (var, bad) in [
        ("SSE_MAX_STREAM_SECS", "5"),
        ("SSE_MAX_STREAM_SECS", "100000"),
        ("SSE_PUBSUB_PING_SECS", "0"),
        ("SSE_PUBSUB_PING_TIMEOUT_MS", "10"),
        ("SSE_UNHEALTHY_AFTER_SECS", "0"),
        ("METRICS_ADDR", "127.0.0.1:8080"), // BIND_ADDR's port
        ("METRICS_ADDR", "not-an-address"),
    ] {
        let out = Command::new(BIN)
            .env_clear()
            .env("REDIS_URL", "redis://127.0.0.1:1")
            .env("JWT_SECRET", SECRET)
            .env("BIND_ADDR", "127.0.0.1:8080")
            .env(var, bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={bad} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{var}={bad}: {stderr}");
    }
}

/// Kills the child if the test fails before it exits.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn sigterm_closes_streams_promptly_and_exits() {
    scoreboard_shared::tls::install_crypto_provider();
    let redis = RedisServer::start();
    let port = free_port();
    let mut child = Reap(
        Command::new(BIN)
            .env("REDIS_URL", redis.url())
            .env("JWT_SECRET", SECRET)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(Duration::from_secs(15), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "sse binary did not listen"
    );
    let mut conn = redis.connection().await;
    let _: () = redis::AsyncCommands::set(
        &mut conn,
        scoreboard_shared::redis::keys::TOP,
        serde_json::to_string(&snapshot(2)).unwrap(),
    )
    .await
    .unwrap();
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/scores/events"))
        .bearer_auth(token("u1"))
        .send()
        .await
        .unwrap();
    let mut client = SseClient::from_response(resp);
    client.next_snapshot(Duration::from_secs(5)).await.unwrap();

    let sent = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(
        client.next_within(Duration::from_secs(5)).await.is_none(),
        "stream ends on SIGTERM"
    );
    let closed_after = sent.elapsed();
    assert!(
        closed_after < Duration::from_secs(2),
        "stream closed after {closed_after:?}"
    );
    let exited = wait_until(Duration::from_secs(5), || {
        matches!(child.0.try_wait(), Ok(Some(_)))
    });
    assert!(exited, "process exits after SIGTERM");
    assert!(child.0.wait().unwrap().success(), "clean exit status");
}

#[tokio::test]
async fn the_binary_serves_metrics_on_metrics_addr_and_not_on_bind_addr() {
    scoreboard_shared::tls::install_crypto_provider();
    let redis = RedisServer::start();
    let (port, metrics_port) = (free_port(), free_port());
    let _child = Reap(
        Command::new(BIN)
            .env("REDIS_URL", redis.url())
            .env("JWT_SECRET", SECRET)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for p in [port, metrics_port] {
        assert!(
            wait_until(Duration::from_secs(15), || {
                std::net::TcpStream::connect(("127.0.0.1", p)).is_ok()
            }),
            "sse binary did not listen on {p}"
        );
    }
    let http = reqwest::Client::new();
    let public = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let private = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    let text = private.text().await.unwrap();
    assert!(text.contains("sse_pubsub_subscribed"), "{text}");
    let health = http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert!(matches!(health.status().as_u16(), 200 | 503));
}
