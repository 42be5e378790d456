//! Producers: the real update handler fed function-URL events with HS256 tokens (what the chaos test
//! uses), and raw `XADD`s for tests that need exact or malformed entries.

use lambda_http::{Body, Request};
use scoreboard_shared::auth::Authenticator;
use scoreboard_shared::config::{AuthConfig, Env};
use scoreboard_shared::partition::{EventId, Partitioner};
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::entry::{
    FIELD_INCREMENT, FIELD_NAME, FIELD_REQUEST, FIELD_TIMESTAMP, FIELD_USER, FIELD_VERSION,
    SCHEMA_VERSION,
};
use scoreboard_shared::redis::keys::PartitionKeys;
use serde_json::json;
use update::{UpdateConfig, UpdateService};

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
    pub fn new(redis: RedisConn, partitions: u16) -> Self {
        let partitions = partitions.to_string();
        let env = Env::from_pairs([
            ("PARTITIONS", partitions.as_str()),
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

/// An HS256 token for `sub` with a display name.
pub fn token(sub: &str) -> String {
    scoreboard_testkit::token::hs256(SECRET, sub, &format!("Player {sub}"))
}

/// `POST /api/v1/scores/update` as a function-URL (API Gateway v2) event.
pub fn post_update(token: &str, increment: u64) -> Request {
    scoreboard_testkit::lambda_event::post_update(
        token,
        &json!({"scoreIncrement": increment}).to_string(),
    )
}

/// Appends a well-formed entry to `user`'s partition (of `partitions`) as the update function would;
/// returns its event id.
pub async fn xadd_event(
    redis: &mut RedisConn,
    partitions: u16,
    user: &str,
    name: Option<&str>,
    inc: u64,
) -> String {
    let inc = inc.to_string();
    let ts = (scoreboard_testkit::token::now_secs() * 1000).to_string();
    let mut fields = vec![
        (FIELD_VERSION, SCHEMA_VERSION),
        (FIELD_USER, user),
        (FIELD_INCREMENT, inc.as_str()),
        (FIELD_TIMESTAMP, ts.as_str()),
    ];
    if let Some(name) = name {
        fields.push((FIELD_NAME, name));
    }
    fields.push((FIELD_REQUEST, "req-test"));
    let partition = Partitioner::new(partitions).partition_of(user);
    xadd_raw(redis, partition, &fields).await
}

/// Appends an entry with exactly these fields to partition `partition`; returns its event id.
pub async fn xadd_raw(redis: &mut RedisConn, partition: u16, fields: &[(&str, &str)]) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(PartitionKeys::new(partition).updates()).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    let id: String = cmd.query_async(redis).await.expect("xadd");
    EventId {
        partition,
        entry: id.parse().expect("stream id"),
    }
    .to_string()
}
