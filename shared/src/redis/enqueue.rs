//! The update path's one script and its typed outcome: idempotency, backlog bound, GCRA rate limit and
//! `XADD` on the user's partition (`{sb:p}` keys, one cluster slot) in one atomic call, so an accepted
//! update costs exactly one round trip. The update function calls it for every request; the worker's
//! `dlq replay` calls it with the dead entry's event id as the idempotency key. With a [`ReplicaWait`]
//! (`UPDATE_WAIT_REPLICAS`), a `WAIT` is pipelined behind the script: still one round trip, on the
//! partition's shard.

use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::partition::{EventId, Partitioner, StreamId};
use crate::redis::entry;
use crate::redis::keys::PartitionKeys;

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
    Accepted {
        event_id: EventId,
    },
    Replayed {
        event_id: EventId,
    },
    IdempotencyConflict,
    Backlogged,
    RateLimited {
        retry_after: Duration,
    },
    /// Appended (or replayed), but fewer replicas than [`ReplicaWait::replicas`] confirmed it in time.
    NotReplicated {
        event_id: EventId,
        acknowledged: u32,
    },
}

/// Replicas an accepted update must reach before it is answered `202` (`UPDATE_WAIT_REPLICAS`), and how
/// long to wait for them (`UPDATE_WAIT_TIMEOUT_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaWait {
    pub replicas: u32,
    pub timeout: Duration,
}

/// The limits the script enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnqueueLimits {
    pub rate_per_sec: u32,
    pub burst: u32,
    /// Entries a partition's stream may hold before updates to it are refused.
    pub max_backlog: u64,
    pub idempotency_ttl: Duration,
}

/// The loaded script, the limits it enforces and the partitioning of users.
#[derive(Debug, Clone)]
pub struct Enqueuer {
    script: redis::Script,
    rate_per_sec: u32,
    burst: u32,
    max_backlog: u64,
    idempotency_ttl: Duration,
    partitioner: Partitioner,
    replica_wait: Option<ReplicaWait>,
}

impl Enqueuer {
    pub fn new(limits: EnqueueLimits, partitioner: Partitioner) -> Self {
        Self {
            script: redis::Script::new(include_str!("enqueue.lua")),
            rate_per_sec: limits.rate_per_sec,
            burst: limits.burst,
            max_backlog: limits.max_backlog,
            idempotency_ttl: limits.idempotency_ttl,
            partitioner,
            replica_wait: None,
        }
    }

    /// Answers an accepted update only once `wait.replicas` replicas have it (or says it is not replicated).
    #[must_use]
    pub fn with_replica_wait(mut self, wait: Option<ReplicaWait>) -> Self {
        self.replica_wait = wait;
        self
    }

    /// `RateLimit-Policy` header value for these limits.
    pub fn rate_limit_policy(&self) -> String {
        let window = self.burst.div_ceil(self.rate_per_sec).max(1);
        format!(r#""burst";q={};w={window}"#, self.burst)
    }

    /// Runs the script: one `EVALSHA` (plus a one-time `SCRIPT LOAD` on a cold server), with a `WAIT`
    /// pipelined behind it when replicas are waited for.
    ///
    /// # Errors
    /// Connection, timeout or script errors from Redis.
    pub async fn enqueue<C: ConnectionLike>(
        &self,
        conn: &mut C,
        request: &EnqueueRequest<'_>,
    ) -> redis::RedisResult<EnqueueOutcome> {
        let partition = self.partitioner.partition_of(request.user_id);
        let keys = PartitionKeys::new(partition);
        let mut invocation = self.script.key(keys.updates());
        invocation.key(keys.rate_limit(request.user_id));
        if let Some(key) = request.idempotency_key {
            invocation.key(keys.idempotency(request.user_id, key));
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
            .arg(entry::SCHEMA_VERSION)
            .arg(if self.replica_wait.is_some() {
                "1"
            } else {
                "0"
            });
        let ((status, value), acknowledged) = match self.replica_wait {
            None => (invocation.invoke_async(conn).await?, None),
            Some(wait) => {
                let (reply, acknowledged) = invoke_and_wait(conn, &invocation, wait).await?;
                (reply, Some(acknowledged))
            }
        };
        let short_of_replicas = |acknowledged: Option<u32>| {
            acknowledged.filter(|&n| self.replica_wait.is_some_and(|wait| n < wait.replicas))
        };
        let event_id = |raw: &str| -> redis::RedisResult<EventId> {
            let entry: StreamId = raw.parse().map_err(|_| {
                redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "enqueue script returned an invalid entry id",
                    raw.to_owned(),
                ))
            })?;
            Ok(EventId { partition, entry })
        };
        Ok(match status.as_str() {
            "accepted" | "replay" if short_of_replicas(acknowledged).is_some() => {
                EnqueueOutcome::NotReplicated {
                    event_id: event_id(&value)?,
                    acknowledged: acknowledged.unwrap_or(0),
                }
            }
            "accepted" => EnqueueOutcome::Accepted {
                event_id: event_id(&value)?,
            },
            "replay" => EnqueueOutcome::Replayed {
                event_id: event_id(&value)?,
            },
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

/// `EVALSHA` and `WAIT` in one pipeline (one round trip; on a cluster the script's keys route it to the
/// partition's master, where the `WAIT` must run). A cold server answers `NOSCRIPT`: the script is loaded
/// and the pipeline sent again (the failed `EVALSHA` wrote nothing).
async fn invoke_and_wait<C: ConnectionLike>(
    conn: &mut C,
    invocation: &redis::ScriptInvocation<'_>,
    wait: ReplicaWait,
) -> redis::RedisResult<((String, String), u32)> {
    let mut pipe = redis::pipe();
    pipe.invoke_script(invocation)
        .cmd("WAIT")
        .arg(wait.replicas)
        .arg(u64::try_from(wait.timeout.as_millis()).unwrap_or(u64::MAX));
    match pipe.query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            invocation.load_async(conn).await?;
            pipe.query_async(conn).await
        }
        other => other,
    }
}
