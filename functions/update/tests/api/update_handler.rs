//! `POST /api/v1/scores/update`: the happy path, every validation rejection, routing, scope, TLS and Redis loss.

use scoreboard_testkit::RedisServer;

use crate::helpers::*;
use scoreboard_testkit::on_standalone_and_cluster;

on_standalone_and_cluster!(accepted_update_appends_exactly_one_entry_with_the_contract_fields);

async fn accepted_update_appends_exactly_one_entry_with_the_contract_fields(target: Target) {
    let h = UpdateHarness::on(target, &[]);
    let request = event(
        "POST",
        "/api/v1/scores/update",
        &[
            ("authorization", &format!("Bearer {}", hs_token("alice"))),
            ("content-type", "application/json"),
            ("x-request-id", "req-123"),
        ],
        Some(r#"{"scoreIncrement": 10}"#),
    );

    let answer = h.send(request).await;

    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(answer.json["status"], "accepted");
    let event_id = answer.json["eventId"].as_str().unwrap().to_owned();
    assert_eq!(answer.header("x-request-id"), Some("req-123"));
    let entries = stream_entries(&h.redis).await;
    assert_eq!(entries.len(), 1);
    let (id, fields) = &entries[0];
    assert_eq!(id, &event_id);
    assert_eq!(fields["v"], "1");
    assert_eq!(fields["user"], "alice");
    assert_eq!(fields["name"], "Player alice");
    assert_eq!(fields["inc"], "10");
    assert_eq!(fields["req"], "req-123");
    let ts: u64 = fields["ts"].parse().unwrap();
    assert!(
        ts.abs_diff(now() * 1000) < 60_000,
        "ts {ts} is server time in ms"
    );
    assert_eq!(fields.len(), 6, "no other fields: {fields:?}");
}

#[tokio::test]
async fn the_user_comes_from_the_token_and_a_body_cannot_name_another() {
    let h = UpdateHarness::start(&[]);
    let answer = h
        .send(post_update(
            &hs_token("mallory"),
            r#"{"scoreIncrement":5,"userId":"alice"}"#,
        ))
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(h.stream_len().await, 0);
}

#[tokio::test]
async fn display_name_comes_from_preferred_username_and_is_bounded() {
    let h = UpdateHarness::start(&[]);
    let long = format!("  {}  ", "Z".repeat(200));
    let token = hs_token_with(
        &serde_json::json!({"sub": "u9", "preferred_username": long, "exp": now() + 60}),
    );
    assert_eq!(
        h.send(post_update(&token, r#"{"scoreIncrement":1}"#))
            .await
            .status,
        202
    );
    let entries = stream_entries(&h.redis).await;
    assert_eq!(entries[0].1["name"], "Z".repeat(64));
}

#[tokio::test]
async fn every_invalid_body_gets_its_4xx_problem_and_enqueues_nothing() {
    let h = UpdateHarness::start(&[]);
    let token = hs_token("bob");
    let oversized = format!(r#"{{"scoreIncrement":1,"pad":"{}"}}"#, "x".repeat(1100));
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        (
            "zero",
            Some("application/json"),
            r#"{"scoreIncrement":0}"#.into(),
            400,
            "/problems/validation",
        ),
        (
            "negative",
            Some("application/json"),
            r#"{"scoreIncrement":-10}"#.into(),
            400,
            "/problems/validation",
        ),
        (
            "above max",
            Some("application/json"),
            r#"{"scoreIncrement":101}"#.into(),
            400,
            "/problems/validation",
        ),
        (
            "float",
            Some("application/json"),
            r#"{"scoreIncrement":1.5}"#.into(),
            400,
            "/problems/validation",
        ),
        (
            "string",
            Some("application/json"),
            r#"{"scoreIncrement":"10"}"#.into(),
            400,
            "/problems/validation",
        ),
        (
            "null",
            Some("application/json"),
            r#"{"scoreIncrement":null}"#.into(),
            400,
            "/problems/validation",
        ),
        (
            "missing",
            Some("application/json"),
            r#"{}"#.into(),
            400,
            "/problems/validation",
        ),
        (
            "extra field",
            Some("application/json"),
            r#"{"scoreIncrement":1,"x":1}"#.into(),
            400,
            "/problems/validation",
        ),
        (
            "not json",
            Some("application/json"),
            "scoreIncrement=10".into(),
            400,
            "/problems/validation",
        ),
        (
            "empty",
            Some("application/json"),
            String::new(),
            400,
            "/problems/validation",
        ),
        (
            "text/plain",
            Some("text/plain"),
            r#"{"scoreIncrement":1}"#.into(),
            415,
            "/problems/unsupported-media-type",
        ),
        (
            "no content type",
            None,
            r#"{"scoreIncrement":1}"#.into(),
            415,
            "/problems/unsupported-media-type",
        ),
        (
            "over 1 KiB",
            Some("application/json"),
            oversized,
            413,
            "/problems/payload-too-large",
        ),
    ];
    for (name, content_type, body, status, kind) in cases {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        let answer = h
            .send(event(
                "POST",
                "/api/v1/scores/update",
                &headers,
                Some(&body),
            ))
            .await;
        assert_eq!(answer.status, status, "{name}: {answer:?}");
        assert_eq!(answer.problem_type(), kind, "{name}");
        assert_eq!(answer.json["status"], status, "{name}");
        assert!(
            answer.json["detail"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{name}"
        );
    }
    assert_eq!(h.stream_len().await, 0);
}

#[tokio::test]
async fn max_increment_is_configurable() {
    let h = UpdateHarness::start(&[("MAX_SCORE_INCREMENT", "1000")]);
    assert_eq!(
        h.send(post_update(&hs_token("c"), r#"{"scoreIncrement":1000}"#))
            .await
            .status,
        202
    );
    assert_eq!(
        h.send(post_update(&hs_token("c"), r#"{"scoreIncrement":1001}"#))
            .await
            .status,
        400
    );
    assert_eq!(h.stream_len().await, 1);
}

#[tokio::test]
async fn other_paths_are_404_and_other_methods_405_with_allow() {
    let h = UpdateHarness::start(&[]);
    let auth = format!("Bearer {}", hs_token("d"));
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let body = Some(r#"{"scoreIncrement":1}"#);

    let not_found = h
        .send(event("POST", "/api/v1/scores/other", &headers, body))
        .await;
    assert_eq!(
        (not_found.status, not_found.problem_type()),
        (404, "/problems/not-found")
    );
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let answer = h
            .send(event(method, "/api/v1/scores/update", &headers, body))
            .await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.header("allow"), Some("POST"));
    }
    assert_eq!(h.stream_len().await, 0);
}

#[tokio::test]
async fn a_required_scope_is_enforced_with_403() {
    let h = UpdateHarness::start(&[("UPDATE_REQUIRED_SCOPE", "scores:write")]);
    let without = hs_token("e");
    let mut with_claims = claims("e");
    with_claims["scope"] = "profile scores:write".into();
    let with = hs_token_with(&with_claims);

    let refused = h
        .send(post_update(&without, r#"{"scoreIncrement":1}"#))
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    assert_eq!(h.stream_len().await, 0);
    assert_eq!(
        h.send(post_update(&with, r#"{"scoreIncrement":1}"#))
            .await
            .status,
        202
    );
    assert_eq!(h.stream_len().await, 1);
}

#[tokio::test]
async fn redis_down_is_503_problem_and_recovers_when_it_returns() {
    let mut h = UpdateHarness::start(&[]);
    let token = hs_token("f");
    assert_eq!(
        h.send(post_update(&token, r#"{"scoreIncrement":1}"#))
            .await
            .status,
        202
    );

    h.redis.standalone_mut().stop();
    let answer = h.send(post_update(&token, r#"{"scoreIncrement":1}"#)).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.problem_type(), "/problems/unavailable");
    assert!(answer.header("retry-after").is_some());

    h.redis.standalone_mut().restart();
    let mut status = 0;
    for _ in 0..50 {
        status = h
            .send(post_update(&token, r#"{"scoreIncrement":1}"#))
            .await
            .status;
        if status == 202 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 202, "the client reconnects once Redis is back");
}

#[tokio::test]
async fn rediss_urls_connect_over_tls() {
    let path = |name: &str| {
        scoreboard_testkit::fixture_path(name)
            .to_string_lossy()
            .into_owned()
    };
    let (cert, key, ca) = (
        path("redis-tls.crt"),
        path("redis-tls.key"),
        path("test-ca.crt"),
    );
    let tls_port = scoreboard_testkit::free_port().to_string();
    let redis = RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "no",
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let service = update::UpdateService::from_env(&scoreboard_shared::config::Env::from_pairs([
        ("REDIS_URL", url.as_str()),
        ("REDIS_CA_CERT_FILE", ca.as_str()),
        ("JWT_SECRET", SECRET),
    ]))
    .unwrap();

    let answer = answer(
        service
            .handle(post_update(&hs_token("tls"), r#"{"scoreIncrement":3}"#))
            .await,
    );

    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(
        stream_entries(&redis).await.len(),
        1,
        "written through the TLS port"
    );
}

#[tokio::test]
async fn rediss_seeds_reach_every_master_of_a_tls_cluster() {
    let redis = TestRedis::Cluster(scoreboard_testkit::RedisCluster::start_tls(3));
    let TestRedis::Cluster(cluster) = &redis else {
        unreachable!()
    };
    let seeds = cluster.tls_url();
    let ca = scoreboard_testkit::fixture_path(scoreboard_testkit::RedisCluster::TLS_CA)
        .to_string_lossy()
        .into_owned();
    let service = update::UpdateService::from_env(&scoreboard_shared::config::Env::from_pairs([
        ("REDIS_URL", seeds.as_str()),
        ("REDIS_CLUSTER", "true"),
        ("REDIS_CA_CERT_FILE", ca.as_str()),
        ("JWT_SECRET", SECRET),
    ]))
    .unwrap();
    let users = redis.spread_users(
        scoreboard_shared::partition::Partitioner::new(PARTITIONS),
        "tls-",
        2,
    );

    for user in &users {
        let answer = answer(
            service
                .handle(post_update(&hs_token(user), r#"{"scoreIncrement":1}"#))
                .await,
        );
        assert_eq!(answer.status, 202, "{user}: {answer:?}");
    }

    assert_eq!(
        queued(&redis).await,
        users.len(),
        "every update queued, on every master, through the TLS ports"
    );
}
