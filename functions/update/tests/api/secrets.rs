//! Secrets at init: the update function reads `JWT_SECRET_ARN` and `REDIS_URL_SECRET_ARN` through a local
//! server playing the AWS Parameters and Secrets Lambda Extension's documented API
//! (`GET /secretsmanager/get?secretId=…`, header `X-Aws-Parameters-Secrets-Token`, `GetSecretValue` JSON),
//! once per instance; a bad session token or a secret set twice stops init.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use scoreboard_shared::config::Env;
use scoreboard_shared::secrets::{self, PORT_VAR, TOKEN_HEADER};
use serde_json::json;
use update::UpdateService;

use crate::helpers::*;

const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE-session-token";
const JWT_ARN: &str =
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:scoreboard/jwt-secret-AbCdEf";
const REDIS_ARN: &str =
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:scoreboard/redis-url-GhIjKl";
const BODY: &str = r#"{"scoreIncrement":7}"#;

#[derive(Clone)]
struct Extension {
    token: String,
    secrets: Arc<HashMap<String, String>>,
    calls: Arc<AtomicUsize>,
    /// Answer `503` to this many calls first (an extension still starting).
    unavailable_for: Arc<AtomicUsize>,
}

/// The fake extension, serving `secrets` (ARN → `SecretString`) to callers holding `token`.
struct FakeExtension {
    port: u16,
    state: Extension,
}

impl FakeExtension {
    async fn start(token: &str, secrets: &[(&str, String)]) -> Self {
        let state = Extension {
            token: token.to_owned(),
            secrets: Arc::new(
                secrets
                    .iter()
                    .map(|(arn, value)| ((*arn).to_owned(), value.clone()))
                    .collect(),
            ),
            calls: Arc::default(),
            unavailable_for: Arc::default(),
        };
        let app = Router::new()
            .route("/secretsmanager/get", get(get_secret))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { port, state }
    }

    fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// The environment Lambda would give the function: ARNs, the session token, the extension's port.
    fn env(&self, session_token: Option<&str>, extra: &[(&str, &str)]) -> Env {
        let port = self.port.to_string();
        let mut pairs = vec![
            ("JWT_SECRET_ARN", JWT_ARN),
            ("REDIS_URL_SECRET_ARN", REDIS_ARN),
            (PORT_VAR, port.as_str()),
        ];
        if let Some(token) = session_token {
            pairs.push(("AWS_SESSION_TOKEN", token));
        }
        pairs.extend_from_slice(extra);
        Env::from_pairs(pairs.iter().copied())
    }
}

/// The extension's `GET /secretsmanager/get?secretId=<arn>`.
async fn get_secret(
    State(extension): State<Extension>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    extension.calls.fetch_add(1, Ordering::SeqCst);
    let starting =
        extension
            .unavailable_for
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if starting.is_ok() {
        return (StatusCode::SERVICE_UNAVAILABLE, "extension starting").into_response();
    }
    if headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) != Some(extension.token.as_str()) {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    }
    let Some(arn) = query.get("secretId") else {
        return (StatusCode::BAD_REQUEST, "missing secretId").into_response();
    };
    match extension.secrets.get(arn) {
        Some(secret_string) => axum::Json(json!({
            "ARN": arn,
            "Name": arn.rsplit(':').next(),
            "SecretString": secret_string,
            "VersionId": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": "2026-01-01T00:00:00.000Z",
        }))
        .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."})),
        )
            .into_response(),
    }
}

/// The JWT secret as a plain `SecretString`, the Redis URL as the console's key/value JSON.
fn served(redis: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        (JWT_ARN, SECRET.to_owned()),
        (REDIS_ARN, json!({ "REDIS_URL": redis.url() }).to_string()),
    ]
}

#[tokio::test]
async fn the_function_verifies_with_the_served_secret_and_enqueues_to_the_served_redis() {
    let redis = RedisServer::start();
    let extension = FakeExtension::start(SESSION_TOKEN, &served(&redis)).await;
    // No JWT_SECRET or REDIS_URL anywhere in the function's environment.
    let env = extension.env(Some(SESSION_TOKEN), &[]);
    assert!(env.optional("JWT_SECRET").is_none() && env.optional("REDIS_URL").is_none());

    let env = secrets::resolve(env).await.expect("secrets read at init");
    let service = UpdateService::from_env(&env).expect("valid config");
    for user in ["alice", "bob"] {
        let answer = answer(service.handle(post_update(&hs_token(user), BODY)).await);
        assert_eq!(answer.status, 202, "{answer:?}");
    }
    let entries = stream_entries(&redis).await;
    assert_eq!(
        entries.len(),
        2,
        "enqueued to the Redis whose URL the extension served"
    );
    assert_eq!(entries[0].1["user"], "alice");
    assert_eq!(entries[1].1["inc"], "7");

    // A token signed with any other secret is refused: the key really came from the extension.
    let forged = scoreboard_testkit::token::hs256_with(
        "some-other-secret-that-is-32-bytes-long!",
        &claims("mallory"),
    );
    let answer = answer(service.handle(post_update(&forged, BODY)).await);
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(
        extension.calls(),
        2,
        "each secret is read once at init, not per request"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_session_token_fails_init_naming_the_arn_variable() {
    let redis = RedisServer::start();
    let extension = FakeExtension::start(SESSION_TOKEN, &served(&redis)).await;

    let err = secrets::resolve(extension.env(Some("a-stale-session-token"), &[]))
        .await
        .unwrap_err();
    assert_eq!(err.var, "JWT_SECRET_ARN", "{err}");
    assert!(err.to_string().contains("401"), "{err}");
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert_eq!(
        extension.calls(),
        2,
        "a 401 is not retried: one call per secret"
    );

    let err = secrets::resolve(extension.env(None, &[]))
        .await
        .unwrap_err();
    assert_eq!(err.var, "JWT_SECRET_ARN", "{err}");
    assert!(err.to_string().contains("AWS_SESSION_TOKEN"), "{err}");
    assert_eq!(extension.calls(), 2, "nothing is sent without a token");
}

#[tokio::test]
async fn a_plain_jwt_secret_next_to_its_arn_is_a_config_error() {
    let redis = RedisServer::start();
    let extension = FakeExtension::start(SESSION_TOKEN, &served(&redis)).await;
    let err = secrets::resolve(extension.env(Some(SESSION_TOKEN), &[("JWT_SECRET", SECRET)]))
        .await
        .unwrap_err();
    assert_eq!(err.var, "JWT_SECRET", "{err}");
    assert!(err.to_string().contains("JWT_SECRET_ARN"), "{err}");
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert_eq!(extension.calls(), 0, "rejected before anything is fetched");
}

#[tokio::test]
async fn an_extension_that_starts_late_is_retried() {
    let redis = RedisServer::start();
    let extension = FakeExtension::start(SESSION_TOKEN, &served(&redis)).await;
    extension.state.unavailable_for.store(2, Ordering::SeqCst);
    let env = secrets::resolve(extension.env(Some(SESSION_TOKEN), &[]))
        .await
        .expect("read after retries");
    assert_eq!(env.optional("REDIS_URL"), Some(redis.url()));
    assert_eq!(extension.calls(), 4, "two 503s, then one read per secret");
}

#[tokio::test]
async fn an_absent_extension_fails_init_quickly_naming_the_arn_variable() {
    let env = Env::from_pairs([
        ("REDIS_URL_SECRET_ARN", REDIS_ARN),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        (PORT_VAR, &scoreboard_testkit::free_port().to_string()),
    ]);
    let started = Instant::now();
    let err = secrets::resolve(env).await.unwrap_err();
    assert_eq!(err.var, "REDIS_URL_SECRET_ARN", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a few short retries, not a hang: {:?}",
        started.elapsed()
    );
}
