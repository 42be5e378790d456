//! Dev mode: off by default (no token endpoint), explicit `DEV_MODE=true` mints tokens the stream accepts.

use std::time::Duration;

use crate::helpers::{SseClient, TestApp, snapshot};

#[tokio::test]
async fn dev_routes_do_not_exist_by_default() {
    let app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let resp = app
        .http
        .post(format!("{}/dev/token", app.base))
        .json(&serde_json::json!({"name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let config: serde_json::Value = app
        .http
        .get(format!("{}/demo/config.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["devMode"], false);
}

#[tokio::test]
async fn dev_token_opens_a_stream_and_the_page_is_served() {
    let app = TestApp::spawn(&[("DEV_MODE", "true")], Some(&snapshot(3))).await;
    let minted: serde_json::Value = app
        .http
        .post(format!("{}/dev/token", app.base))
        .json(&serde_json::json!({"name": "Grace Hopper"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(minted["userId"], "demo-grace-hopper");
    let token = minted["token"].as_str().unwrap();
    let resp = app
        .http
        .get(format!("{}?access_token={token}", app.events_url()))
        .send()
        .await
        .unwrap();
    let mut client = SseClient::from_response(resp);
    let first = client.next_snapshot(Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.version(), Some(3));
    let page = app.http.get(&app.base).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
}
