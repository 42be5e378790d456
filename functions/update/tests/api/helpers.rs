//! Arrangements for the update function's handler tests: a Redis per test (standalone, or a cluster for
//! the contract tests that run on both), the service built from env pairs, tokens (HS256, and RSA bound to
//! an issuer and audience) and events from the test kit.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, EncodingKey};
use lambda_http::Request;
use redis::AsyncCommands;
use scoreboard_shared::config::Env;
use scoreboard_shared::partition::{EventId, Partitioner, StreamId};
use scoreboard_shared::redis::keys::PartitionKeys;
pub use scoreboard_testkit::lambda_event::{Answer, answer, event, post_update};
pub use scoreboard_testkit::token::sign;
pub use scoreboard_testkit::{RedisServer, fixture};
use serde_json::Value;
use update::UpdateService;

pub use scoreboard_testkit::redis_under_test::{Inspect, Target, TestRedis};

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

/// A Redis (standalone or cluster) plus the update service configured against it.
pub struct UpdateHarness {
    pub redis: TestRedis,
    pub service: UpdateService,
}

impl UpdateHarness {
    /// On standalone Redis: HS256 with [`SECRET`], defaults for everything else, `extra` overriding.
    pub fn start(extra: &[(&str, &str)]) -> Self {
        Self::on(Target::Standalone, extra)
    }

    /// As [`UpdateHarness::start`], on the Redis `target` names.
    pub fn on(target: Target, extra: &[(&str, &str)]) -> Self {
        let redis = TestRedis::start(target);
        let service = service_from(&redis.env(), &[("JWT_SECRET", SECRET)], extra);
        Self { redis, service }
    }

    pub async fn send(&self, request: Request) -> Answer {
        answer(self.service.handle(request).await)
    }

    /// Entries queued over every partition's stream.
    pub async fn stream_len(&self) -> usize {
        queued(&self.redis).await
    }
}

pub fn update_service(
    redis: &RedisServer,
    auth: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> UpdateService {
    service_from(&[("REDIS_URL", redis.url())], auth, extra)
}

fn service_from(
    redis: &[(&'static str, String)],
    auth: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> UpdateService {
    let mut pairs: Vec<(&str, &str)> = redis.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.extend_from_slice(auth);
    pairs.extend_from_slice(extra);
    UpdateService::from_env(&Env::from_pairs(pairs.iter().copied())).expect("valid test config")
}

/// Entries queued over every partition's stream (the default `PARTITIONS`).
pub async fn queued(redis: &impl Inspect) -> usize {
    let mut connection = redis.connection().await;
    let mut total = 0;
    for partition in Partitioner::new(PARTITIONS).all() {
        let len: usize = connection
            .xlen(PartitionKeys::new(partition).updates())
            .await
            .unwrap();
        total += len;
    }
    total
}

/// The event id (`<p>-<entry id>`) and fields of every entry in every partition's stream, in order of
/// acceptance (entry ids come from one server clock).
pub async fn stream_entries(redis: &impl Inspect) -> Vec<(String, HashMap<String, String>)> {
    let mut connection = redis.connection().await;
    let mut entries = Vec::new();
    for partition in Partitioner::new(PARTITIONS).all() {
        let reply: redis::streams::StreamRangeReply = connection
            .xrange_all(PartitionKeys::new(partition).updates())
            .await
            .unwrap();
        for entry in reply.ids {
            let fields = entry
                .map
                .iter()
                .map(|(k, v)| (k.clone(), redis::from_redis_value_ref::<String>(v).unwrap()))
                .collect();
            let id: StreamId = entry.id.parse().unwrap();
            entries.push((
                id,
                EventId {
                    partition,
                    entry: id,
                }
                .to_string(),
                fields,
            ));
        }
    }
    entries.sort_by_key(|(id, _, _)| *id);
    entries
        .into_iter()
        .map(|(_, id, fields)| (id, fields))
        .collect()
}

/// The default partition count the harness runs with.
pub const PARTITIONS: u16 = 16;
