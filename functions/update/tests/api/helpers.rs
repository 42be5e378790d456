//! Arrangements for the update function's handler tests: a Redis per test, the service built from env
//! pairs, tokens (HS256, and RSA bound to an issuer and audience) and events from the test kit.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, EncodingKey};
use lambda_http::Request;
use redis::AsyncCommands;
use scoreboard_shared::config::Env;
use scoreboard_shared::redis::keys;
pub use scoreboard_testkit::lambda_event::{Answer, answer, event, post_update};
pub use scoreboard_testkit::token::sign;
pub use scoreboard_testkit::{RedisServer, fixture};
use serde_json::Value;
use update::UpdateService;

pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
/// The issuer and audience public-key configurations are bound to (see [`bound`]).
pub const ISSUER: &str = "https://id.example.com";
pub const AUDIENCE: &str = "scoreboard";

pub fn now() -> u64 {
    scoreboard_testkit::token::now_secs()
}

/// Standard claims for `sub`, valid for an hour.
pub fn claims(sub: &str) -> Value {
    scoreboard_testkit::token::claims(sub, &format!("Player {sub}"), 3600)
}

/// [`claims`] with `iss` = [`ISSUER`] and `aud` = [`AUDIENCE`].
pub fn bound_claims(sub: &str) -> Value {
    let mut c = claims(sub);
    c["iss"] = ISSUER.into();
    c["aud"] = AUDIENCE.into();
    c
}

/// A public key source (`JWT_PUBLIC_KEY` or `JWT_JWKS_URL`) with the `JWT_ISSUER`/`JWT_AUDIENCE` it
/// needs to start.
pub fn bound<'a>(var: &'a str, value: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (var, value),
        ("JWT_ISSUER", ISSUER),
        ("JWT_AUDIENCE", AUDIENCE),
    ]
}

/// The private RSA key of fixture `name` (`rsa1`, `rsa2`).
pub fn rsa_key(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(fixture(&format!("{name}.key.pem")).as_bytes()).unwrap()
}

/// An RS256 token for `sub` signed by fixture key `key` with header `kid`, bound to the test issuer.
pub fn rs_token(key: &str, kid: Option<&str>, sub: &str) -> String {
    sign(Algorithm::RS256, &rsa_key(key), kid, &bound_claims(sub))
}

pub fn hs_token_with(claims: &Value) -> String {
    scoreboard_testkit::token::hs256_with(SECRET, claims)
}

pub fn hs_token(sub: &str) -> String {
    hs_token_with(&claims(sub))
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
