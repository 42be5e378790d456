//! Request logs record the path, never the query: `?access_token=` must not reach the logs.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::{SseClient, TestApp, snapshot, token};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn query_tokens_never_reach_the_request_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();
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
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
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
