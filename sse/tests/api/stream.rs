//! The stream itself: snapshot on connect, updates in order, heartbeat, `Last-Event-ID`, shutdown.

use std::time::Duration;

use crate::helpers::{TestApp, snapshot, token};

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn connect_gets_retry_hint_then_the_current_snapshot() {
    let app = TestApp::spawn(&[], Some(&snapshot(3))).await;
    let mut client = app.connect(&token("u1")).await;
    assert_eq!(client.status, 200);
    assert_eq!(client.headers["content-type"], "text/event-stream");
    let hint = client.next_within(T).await.expect("retry hint");
    assert_eq!(hint.retry, Some(2000));
    let first = client.next_within(T).await.expect("snapshot");
    assert_eq!(first.event.as_deref(), Some("leaderboard"));
    assert_eq!(first.version(), Some(3));
    assert_eq!(first.snapshot(), snapshot(3));
}

#[tokio::test]
async fn an_empty_board_is_sent_as_version_zero() {
    let app = TestApp::spawn(&[], None).await;
    let mut client = app.connect(&token("u1")).await;
    let first = client.next_snapshot(T).await.expect("snapshot");
    assert_eq!(first.version(), Some(0));
    assert!(first.snapshot().entries.is_empty());
}

#[tokio::test]
async fn updates_arrive_in_order_and_never_go_back() {
    let app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let mut client = app.connect(&token("u1")).await;
    assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(1));
    for v in 2..=6 {
        assert_eq!(
            app.publish(&snapshot(v)).await,
            1,
            "one subscription per process"
        );
        let got = client.next_snapshot(T).await.expect("update");
        assert_eq!(got.version(), Some(v));
        assert_eq!(got.snapshot().entries[0].score, v * 10);
    }
    // An older version (a late publisher) is ignored; the next newer one comes through.
    app.publish(&snapshot(4)).await;
    app.publish(&snapshot(7)).await;
    assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(7));
}

#[tokio::test]
async fn many_quick_versions_end_at_the_newest_in_increasing_order() {
    let app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let mut client = app.connect(&token("u1")).await;
    client.next_snapshot(T).await.unwrap();
    for v in 2..=200 {
        app.publish(&snapshot(v)).await;
    }
    let seen = client.until_version(200, T).await;
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {seen:?}"
    );
    assert_eq!(*seen.last().unwrap(), 200);
}

#[tokio::test]
async fn heartbeat_comment_is_sent_on_the_configured_interval() {
    let app = TestApp::spawn(&[("SSE_HEARTBEAT_SECS", "1")], Some(&snapshot(1))).await;
    let mut client = app.connect(&token("u1")).await;
    client.next_snapshot(T).await.unwrap();
    let started = tokio::time::Instant::now();
    let beat = client.next_within(T).await.expect("heartbeat");
    assert_eq!(beat.comment.as_deref(), Some("heartbeat"));
    assert!(beat.event.is_none() && beat.data.is_none());
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn reconnect_with_current_last_event_id_gets_no_duplicate() {
    let app = TestApp::spawn(&[("SSE_HEARTBEAT_SECS", "1")], Some(&snapshot(5))).await;
    let resp = app
        .http
        .get(app.events_url())
        .bearer_auth(token("u1"))
        .header("Last-Event-ID", "5")
        .send()
        .await
        .unwrap();
    let mut client = crate::helpers::SseClient::from_response(resp);
    assert!(client.next_within(T).await.unwrap().retry.is_some());
    // Nothing but a heartbeat until a newer version exists.
    let next = client.next_within(T).await.unwrap();
    assert_eq!(next.comment.as_deref(), Some("heartbeat"), "got {next:?}");
    app.publish(&snapshot(6)).await;
    assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(6));
}

#[tokio::test]
async fn reconnect_with_an_older_last_event_id_gets_the_current_snapshot() {
    let app = TestApp::spawn(&[], Some(&snapshot(9))).await;
    let resp = app
        .http
        .get(app.events_url())
        .bearer_auth(token("u1"))
        .header("Last-Event-ID", "4")
        .send()
        .await
        .unwrap();
    let mut client = crate::helpers::SseClient::from_response(resp);
    assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(9));
}

#[tokio::test]
async fn shutdown_closes_open_streams_promptly() {
    let mut app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let mut clients = Vec::new();
    for i in 0..5 {
        let mut client = app.connect(&token(&format!("u{i}"))).await;
        client.next_snapshot(T).await.unwrap();
        clients.push(client);
    }
    let took = app.shutdown().await;
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    for client in &mut clients {
        // The body ends (None) instead of hanging until the heartbeat.
        assert!(client.next_within(T).await.is_none());
    }
}

#[tokio::test]
async fn health_and_metrics_are_served() {
    let app = TestApp::spawn(&[], Some(&snapshot(2))).await;
    let mut client = app.connect(&token("u1")).await;
    client.next_snapshot(T).await.unwrap();
    let health = app.wait_health(|h| h["connections"] == 1).await;
    assert_eq!(health["version"], 2);
    let metrics = app.metrics().await;
    for name in [
        "sse_connections 1",
        "sse_events_sent_total",
        "sse_snapshot_version 2",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_skips_versions_instead_of_queueing_them() {
    let app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let mut client = app.connect(&token("slow")).await;
    client.next_snapshot(T).await.unwrap();
    // ~2 KiB per version × 3,000 versions is far more than the socket buffers hold while we do not read.
    let big = |v: u64| {
        let mut s = snapshot(v);
        s.entries = (1..=10)
            .map(|rank| scoreboard_shared::snapshot::Entry {
                rank,
                user_id: format!("user-{rank}-{}", "x".repeat(150)),
                name: format!("Player {rank}"),
                score: v * 100 - u64::from(rank),
            })
            .collect();
        s
    };
    for v in 2..=3_000 {
        app.publish(&big(v)).await;
    }
    let seen = client.until_version(3_000, Duration::from_secs(20)).await;
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "still in order");
    assert!(
        seen.len() < 2_999,
        "a stalled client must skip versions, got all {}",
        seen.len()
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("sse_versions_skipped_total"), "{metrics}");
}

/// The first request of a connection that opens a stream is written straight to the socket; a stream
/// opened later on a kept-alive connection goes through hyper. Both carry the same events.
#[tokio::test]
async fn a_stream_opened_on_a_reused_connection_is_the_same_stream() {
    let app = TestApp::spawn(&[], Some(&snapshot(2))).await;
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    health.bytes().await.unwrap(); // back to the pool: the next request reuses the connection
    let mut client = app.connect(&token("u1")).await;
    assert_eq!(client.status, 200);
    assert_eq!(client.headers["content-type"], "text/event-stream");
    assert_eq!(client.headers["cache-control"], "no-store");
    assert!(client.next_within(T).await.unwrap().retry.is_some());
    assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(2));
    app.publish(&snapshot(3)).await;
    assert_eq!(client.next_snapshot(T).await.unwrap().version(), Some(3));
}
