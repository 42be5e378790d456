//! Producers: the real update handler fed function-URL events with HS256 tokens (what the chaos test
//! uses), and raw `XADD`s for tests that need exact or malformed entries.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lambda_http::{Body, Request};
use redis::aio::ConnectionManager;
use scoreboard_shared::auth::Authenticator;
use scoreboard_shared::config::{AuthConfig, Env, UpdateConfig};
use scoreboard_shared::keys;
use scoreboard_shared::update::UpdateService;
use serde_json::json;

pub const SECRET: &str = "worker-test-secret-that-is-at-least-32-bytes";

/// An update the handler accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub user: String,
    pub increment: u64,
    pub event_id: String,
}

/// The real update function, with a rate limit high enough for load tests.
#[derive(Debug)]
pub struct UpdateProducer {
    service: UpdateService,
}

impl UpdateProducer {
    pub fn new(redis: ConnectionManager) -> Self {
        let env = Env::from_pairs([
            ("JWT_SECRET", SECRET),
            ("RATE_LIMIT_PER_SEC", "10000"),
            ("RATE_LIMIT_BURST", "100000"),
            ("STREAM_MAX_BACKLOG", "10000000"),
        ]);
        let auth = Authenticator::new(&AuthConfig::from_env(&env).unwrap()).unwrap();
        let config = UpdateConfig::from_env(&env).unwrap();
        Self {
            service: UpdateService::new(auth, redis, config),
        }
    }

    /// Sends one update as `user`; `Some` when answered 202.
    pub async fn send(&self, user: &str, increment: u64) -> Option<Accepted> {
        let response = self
            .service
            .handle(post_update(&token(user), increment))
            .await;
        if response.status().as_u16() != 202 {
            return None;
        }
        let body: serde_json::Value = match response.body() {
            Body::Text(text) => serde_json::from_str(text).ok()?,
            _ => return None,
        };
        Some(Accepted {
            user: user.to_owned(),
            increment,
            event_id: body["eventId"].as_str()?.to_owned(),
        })
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token for `sub` with a display name.
pub fn token(sub: &str) -> String {
    let claims =
        json!({"sub": sub, "name": format!("Player {sub}"), "exp": now() + 3600, "iat": now()});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// `POST /api/v1/scores/update` as a function-URL (API Gateway v2) event.
pub fn post_update(token: &str, increment: u64) -> Request {
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/api/v1/scores/update",
        "rawQueryString": "",
        "headers": {
            "authorization": format!("Bearer {token}"),
            "content-type": "application/json"
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnop",
            "domainName": "abcdefghijklmnop.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abcdefghijklmnop",
            "http": {
                "method": "POST",
                "path": "/api/v1/scores/update",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "worker-test"
            },
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:16:00:00 +0000",
            "timeEpoch": 1_795_881_600_000u64
        },
        "body": json!({"scoreIncrement": increment}).to_string(),
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("valid function URL event")
}

/// Appends a well-formed v1 entry as the update function would; returns its id.
pub async fn xadd_event(
    redis: &mut ConnectionManager,
    user: &str,
    name: Option<&str>,
    inc: u64,
) -> String {
    let inc = inc.to_string();
    let ts = (now() * 1000).to_string();
    let mut fields = vec![
        ("v", "1"),
        ("user", user),
        ("inc", inc.as_str()),
        ("ts", ts.as_str()),
    ];
    if let Some(name) = name {
        fields.push(("name", name));
    }
    fields.push(("req", "req-test"));
    xadd_raw(redis, &fields).await
}

/// Appends an entry with exactly these fields; returns its id.
pub async fn xadd_raw(redis: &mut ConnectionManager, fields: &[(&str, &str)]) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(keys::UPDATES).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    cmd.query_async(redis).await.expect("xadd")
}
