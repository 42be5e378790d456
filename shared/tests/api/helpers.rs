//! Shared arrangements: a Redis per test, services built from env pairs, signed tokens and Lambda events.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lambda_http::{Body, Request, Response};
use redis::AsyncCommands;
use scoreboard_shared::config::Env;
use scoreboard_shared::keys;
use scoreboard_shared::update::UpdateService;
use scoreboard_testkit::RedisServer;
use serde_json::{Value, json};

pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Standard claims for `sub`, valid for an hour.
pub fn claims(sub: &str) -> Value {
    json!({"sub": sub, "name": format!("Player {sub}"), "exp": now() + 3600, "iat": now()})
}

pub fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub fn hs_token_with(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        None,
        claims,
    )
}

pub fn hs_token(sub: &str) -> String {
    hs_token_with(&claims(sub))
}

/// A function-URL (API Gateway v2 payload) event, as AWS sends it.
pub fn event(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Request {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
        .collect();
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnop",
            "domainName": "abcdefghijklmnop.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abcdefghijklmnop",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "test"
            },
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:16:00:00 +0000",
            "timeEpoch": 1_795_881_600_000u64
        },
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("valid function URL event")
}

pub fn post_update(token: &str, body: &str) -> Request {
    event(
        "POST",
        "/api/v1/scores/update",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
        ],
        Some(body),
    )
}

/// A decoded response: status, headers and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub json: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn problem_type(&self) -> &str {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        self.json["type"].as_str().unwrap_or_default()
    }
}

pub fn answer(response: Response<Body>) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let json = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Answer {
        status,
        headers,
        json,
    }
}

/// A Redis server plus the update service configured against it.
pub struct UpdateHarness {
    pub redis: RedisServer,
    pub service: UpdateService,
}

impl UpdateHarness {
    /// HS256 with [`SECRET`], defaults for everything else, `extra` overriding.
    pub fn start(extra: &[(&str, &str)]) -> Self {
        let redis = RedisServer::start();
        let service = update_service(&redis, &[("JWT_SECRET", SECRET)], extra);
        Self { redis, service }
    }

    pub async fn send(&self, request: Request) -> Answer {
        answer(self.service.handle(request).await)
    }

    pub async fn stream_len(&self) -> usize {
        self.redis
            .connection()
            .await
            .xlen(keys::UPDATES)
            .await
            .unwrap()
    }
}

pub fn update_service(
    redis: &RedisServer,
    auth: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> UpdateService {
    let url = redis.url();
    let mut pairs: Vec<(&str, &str)> = vec![("REDIS_URL", &url)];
    pairs.extend_from_slice(auth);
    pairs.extend_from_slice(extra);
    UpdateService::from_env(&Env::from_pairs(pairs.iter().copied())).expect("valid test config")
}

/// The fields of every entry in the updates stream, in order.
pub async fn stream_entries(redis: &RedisServer) -> Vec<(String, HashMap<String, String>)> {
    let reply: redis::streams::StreamRangeReply = redis
        .connection()
        .await
        .xrange_all(keys::UPDATES)
        .await
        .unwrap();
    reply
        .ids
        .into_iter()
        .map(|entry| {
            let fields = entry
                .map
                .iter()
                .map(|(k, v)| (k.clone(), redis::from_redis_value_ref::<String>(v).unwrap()))
                .collect();
            (entry.id, fields)
        })
        .collect()
}

/// A Redis server plus the leaderboard service configured against it.
pub struct LeaderboardHarness {
    pub redis: RedisServer,
    pub service: scoreboard_shared::leaderboard::LeaderboardService,
}

impl LeaderboardHarness {
    pub fn start(extra: &[(&str, &str)]) -> Self {
        let redis = RedisServer::start();
        let url = redis.url();
        let mut pairs: Vec<(&str, &str)> = vec![("REDIS_URL", &url), ("JWT_SECRET", SECRET)];
        pairs.extend_from_slice(extra);
        let service = scoreboard_shared::leaderboard::LeaderboardService::from_env(
            &Env::from_pairs(pairs.iter().copied()),
        )
        .expect("valid test config");
        Self { redis, service }
    }

    pub async fn get(&self, path: &str, token: Option<&str>, extra: &[(&str, &str)]) -> Answer {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(auth) = auth.as_deref() {
            headers.push(("authorization", auth));
        }
        answer(
            self.service
                .handle(event("GET", path, &headers, None))
                .await,
        )
    }
}
