//! Production defaults of token verification: a public key source starts only when bound to an issuer and
//! audience (or explicitly waived), and `JWT_REQUIRED_TYP` refuses other token types.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use scoreboard_shared::config::Env;
use scoreboard_testkit::RedisServer;
use serde_json::Value;
use update::UpdateService;

use crate::helpers::*;

const BODY: &str = r#"{"scoreIncrement":1}"#;

/// Needs a Tokio runtime: the lazy Redis client spawns its task when built.
fn start_error(pairs: &[(&str, &str)]) -> scoreboard_shared::config::ConfigError {
    let mut env = vec![("REDIS_URL", "redis://127.0.0.1:1")];
    env.extend_from_slice(pairs);
    UpdateService::from_env(&Env::from_pairs(env)).expect_err("must refuse to start")
}

fn rs_token_with(claims: &Value) -> String {
    sign(Algorithm::RS256, &rsa_key("rsa1"), None, claims)
}

fn pem_harness(auth: &[(&str, &str)]) -> UpdateHarness {
    let redis = RedisServer::start();
    UpdateHarness {
        service: update_service(&redis, auth, &[]),
        redis: redis.into(),
    }
}

#[tokio::test]
async fn public_key_sources_without_issuer_and_audience_refuse_to_start() {
    let pem = fixture("rsa1.pub.pem");
    let jwks = "https://www.googleapis.com/oauth2/v3/certs";
    for source in [("JWT_PUBLIC_KEY", pem.as_str()), ("JWT_JWKS_URL", jwks)] {
        let err = start_error(&[source]);
        assert_eq!(err.var, "JWT_ISSUER", "{}: {err}", source.0);
        assert!(
            err.reason.contains("JWT_ALLOW_ANY_AUDIENCE"),
            "says how to opt out: {err}"
        );
        assert!(!err.to_string().contains("BEGIN"), "never echoes the key");
        let err = start_error(&[source, ("JWT_ISSUER", ISSUER)]);
        assert_eq!(err.var, "JWT_AUDIENCE", "{}: {err}", source.0);
        let err = start_error(&[source, ("JWT_AUDIENCE", AUDIENCE)]);
        assert_eq!(err.var, "JWT_ISSUER", "{}: {err}", source.0);
    }
}

#[tokio::test]
async fn a_bound_public_key_refuses_tokens_the_same_key_signed_for_other_clients() {
    let pem = fixture("rsa1.pub.pem");
    let h = pem_harness(&bound("JWT_PUBLIC_KEY", &pem));
    let with = |iss: Option<&str>, aud: Option<&str>| {
        let mut c = claims("pat");
        if let Some(iss) = iss {
            c["iss"] = iss.into();
        }
        if let Some(aud) = aud {
            c["aud"] = aud.into();
        }
        rs_token_with(&c)
    };
    for (name, token) in [
        ("another client", with(Some(ISSUER), Some("another-app"))),
        ("no audience", with(Some(ISSUER), None)),
        (
            "another issuer",
            with(Some("https://evil.example.com"), Some(AUDIENCE)),
        ),
        ("no issuer", with(None, Some(AUDIENCE))),
    ] {
        let answer = h.send(post_update(&token, BODY)).await;
        assert_eq!(answer.status, 401, "{name}: {answer:?}");
        assert!(
            answer
                .header("www-authenticate")
                .is_some_and(|c| c.contains("invalid_token")),
            "{name}"
        );
    }
    assert_eq!(h.stream_len().await, 0);
    let ours = with(Some(ISSUER), Some(AUDIENCE));
    assert_eq!(h.send(post_update(&ours, BODY)).await.status, 202);
}

#[tokio::test]
async fn allow_any_audience_is_an_explicit_opt_out() {
    let pem = fixture("rsa1.pub.pem");
    let h = pem_harness(&[("JWT_PUBLIC_KEY", &pem), ("JWT_ALLOW_ANY_AUDIENCE", "true")]);
    let mut c = claims("any");
    c["aud"] = "another-app".into();
    assert_eq!(
        h.send(post_update(&rs_token_with(&c), BODY)).await.status,
        202
    );

    // Waiving the requirement does not switch off what is configured: an issuer alone is still checked.
    let h = pem_harness(&[
        ("JWT_PUBLIC_KEY", &pem),
        ("JWT_ISSUER", ISSUER),
        ("JWT_ALLOW_ANY_AUDIENCE", "true"),
    ]);
    c["iss"] = "https://evil.example.com".into();
    assert_eq!(
        h.send(post_update(&rs_token_with(&c), BODY)).await.status,
        401
    );
    c["iss"] = ISSUER.into();
    assert_eq!(
        h.send(post_update(&rs_token_with(&c), BODY)).await.status,
        202
    );

    let err = start_error(&[
        ("JWT_PUBLIC_KEY", &pem),
        ("JWT_ALLOW_ANY_AUDIENCE", "maybe"),
    ]);
    assert_eq!(err.var, "JWT_ALLOW_ANY_AUDIENCE");
}

#[tokio::test]
async fn hs256_keeps_issuer_and_audience_optional() {
    let h = UpdateHarness::start(&[]);
    let mut c = claims("hugo");
    c["aud"] = "anything".into();
    assert_eq!(
        h.send(post_update(&hs_token_with(&c), BODY)).await.status,
        202
    );
}

fn typed_token(typ: Option<&str>, sub: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        &claims(sub),
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_required_typ_refuses_other_token_types_with_401_invalid_token() {
    let h = UpdateHarness::start(&[("JWT_REQUIRED_TYP", "at+jwt")]);
    for (name, typ) in [
        ("plain JWT", Some("JWT")),
        ("ID token style", Some("application/jwt")),
        ("no typ", None),
        ("lookalike", Some("at+jwt+x")),
    ] {
        let answer = h.send(post_update(&typed_token(typ, "tia"), BODY)).await;
        assert_eq!(answer.status, 401, "{name}: {answer:?}");
        let challenge = answer.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains(r#"error="invalid_token""#) && challenge.contains("typ"),
            "{name}: {challenge}"
        );
    }
    assert_eq!(h.stream_len().await, 0);
    for (i, typ) in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/At+JWT",
    ]
    .into_iter()
    .enumerate()
    {
        let answer = h
            .send(post_update(&typed_token(Some(typ), &format!("t{i}")), BODY))
            .await;
        assert_eq!(answer.status, 202, "{typ}: {answer:?}");
    }
}
