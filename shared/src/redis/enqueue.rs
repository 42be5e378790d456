//! The enqueue script and its typed outcome: idempotency, backlog bound, GCRA rate limit and `XADD`
//! in one atomic script call, so an accepted update costs exactly one round trip.

use std::time::Duration;

use redis::aio::ConnectionLike;

use scoreboard_shared::redis::{entry, keys};

use crate::config::UpdateConfig;

/// What to append, after authentication and validation.
#[derive(Debug, Clone)]
pub struct EnqueueRequest<'a> {
    pub user_id: &'a str,
    pub display_name: Option<&'a str>,
    pub increment: u32,
    pub request_id: &'a str,
    pub idempotency_key: Option<&'a str>,
}

/// What the script decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnqueueOutcome {
    Accepted { event_id: String },
    Replayed { event_id: String },
    IdempotencyConflict,
    Backlogged,
    RateLimited { retry_after: Duration },
}

/// The loaded script plus the limits it enforces.
#[derive(Debug, Clone)]
pub struct Enqueuer {
    script: redis::Script,
    rate_per_sec: u32,
    burst: u32,
    max_backlog: u64,
    idempotency_ttl: Duration,
}

impl Enqueuer {
    pub fn new(config: &UpdateConfig) -> Self {
        Self {
            script: redis::Script::new(include_str!("enqueue.lua")),
            rate_per_sec: config.rate_limit.per_sec,
            burst: config.rate_limit.burst,
            max_backlog: config.max_backlog,
            idempotency_ttl: config.idempotency_ttl,
        }
    }

    /// `RateLimit-Policy` header value for these limits.
    pub fn rate_limit_policy(&self) -> String {
        let window = self.burst.div_ceil(self.rate_per_sec).max(1);
        format!(r#""burst";q={};w={window}"#, self.burst)
    }

    /// Runs the script: one `EVALSHA` (plus a one-time `SCRIPT LOAD` on a cold server).
    ///
    /// # Errors
    /// Connection, timeout or script errors from Redis.
    pub async fn enqueue<C: ConnectionLike>(
        &self,
        conn: &mut C,
        request: &EnqueueRequest<'_>,
    ) -> redis::RedisResult<EnqueueOutcome> {
        let mut invocation = self.script.key(keys::UPDATES);
        invocation.key(keys::rate_limit(request.user_id));
        if let Some(key) = request.idempotency_key {
            invocation.key(keys::idempotency(request.user_id, key));
        }
        invocation
            .arg(request.user_id)
            .arg(request.display_name.unwrap_or(""))
            .arg(request.increment)
            .arg(request.request_id)
            .arg(self.rate_per_sec)
            .arg(self.burst)
            .arg(self.max_backlog)
            .arg(self.idempotency_ttl.as_millis() as u64)
            .arg(entry::SCHEMA_VERSION);
        let (status, value): (String, String) = invocation.invoke_async(conn).await?;
        Ok(match status.as_str() {
            "accepted" => EnqueueOutcome::Accepted { event_id: value },
            "replay" => EnqueueOutcome::Replayed { event_id: value },
            "conflict" => EnqueueOutcome::IdempotencyConflict,
            "backlogged" => EnqueueOutcome::Backlogged,
            "limited" => EnqueueOutcome::RateLimited {
                retry_after: Duration::from_millis(value.parse().unwrap_or(1_000)),
            },
            other => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "unexpected enqueue script status",
                    other.to_owned(),
                )));
            }
        })
    }
}
