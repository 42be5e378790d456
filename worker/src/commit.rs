//! The per-batch Redis commit: one script call (`commit.lua`) that mirrors the store's absolute totals
//! into `{sb}:lb` with `ZADD GT` (idempotent: scores only grow), stores names, writes dead letters, acks
//! the batch, and bumps the version, writes `{sb}:top` and publishes only when the top changed.
//!
//! Ties rule: equal scores are ranked by user id ascending (byte order).

use redis::aio::ConnectionLike;
use scoreboard_shared::redis::keys;

use crate::store::UserTotal;

/// How many dead letters `{sb}:dlq` keeps (approximately; oldest dropped first).
pub const DLQ_MAX_LEN: u64 = 100_000;

/// An entry that goes to `{sb}:dlq` instead of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub event_id: String,
    pub reason: String,
    /// The entry's fields as a JSON object.
    pub fields_json: String,
    pub deliveries: u64,
}

/// What one commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Whether the top changed (a new snapshot was written and published).
    pub published: bool,
    /// The snapshot version after the commit.
    pub version: u64,
}

/// What to commit.
#[derive(Debug, Default)]
pub struct CommitInput<'a> {
    pub totals: &'a [UserTotal],
    pub acks: &'a [String],
    pub dead: &'a [DeadLetter],
    /// Whether to recompute the snapshot (a rebuild skips it on all but its last chunk).
    pub snapshot: bool,
}

/// The loaded commit script (EVALSHA, falling back to EVAL once per connection).
#[derive(Debug, Clone)]
pub struct CommitScript {
    script: redis::Script,
    board_size: usize,
}

impl CommitScript {
    pub fn new(board_size: usize) -> Self {
        Self {
            script: redis::Script::new(include_str!("commit.lua")),
            board_size,
        }
    }

    /// Runs the commit in one script call.
    ///
    /// # Errors
    /// When Redis cannot be reached or the script fails; nothing is acked then, the caller retries.
    pub async fn run<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        input: &CommitInput<'_>,
        updated_at: &str,
    ) -> redis::RedisResult<CommitOutcome> {
        let mut invocation = self.script.prepare_invoke();
        for key in [
            keys::LEADERBOARD,
            keys::NAMES,
            keys::TOP,
            keys::VERSION,
            keys::UPDATES,
            keys::DLQ,
        ] {
            invocation.key(key);
        }
        invocation
            .arg(keys::CONSUMER_GROUP)
            .arg(keys::EVENTS_CHANNEL)
            .arg(self.board_size)
            .arg(updated_at)
            .arg(if input.snapshot { "1" } else { "0" })
            .arg(input.totals.len())
            .arg(input.acks.len())
            .arg(input.dead.len())
            .arg(DLQ_MAX_LEN);
        for total in input.totals {
            invocation
                .arg(&total.user_id)
                .arg(total.score)
                .arg(total.display_name.as_deref().unwrap_or(""));
        }
        for id in input.acks {
            invocation.arg(id);
        }
        for dead in input.dead {
            invocation
                .arg(&dead.event_id)
                .arg(&dead.reason)
                .arg(&dead.fields_json)
                .arg(dead.deliveries);
        }
        let (changed, version): (u8, u64) = invocation.invoke_async(conn).await?;
        Ok(CommitOutcome {
            published: changed == 1,
            version,
        })
    }
}

/// Now as RFC 3339 UTC, for the snapshot's `updatedAt`.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let millis = now.replace_nanosecond(now.millisecond() as u32 * 1_000_000);
    millis
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}
