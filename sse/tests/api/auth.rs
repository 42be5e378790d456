//! Authentication of the stream: header or `?access_token=`, problem+json refusals with a challenge.

use crate::helpers::{SECRET, TestApp, snapshot, token, token_with};

async fn problem(resp: reqwest::Response) -> (u16, String, serde_json::Value) {
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    (status, challenge, resp.json().await.unwrap())
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_challenge() {
    let app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let resp = app.http.get(app.events_url()).send().await.unwrap();
    let (status, challenge, body) = problem(resp).await;
    assert_eq!(status, 401);
    assert_eq!(challenge, r#"Bearer realm="scoreboard""#);
    assert_eq!(body["status"], 401);
}

#[tokio::test]
async fn bad_signature_and_expired_tokens_are_401_invalid_token() {
    let app = TestApp::spawn(&[], Some(&snapshot(1))).await;
    let wrong_key = token_with("u1", "another-secret-0123456789abcdef0123", 3600);
    let expired = token_with("u1", SECRET, -3600);
    for bad in [wrong_key, expired, "not.a.jwt".to_owned()] {
        let resp = app
            .http
            .get(app.events_url())
            .bearer_auth(&bad)
            .send()
            .await
            .unwrap();
        let (status, challenge, _) = problem(resp).await;
        assert_eq!(status, 401);
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
    }
    let resp = app
        .http
        .get(format!("{}?access_token=garbage", app.events_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn query_token_is_accepted_for_event_source() {
    let app = TestApp::spawn(&[], Some(&snapshot(4))).await;
    let resp = app
        .http
        .get(format!("{}?access_token={}", app.events_url(), token("u1")))
        .send()
        .await
        .unwrap();
    let mut client = crate::helpers::SseClient::from_response(resp);
    assert_eq!(client.status, 200);
    let first = client
        .next_snapshot(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(first.version(), Some(4));
}
