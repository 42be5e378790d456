//! The partition's fenced scripts: `commit.lua` (totals, names, dead letters, the partition top, cursor
//! and trim in one call), `prepare.lua` (moving a stream's id past the store's high-water mark) and
//! `swap.lua` (a rebuilt cache swapped in). Each compares the owner's whole lease value first.

use redis::aio::ConnectionLike;
use scoreboard_shared::partition::StreamId;
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::keys::PartitionKeys;

use crate::lease::Lease;
use crate::store::UserTotal;

/// How many dead letters a partition's DLQ keeps (approximately; oldest dropped first).
pub const DLQ_MAX_LEN: u64 = 100_000;

/// An entry that goes to `{sb:p}:dlq` instead of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// `<p>-<entry id>`.
    pub event_id: String,
    /// The entry's user, when it had a readable one.
    pub user: String,
    pub reason: String,
    /// The store's error, for store refusals.
    pub error: String,
    /// The entry's fields as a JSON object.
    pub fields_json: String,
}

/// What a fenced script decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitStatus {
    /// The lease is not ours any more: nothing was written; the owner steps down.
    Fenced,
    /// The partition's cache is gone (e.g. a flushed Redis): nothing was written; rebuild first.
    Unbuilt,
    /// Committed; the partition's top changed to `version` and `{sb:p}:changed` was published.
    /// `backlog`: entries left in the stream after the cursor.
    Changed { version: u64, backlog: u64 },
    /// Committed; the top did not change.
    Same { backlog: u64 },
}

/// One commit.
#[derive(Debug, Default)]
pub struct CommitInput<'a> {
    pub totals: &'a [UserTotal],
    pub dead: &'a [DeadLetter],
    /// The last entry id read (the cursor moves there and the stream is trimmed to it); `None` keeps it.
    pub cursor: Option<StreamId>,
    /// The highest entry id applied, recorded in the partition top (`None` keeps the recorded one).
    pub hw: Option<StreamId>,
    /// Refuse when the top is missing (every batch commit); a rebuild's final commit writes it.
    pub require_built: bool,
    /// Write a new version and publish even when the entries did not change (after a rebuild).
    pub force: bool,
}

/// The loaded scripts of one worker.
#[derive(Debug, Clone)]
pub struct PartitionScripts {
    commit: redis::Script,
    prepare: redis::Script,
    swap: redis::Script,
    board_size: usize,
}

impl PartitionScripts {
    pub fn new(board_size: usize) -> Self {
        Self {
            commit: redis::Script::new(include_str!("commit.lua")),
            prepare: redis::Script::new(include_str!("prepare.lua")),
            swap: redis::Script::new(include_str!("swap.lua")),
            board_size,
        }
    }

    /// Runs the commit script.
    ///
    /// # Errors
    /// When Redis fails; nothing was written then (scripts are atomic).
    pub async fn commit(
        &self,
        conn: &mut RedisConn,
        keys: &PartitionKeys,
        lease: &Lease,
        input: &CommitInput<'_>,
        updated_at: &str,
    ) -> redis::RedisResult<CommitStatus> {
        let mut invocation = self.commit.prepare_invoke();
        invocation
            .key(lease.key())
            .key(keys.leaderboard())
            .key(keys.names())
            .key(keys.top())
            .key(keys.cursor())
            .key(keys.dlq())
            .key(keys.updates());
        invocation
            .arg(lease.value())
            .arg(keys.changed())
            .arg(self.board_size)
            .arg(updated_at)
            .arg(input.cursor.map(|c| c.to_string()).unwrap_or_default())
            .arg(input.hw.map(|c| c.to_string()).unwrap_or_default())
            .arg(input.totals.len())
            .arg(input.dead.len())
            .arg(DLQ_MAX_LEN)
            .arg(if input.require_built { "1" } else { "0" })
            .arg(if input.force { "1" } else { "0" })
            .arg(conn.publish_command());
        for total in input.totals {
            invocation
                .arg(&total.user_id)
                .arg(total.score)
                .arg(total.display_name.as_deref().unwrap_or(""));
        }
        for dead in input.dead {
            invocation
                .arg(&dead.event_id)
                .arg(&dead.user)
                .arg(&dead.reason)
                .arg(&dead.error)
                .arg(&dead.fields_json);
        }
        let (status, version, backlog): (String, u64, u64) = invocation.invoke_async(conn).await?;
        Ok(match status.as_str() {
            "fenced" => CommitStatus::Fenced,
            "unbuilt" => CommitStatus::Unbuilt,
            "changed" => CommitStatus::Changed { version, backlog },
            _ => CommitStatus::Same { backlog },
        })
    }

    /// Moves the stream's last id up to `hw` when it is below (Redis lost entries the store applied).
    /// Returns `None` when fenced, else whether the id was moved.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn prepare<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        keys: &PartitionKeys,
        lease: &Lease,
        hw: StreamId,
    ) -> redis::RedisResult<Option<bool>> {
        let (status, _last): (String, String) = self
            .prepare
            .key(lease.key())
            .key(keys.updates())
            .arg(lease.value())
            .arg(hw.ms)
            .arg(hw.seq)
            .invoke_async(conn)
            .await?;
        Ok(match status.as_str() {
            "fenced" => None,
            "moved" => Some(true),
            _ => Some(false),
        })
    }

    /// Swaps the rebuilt scratch keys in (and marks the partition unbuilt until the next commit).
    /// Returns `false` when fenced.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn swap<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        keys: &PartitionKeys,
        lease: &Lease,
        scratch: &(String, String),
    ) -> redis::RedisResult<bool> {
        let status: String = self
            .swap
            .key(lease.key())
            .key(keys.leaderboard())
            .key(keys.names())
            .key(&scratch.0)
            .key(&scratch.1)
            .key(keys.top())
            .arg(lease.value())
            .invoke_async(conn)
            .await?;
        Ok(status == "swapped")
    }
}

/// Now as RFC 3339 UTC with milliseconds, for `updatedAt`.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let millis = now.replace_nanosecond(now.millisecond() as u32 * 1_000_000);
    millis
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}
