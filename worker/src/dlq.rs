//! `worker dlq list|replay` (`docs/design.md` §5.6): the dead letters of every partition, and their
//! replay through the update path (`scoreboard_shared::redis::enqueue`, the script the update function
//! runs) with the dead entry's event id as the `Idempotency-Key`, so replaying twice counts once. A
//! replayed letter is deleted from its DLQ after the enqueue answered; a crash in between only means the
//! next replay is answered as a replay.

use std::collections::HashMap;
use std::time::Duration;

use redis::streams::StreamRangeReply;
use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::enqueue::{EnqueueLimits, EnqueueOutcome, EnqueueRequest, Enqueuer};
use scoreboard_shared::redis::entry::{FIELD_INCREMENT, FIELD_NAME, FIELD_USER};
use scoreboard_shared::redis::keys::PartitionKeys;
use serde_json::Value;

/// One dead letter as stored in `{sb:p}:dlq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadEntry {
    pub partition: u16,
    /// The DLQ stream's own entry id.
    pub dlq_id: String,
    pub fields: HashMap<String, String>,
}

impl DeadEntry {
    /// The letter as one JSON object (the `fields` member is the original entry's fields).
    pub fn to_json(&self) -> Value {
        let mut object = serde_json::Map::new();
        object.insert("partition".into(), self.partition.into());
        object.insert("dlqId".into(), self.dlq_id.clone().into());
        for (name, value) in &self.fields {
            let value = if name == "fields" {
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.clone()))
            } else {
                Value::String(value.clone())
            };
            object.insert(name.clone(), value);
        }
        Value::Object(object)
    }

    /// What to enqueue again: user, name, increment and the event id (as idempotency key), or why not.
    fn replayable(&self) -> Result<(String, Option<String>, u32, String), String> {
        let event = self.fields.get("event").ok_or("no event id")?.clone();
        let original: serde_json::Map<String, Value> = self
            .fields
            .get("fields")
            .and_then(|f| serde_json::from_str(f).ok())
            .ok_or("the original fields are unreadable")?;
        let text = |name: &str| {
            original
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let user = text(FIELD_USER).ok_or("no user")?;
        let increment = text(FIELD_INCREMENT)
            .and_then(|i| i.parse::<u32>().ok())
            .filter(|i| *i > 0)
            .ok_or("no valid increment")?;
        Ok((user, text(FIELD_NAME), increment, event))
    }
}

/// Every dead letter of the given partitions, oldest first per partition.
///
/// # Errors
/// When Redis fails.
pub async fn list(
    redis: &mut RedisConn,
    partitions: impl IntoIterator<Item = u16>,
) -> redis::RedisResult<Vec<DeadEntry>> {
    let mut letters = Vec::new();
    for partition in partitions {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(PartitionKeys::new(partition).dlq())
            .arg("-")
            .arg("+")
            .query_async(redis)
            .await?;
        for entry in reply.ids {
            let fields = entry
                .map
                .iter()
                .filter_map(|(k, v)| {
                    redis::from_redis_value_ref::<String>(v)
                        .ok()
                        .map(|v| (k.clone(), v))
                })
                .collect();
            letters.push(DeadEntry {
                partition,
                dlq_id: entry.id,
                fields,
            });
        }
    }
    Ok(letters)
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Enqueued as new events.
    pub enqueued: usize,
    /// Already enqueued by an earlier replay (answered from the idempotency record).
    pub already: usize,
    /// Letters that cannot be replayed (malformed entries), with the reason; they stay in the DLQ.
    pub skipped: Vec<(String, String)>,
}

/// Replays every replayable letter of `partitions` through the update path.
///
/// # Errors
/// When Redis fails, or a partition's stream is at its backlog bound (replay again later).
pub async fn replay(
    redis: &mut RedisConn,
    partitioner: Partitioner,
    partitions: impl IntoIterator<Item = u16>,
    idempotency_ttl: Duration,
    max_backlog: u64,
) -> anyhow::Result<ReplayReport> {
    // Replays are an operator's action: not held to a user's rate limit.
    let limits = EnqueueLimits {
        rate_per_sec: 1_000_000,
        burst: 1_000_000,
        max_backlog,
        idempotency_ttl,
    };
    let enqueuer = Enqueuer::new(limits, partitioner);
    let mut report = ReplayReport::default();
    for letter in list(redis, partitions).await? {
        let (user, name, increment, event) = match letter.replayable() {
            Ok(replay) => replay,
            Err(reason) => {
                report.skipped.push((
                    letter.fields.get("event").cloned().unwrap_or_default(),
                    reason.to_owned(),
                ));
                continue;
            }
        };
        let request = EnqueueRequest {
            user_id: &user,
            display_name: name.as_deref(),
            increment,
            request_id: "dlq-replay",
            idempotency_key: Some(&event),
        };
        match enqueuer.enqueue(redis, &request).await? {
            EnqueueOutcome::Accepted { .. } => report.enqueued += 1,
            EnqueueOutcome::Replayed { .. } => report.already += 1,
            EnqueueOutcome::Backlogged => {
                anyhow::bail!("partition of {event} is at its backlog bound; replay again later")
            }
            other => anyhow::bail!("replay of {event} refused: {other:?}"),
        }
        redis::cmd("XDEL")
            .arg(PartitionKeys::new(letter.partition).dlq())
            .arg(&letter.dlq_id)
            .query_async::<()>(redis)
            .await?;
    }
    Ok(report)
}
