//! Connection caps: per user → `429`, per process → `503`, both problem+json; slots come back on disconnect.

use std::time::Duration;

use crate::helpers::{TestApp, snapshot, token};

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn per_user_cap_answers_429_problem() {
    let app = TestApp::spawn(&[("SSE_MAX_CONNECTIONS_PER_USER", "2")], Some(&snapshot(1))).await;
    let mut a = app.connect(&token("alice")).await;
    let mut b = app.connect(&token("alice")).await;
    a.next_snapshot(T).await.unwrap();
    b.next_snapshot(T).await.unwrap();
    let third = app.connect(&token("alice")).await;
    assert_eq!(third.status, 429);
    assert_eq!(third.headers["content-type"], "application/problem+json");
    // Another user is not affected.
    assert_eq!(app.connect(&token("bob")).await.status, 200);
}

#[tokio::test]
async fn process_cap_answers_503_and_frees_the_slot_on_disconnect() {
    let app = TestApp::spawn(
        &[("SSE_MAX_CONNECTIONS", "3"), ("SSE_HEARTBEAT_SECS", "1")],
        Some(&snapshot(1)),
    )
    .await;
    let mut held = Vec::new();
    for user in ["a", "b", "c"] {
        let mut client = app.connect(&token(user)).await;
        client.next_snapshot(T).await.unwrap();
        held.push(client);
    }
    let refused = app.connect(&token("d")).await;
    assert_eq!(refused.status, 503);
    assert!(refused.headers.contains_key("retry-after"));
    drop(held.pop());
    app.wait_health(|h| h["connections"] == 2).await;
    assert_eq!(app.connect(&token("d")).await.status, 200);
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = TestApp::spawn(
        &[("CORS_ALLOWED_ORIGINS", "https://app.example.com")],
        Some(&snapshot(1)),
    )
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.events_url())
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header(
                "Access-Control-Request-Headers",
                "authorization,last-event-id",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}
