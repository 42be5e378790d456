//! `/metrics` is private: only the metrics listener (`METRICS_ADDR`) serves it; the public listener, which the
//! load balancer routes, answers `404` like any unknown path.

use crate::helpers::{TestApp, snapshot, token};

#[tokio::test]
async fn metrics_are_served_on_the_metrics_listener_only() {
    let app = TestApp::spawn(&[], Some(&snapshot(3))).await;
    let mut client = app.connect(&token("u1")).await;
    client
        .next_snapshot(std::time::Duration::from_secs(5))
        .await
        .unwrap();

    let public = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404, "the public listener hides /metrics");
    assert_eq!(public.headers()["content-type"], "application/problem+json");
    assert!(!public.text().await.unwrap().contains("sse_"));

    let private = app
        .http
        .get(format!("{}/metrics", app.metrics_base))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    assert!(
        private.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = private.text().await.unwrap();
    for name in [
        "sse_connections 1",
        "sse_events_sent_total",
        "sse_snapshot_version 3",
        "sse_pubsub_subscribed 1",
        "sse_bytes_buffered 0",
        "sse_streams_write_blocked 0",
        "sse_resident_memory_bytes ",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }

    // The metrics listener serves nothing else.
    for path in ["/healthz", "/api/v1/scores/events", "/"] {
        let resp = app
            .http
            .get(format!("{}{path}", app.metrics_base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path} on the metrics listener");
    }
}
