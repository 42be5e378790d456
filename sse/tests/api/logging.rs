//! Request logs record the path, never the query: `?access_token=` must not reach the logs.

use std::time::Duration;

use crate::helpers::{CapturedLogs, SseClient, TestApp, snapshot, token};

#[tokio::test]
async fn query_tokens_never_reach_the_request_logs() {
    let logs = CapturedLogs::install();
    let app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let secret_token = token("u1");
    let resp = app
        .http
        .get(format!("{}?access_token={secret_token}", app.events_url()))
        .send()
        .await
        .unwrap();
    let mut client = SseClient::from_response(resp);
    client.next_snapshot(Duration::from_secs(5)).await.unwrap();
    let bad = app
        .http
        .get(format!(
            "{}?access_token=not-a-jwt-but-secret",
            app.events_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    drop(client);
    let text = logs.text();
    assert!(
        text.contains("/api/v1/scores/events"),
        "requests are logged:\n{text}"
    );
    assert!(!text.contains(&secret_token), "token leaked into logs");
    assert!(
        !text.contains("not-a-jwt-but-secret"),
        "query leaked into logs"
    );
    assert!(!text.contains("access_token"), "query leaked into logs");
}
