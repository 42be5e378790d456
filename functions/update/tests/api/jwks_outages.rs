//! JWKS outages against a local endpoint: an endpoint down at a cold start is retried within seconds, a bad
//! answer never wipes good keys, and concurrent requests share one fetch.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures::future::join_all;
use scoreboard_testkit::RedisServer;

use crate::helpers::*;
use crate::jwks_server::{JwksServer, jwk, poll};

const BODY: &str = r#"{"scoreIncrement":1}"#;
/// Far below the 60 s `min_refresh` default that used to govern retries after a failed fetch.
const RECOVERY_LIMIT: Duration = Duration::from_secs(10);

fn harness(jwks_url: &str, extra: &[(&str, &str)]) -> UpdateHarness {
    let redis = RedisServer::start();
    UpdateHarness {
        service: update_service(&redis, &bound("JWT_JWKS_URL", jwks_url), extra),
        redis: redis.into(),
    }
}

#[tokio::test]
async fn an_endpoint_down_at_the_first_request_is_retried_within_seconds_not_min_refresh() {
    let port = scoreboard_testkit::free_port();
    // Default JWT_JWKS_MIN_REFRESH_SECS (60): a failed fetch must not wait for it.
    let h = harness(&JwksServer::url_for(port), &[]);
    let token = rs_token("rsa1", Some("rsa1"), "cold");

    let first = h.send(post_update(&token, BODY)).await;
    assert_eq!(first.status, 503, "no keys yet: {first:?}");
    assert!(first.header("retry-after").is_some());

    let jwks = JwksServer::start_on(port, vec![jwk("rsa1")]).await;
    let came_up = Instant::now();
    let (h, token) = (&h, &token);
    let accepted = poll(RECOVERY_LIMIT, move || async move {
        let answer = h.send(post_update(token, BODY)).await;
        (answer.status == 202).then_some(answer)
    })
    .await;

    assert!(
        accepted.is_some(),
        "still refused {RECOVERY_LIMIT:?} after the JWKS endpoint came up"
    );
    let waited = came_up.elapsed();
    assert!(
        waited < Duration::from_secs(6),
        "recovered after {waited:?}"
    );
    assert!(jwks.fetches() >= 1);
    assert_eq!(h.stream_len().await, 1);
}

#[tokio::test]
async fn an_empty_or_unusable_answer_keeps_the_keys_already_held() {
    let jwks = JwksServer::start(vec![jwk("rsa1")]).await;
    let h = &harness(&jwks.url, &[("JWT_JWKS_MIN_REFRESH_SECS", "1")]);
    let jwks = &jwks;
    assert_eq!(
        h.send(post_update(&rs_token("rsa1", Some("rsa1"), "k0"), BODY))
            .await
            .status,
        202
    );
    assert_eq!(jwks.fetches(), 1);

    let bad_answers = [
        (StatusCode::OK, r#"{"keys":[]}"#),
        (
            StatusCode::OK,
            r#"{"keys":[{"kty":"oct","kid":"rsa1","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}"#,
        ),
        (StatusCode::OK, "<html>maintenance</html>"),
        (StatusCode::INTERNAL_SERVER_ERROR, r#"{"keys":[]}"#),
    ];
    for (round, (status, body)) in bad_answers.into_iter().enumerate() {
        jwks.answer(status, body);
        // An unknown kid makes the cache refetch once a fetch is due; wait until it has seen this answer.
        let seen = jwks.fetches() + 1;
        let fetched = poll(RECOVERY_LIMIT, move || async move {
            let probe = rs_token("rsa1", Some("rsa-unknown"), "probe");
            let answer = h.send(post_update(&probe, BODY)).await;
            assert_eq!(
                answer.status, 401,
                "unknown kid while keys are held: {answer:?}"
            );
            (jwks.fetches() >= seen).then_some(())
        })
        .await;
        assert!(
            fetched.is_some(),
            "{body}: no refetch within {RECOVERY_LIMIT:?}"
        );

        let held = h
            .send(post_update(
                &rs_token("rsa1", Some("rsa1"), &format!("k{}", round + 1)),
                BODY,
            ))
            .await;
        assert_eq!(
            held.status, 202,
            "{status} {body} wiped the held key: {held:?}"
        );
    }

    // A good answer again: the new key set replaces the old one.
    jwks.publish(vec![jwk("rsa2")]);
    let rotated = poll(RECOVERY_LIMIT, move || async move {
        let answer = h
            .send(post_update(
                &rs_token("rsa2", Some("rsa2"), "rotated"),
                BODY,
            ))
            .await;
        (answer.status == 202).then_some(())
    })
    .await;
    assert!(rotated.is_some(), "rsa2 accepted once published");
    let retired = h
        .send(post_update(
            &rs_token("rsa1", Some("rsa1"), "retired"),
            BODY,
        ))
        .await;
    assert_eq!(retired.status, 401, "a key the provider dropped is dropped");
}

#[tokio::test]
async fn twenty_concurrent_requests_with_an_unknown_kid_cause_one_fetch() {
    let jwks = JwksServer::start(vec![jwk("rsa1"), jwk("rsa2")]).await;
    // Slow answers keep every request waiting while the one fetch is in flight.
    jwks.delay(Duration::from_millis(300));
    let h = &harness(&jwks.url, &[]);

    // One user: the default burst (20) admits all twenty; RSA signing is slow in debug builds.
    let token = &rs_token("rsa2", Some("rsa2"), "crowd");
    let answers = join_all((0..20).map(|_| h.send(post_update(token, BODY)))).await;
    assert!(answers.iter().all(|a| a.status == 202), "{answers:?}");
    assert_eq!(jwks.fetches(), 1, "one fetch for twenty requests");

    // A kid the provider does not publish: within min_refresh, no fetch at all.
    let token = &rs_token("rsa1", Some("rsa9"), "crowd");
    let answers = join_all((0..20).map(|_| h.send(post_update(token, BODY)))).await;
    assert!(answers.iter().all(|a| a.status == 401), "{answers:?}");
    assert_eq!(jwks.fetches(), 1);
    assert_eq!(h.stream_len().await, 20);
}

#[tokio::test]
async fn twenty_concurrent_requests_against_a_failing_endpoint_cause_one_fetch() {
    let jwks = JwksServer::start(vec![]).await;
    jwks.answer(StatusCode::SERVICE_UNAVAILABLE, "busy");
    jwks.delay(Duration::from_millis(300));
    let h = &harness(&jwks.url, &[]);

    let token = &rs_token("rsa1", Some("rsa1"), "crowd");
    let answers = join_all((0..20).map(|_| h.send(post_update(token, BODY)))).await;

    assert!(answers.iter().all(|a| a.status == 503), "{answers:?}");
    assert_eq!(
        jwks.fetches(),
        1,
        "waiters see the failure, not a fetch each"
    );
    assert_eq!(h.stream_len().await, 0);
}
