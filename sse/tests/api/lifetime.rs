//! A stream ends when its token does, or at `SSE_MAX_STREAM_SECS`, whichever comes first, with a final SSE
//! comment saying why; the deadline is checked on the shared heartbeat tick, so the close comes within one
//! heartbeat interval of it.

use std::time::Duration;

use tokio::time::Instant;

use crate::helpers::{SECRET, SseClient, TestApp, snapshot, token, token_with};

/// Reads until the comment `expected` (bounded: `limit` after `connected`), then requires the body to end;
/// returns how long after `connected` the comment came. Panics on anything but snapshots and heartbeats
/// before it.
async fn until_closing_comment(
    client: &mut SseClient,
    expected: &str,
    connected: Instant,
    limit: Duration,
) -> Duration {
    let deadline = connected + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = client
            .next_within(left)
            .await
            .unwrap_or_else(|| panic!("no `: {expected}` within {limit:?}"));
        match message.comment.as_deref() {
            Some(comment) if comment == expected => break,
            Some("heartbeat") | None => {}
            Some(other) => panic!("unexpected comment {other:?} before `: {expected}`"),
        }
    }
    let took = connected.elapsed();
    assert!(
        client.next_within(Duration::from_secs(2)).await.is_none(),
        "the body ends right after `: {expected}`"
    );
    took
}

#[tokio::test]
async fn a_stream_ends_with_a_comment_when_its_token_expires() {
    let app = TestApp::spawn(&[("SSE_HEARTBEAT_SECS", "1")], Some(&snapshot(1))).await;
    // `exp` is whole seconds: 3 s from now leaves between 2 and 3 s.
    let short = token_with("u1", SECRET, 3);
    let connected = Instant::now();
    let mut by_header = app.connect(&short).await;
    let resp = app
        .http
        .get(format!("{}?access_token={short}", app.events_url()))
        .send()
        .await
        .unwrap();
    let mut by_query = SseClient::from_response(resp);
    let mut long = app.connect(&token("u2")).await;
    for client in [&mut by_header, &mut by_query, &mut long] {
        assert_eq!(client.status, 200);
        assert_eq!(
            client
                .next_snapshot(Duration::from_secs(5))
                .await
                .unwrap()
                .version(),
            Some(1)
        );
    }
    // Due within 3 s, closed on the next 1 s tick: bounded well below 8 s.
    for client in [&mut by_header, &mut by_query] {
        let took =
            until_closing_comment(client, "token expired", connected, Duration::from_secs(8)).await;
        assert!(
            took >= Duration::from_millis(1_500),
            "closed early: {took:?}"
        );
    }
    // A stream whose token is still valid goes on.
    assert_eq!(app.publish(&snapshot(2)).await, 1);
    assert_eq!(
        long.next_snapshot(Duration::from_secs(5))
            .await
            .unwrap()
            .version(),
        Some(2)
    );
    app.wait_health(|h| h["connections"] == 1).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"sse_streams_closed_total{reason="token_expired"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_stream_ends_at_the_lifetime_cap_before_a_longer_lived_token() {
    let app = TestApp::spawn(
        &[("SSE_HEARTBEAT_SECS", "1"), ("SSE_MAX_STREAM_SECS", "10")],
        Some(&snapshot(1)),
    )
    .await;
    let connected = Instant::now();
    let mut client = app.connect(&token("u1")).await; // valid for an hour
    client.next_snapshot(Duration::from_secs(5)).await.unwrap();
    let took = until_closing_comment(
        &mut client,
        "stream lifetime reached",
        connected,
        Duration::from_secs(15),
    )
    .await;
    assert!(
        took >= Duration::from_millis(9_500),
        "closed early: {took:?}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"sse_streams_closed_total{reason="max_lifetime"} 1"#),
        "{metrics}"
    );
}
