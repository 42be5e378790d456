//! The JWT rejection table: every way a token can be wrong gets `401` + `WWW-Authenticate` and enqueues
//! nothing; key confusion, issuer/audience, PEM keys and JWKS rotation. (Public-key configurations are
//! bound to an issuer and audience, as they must be to start; `jwt_binding` tests that rule.)
//! (Over 400 lines on purpose: the whole rejection table reads as one spec.)

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use scoreboard_testkit::RedisServer;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::jwks_server::{JwksServer, jwk};

const BODY: &str = r#"{"scoreIncrement":1}"#;

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn unsigned(alg: &str) -> String {
    format!(
        "{}.{}.",
        b64(&json!({"alg": alg, "typ": "JWT"})),
        b64(&claims("eve"))
    )
}

async fn assert_rejected(h: &UpdateHarness, name: &str, authorization: Option<String>) {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(value) = authorization.as_deref() {
        headers.push(("authorization", value));
    }
    let answer = h
        .send(event("POST", "/api/v1/scores/update", &headers, Some(BODY)))
        .await;
    assert_eq!(answer.status, 401, "{name}: {answer:?}");
    assert_eq!(answer.problem_type(), "/problems/unauthorized", "{name}");
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"scoreboard\""),
        "{name}: {challenge}"
    );
    if authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer"))
    {
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{name}: {challenge}"
        );
    }
}

#[tokio::test]
async fn every_bad_credential_is_401_and_enqueues_nothing() {
    let h = UpdateHarness::start(&[]);
    let secret = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let other_secret = EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!").unwrap();
    let with = |patch: Value| {
        let mut c = claims("eve");
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let valid = hs_token("eve");
    let mut parts: Vec<&str> = valid.split('.').collect();
    let forged_payload = b64(&with(json!({"sub": "admin"})));
    parts[1] = &forged_payload;
    let tampered = parts.join(".");

    let bearer = |t: &str| Some(format!("Bearer {t}"));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("basic scheme", Some("Basic ZXZlOnB3".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("scheme only", Some("Bearer".into())),
        ("malformed", bearer("not-a-jwt")),
        ("two segments", bearer("abc.def")),
        ("garbage segments", bearer("a.b.c")),
        ("alg none", bearer(&unsigned("none"))),
        ("alg None", bearer(&unsigned("None"))),
        ("alg NONE", bearer(&unsigned("NONE"))),
        ("alg nOnE", bearer(&unsigned("nOnE"))),
        (
            "alg none with signature",
            bearer(&format!("{}sig", unsigned("none"))),
        ),
        (
            "other hmac alg",
            bearer(&sign(Algorithm::HS512, &secret, None, &claims("eve"))),
        ),
        (
            "rsa token to hmac config",
            bearer(&sign(
                Algorithm::RS256,
                &rsa_key("rsa1"),
                None,
                &claims("eve"),
            )),
        ),
        (
            "bad signature",
            bearer(&sign(Algorithm::HS256, &other_secret, None, &claims("eve"))),
        ),
        ("tampered payload", bearer(&tampered)),
        (
            "expired",
            bearer(&hs_token_with(&with(json!({"exp": now() - 120})))),
        ),
        (
            "not yet valid",
            bearer(&hs_token_with(&with(json!({"nbf": now() + 600})))),
        ),
        (
            "no exp",
            bearer(&hs_token_with(&with(json!({"exp": null})))),
        ),
        (
            "no sub",
            bearer(&hs_token_with(&with(json!({"sub": null})))),
        ),
        (
            "empty sub",
            bearer(&hs_token_with(&with(json!({"sub": ""})))),
        ),
        (
            "numeric sub",
            bearer(&hs_token_with(&with(json!({"sub": 42})))),
        ),
        (
            "over 8 KiB",
            bearer(&hs_token_with(&with(json!({"pad": "x".repeat(9000)})))),
        ),
    ];
    for (name, authorization) in cases {
        assert_rejected(&h, name, authorization).await;
    }
    assert_eq!(h.stream_len().await, 0);
}

#[tokio::test]
async fn a_token_just_past_exp_is_accepted_within_the_leeway() {
    let h = UpdateHarness::start(&[("JWT_LEEWAY_SECS", "30")]);
    let mut c = claims("late");
    c["exp"] = (now() - 5).into();
    assert_eq!(
        h.send(post_update(&hs_token_with(&c), BODY)).await.status,
        202
    );
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let h = UpdateHarness::start(&[
        ("JWT_ISSUER", "https://id.example.com"),
        ("JWT_AUDIENCE", "scoreboard"),
    ]);
    let token = |iss: Option<&str>, aud: Option<&str>| {
        let mut c = claims("ivy");
        if let Some(iss) = iss {
            c["iss"] = iss.into();
        }
        if let Some(aud) = aud {
            c["aud"] = aud.into();
        }
        Some(format!("Bearer {}", hs_token_with(&c)))
    };
    assert_rejected(
        &h,
        "wrong issuer",
        token(Some("https://evil.example.com"), Some("scoreboard")),
    )
    .await;
    assert_rejected(&h, "missing issuer", token(None, Some("scoreboard"))).await;
    assert_rejected(
        &h,
        "wrong audience",
        token(Some("https://id.example.com"), Some("other")),
    )
    .await;
    assert_rejected(
        &h,
        "missing audience",
        token(Some("https://id.example.com"), None),
    )
    .await;
    assert_eq!(h.stream_len().await, 0);

    let ok = token(Some("https://id.example.com"), Some("scoreboard")).unwrap();
    let answer = h
        .send(event(
            "POST",
            "/api/v1/scores/update",
            &[("authorization", &ok), ("content-type", "application/json")],
            Some(BODY),
        ))
        .await;
    assert_eq!(answer.status, 202);
}

#[tokio::test]
async fn rsa_public_key_config_refuses_hmac_tokens_signed_with_the_key_text() {
    let redis = RedisServer::start();
    let pem = fixture("rsa1.pub.pem");
    let h = UpdateHarness {
        service: update_service(&redis, &bound("JWT_PUBLIC_KEY", &pem), &[]),
        redis: redis.into(),
    };
    // Key confusion: the public key text used as an HMAC secret.
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(pem.as_bytes()).unwrap(),
        None,
        &bound_claims("eve"),
    );
    assert_rejected(
        &h,
        "hmac with public key as secret",
        Some(format!("Bearer {confused}")),
    )
    .await;
    let other_key = rs_token("rsa2", None, "eve");
    assert_rejected(
        &h,
        "signed by another rsa key",
        Some(format!("Bearer {other_key}")),
    )
    .await;
    assert_eq!(h.stream_len().await, 0);

    let good = rs_token("rsa1", None, "eve");
    assert_eq!(h.send(post_update(&good, BODY)).await.status, 202);
}

#[tokio::test]
async fn ec_public_key_config_accepts_es256() {
    let redis = RedisServer::start();
    let h = UpdateHarness {
        service: update_service(
            &redis,
            &bound("JWT_PUBLIC_KEY", &fixture("ec.pub.pem")),
            &[],
        ),
        redis: redis.into(),
    };
    let key = EncodingKey::from_ec_pem(fixture("ec.key.pem").as_bytes()).unwrap();
    assert_eq!(
        h.send(post_update(
            &sign(Algorithm::ES256, &key, None, &bound_claims("ec")),
            BODY
        ))
        .await
        .status,
        202
    );
    let hs = hs_token("ec");
    assert_rejected(&h, "hs256 against an ec key", Some(format!("Bearer {hs}"))).await;
}

#[tokio::test]
async fn jwks_keys_rotate_by_kid_with_bounded_refetching_and_survive_an_outage() {
    let jwks = JwksServer::start(vec![jwk("rsa1")]).await;
    let redis = RedisServer::start();
    let h = UpdateHarness {
        service: update_service(
            &redis,
            &bound("JWT_JWKS_URL", &jwks.url),
            &[("JWT_JWKS_MIN_REFRESH_SECS", "1")],
        ),
        redis: redis.into(),
    };
    let token = |kid: &str| rs_token(kid, Some(kid), "kim");

    assert_eq!(h.send(post_update(&token("rsa1"), BODY)).await.status, 202);
    assert_eq!(jwks.fetches(), 1);

    // Unknown kid: one refetch, then no more within the interval.
    assert_rejected(&h, "unknown kid", Some(format!("Bearer {}", token("rsa2")))).await;
    assert_rejected(
        &h,
        "unknown kid again",
        Some(format!("Bearer {}", token("rsa2"))),
    )
    .await;
    let after_unknown = jwks.fetches();
    assert!(
        after_unknown <= 2,
        "at most one refetch per interval, saw {after_unknown} fetches"
    );

    // Rotation: the provider publishes rsa2; after the interval the new kid is fetched and accepted.
    jwks.publish(vec![jwk("rsa1"), jwk("rsa2")]);
    let mut status = 0;
    for _ in 0..40 {
        status = h.send(post_update(&token("rsa2"), BODY)).await.status;
        if status == 202 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, 202,
        "rotated key accepted after the refresh interval"
    );

    // A token without kid cannot pick a key.
    let no_kid = rs_token("rsa1", None, "kim");
    assert_rejected(&h, "no kid", Some(format!("Bearer {no_kid}"))).await;

    // The JWKS server goes down: cached keys keep working.
    jwks.stop().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let unknown = rs_token("rsa1", Some("rsa3"), "kim");
    assert_rejected(
        &h,
        "unknown kid while jwks is down",
        Some(format!("Bearer {unknown}")),
    )
    .await;
    assert_eq!(h.send(post_update(&token("rsa1"), BODY)).await.status, 202);
    assert_eq!(h.send(post_update(&token("rsa2"), BODY)).await.status, 202);
}

#[tokio::test]
async fn jwks_unreachable_with_no_cached_keys_is_503_not_401() {
    let redis = RedisServer::start();
    let dead = format!(
        "http://127.0.0.1:{}/jwks.json",
        scoreboard_testkit::free_port()
    );
    let h = UpdateHarness {
        service: update_service(&redis, &bound("JWT_JWKS_URL", &dead), &[]),
        redis: redis.into(),
    };
    let token = rs_token("rsa1", Some("rsa1"), "kim");
    let answer = h.send(post_update(&token, BODY)).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(h.stream_len().await, 0);
}
