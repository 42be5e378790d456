//! Refilling the Redis cache (`{sb}:lb`, `{sb}:names`, `{sb}:top`) from the store, the system of record.
//! Chunks go through the same commit script (`ZADD GT`, so a concurrent worker's newer totals win);
//! only the last chunk recomputes the snapshot. A worker that starts with an empty set while the store
//! has data rebuilds once, guarded by a `SET NX` lock so two workers do not both do it.

use futures::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use scoreboard_shared::redis::keys;

use crate::store::{ScoreStore, UserTotal};

use crate::commit::{CommitInput, CommitScript, now_rfc3339};
use crate::error::WorkerError;

const LOCK_TTL_MS: u64 = 120_000;
const CHUNK: usize = 1_000;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildOutcome {
    pub users: usize,
    pub version: u64,
}

/// Refills the cache from every total in the store.
///
/// # Errors
/// When the store or Redis fails (a rebuild can simply be run again).
pub async fn rebuild(
    redis: &mut ConnectionManager,
    store: &dyn ScoreStore,
    board_size: usize,
) -> Result<RebuildOutcome, WorkerError> {
    let script = CommitScript::new(board_size);
    let mut totals = store.all_totals();
    let mut chunk: Vec<UserTotal> = Vec::with_capacity(CHUNK);
    let mut users = 0;
    while let Some(total) = totals.next().await {
        chunk.push(total?);
        if chunk.len() == CHUNK {
            users += flush(redis, &script, &mut chunk, false).await?;
        }
    }
    users += chunk.len();
    let outcome = script
        .run(
            redis,
            &CommitInput {
                totals: &chunk,
                snapshot: true,
                ..CommitInput::default()
            },
            &now_rfc3339(),
        )
        .await?;
    tracing::info!(
        users,
        version = outcome.version,
        "cache rebuilt from the store"
    );
    Ok(RebuildOutcome {
        users,
        version: outcome.version,
    })
}

async fn flush(
    redis: &mut ConnectionManager,
    script: &CommitScript,
    chunk: &mut Vec<UserTotal>,
    snapshot: bool,
) -> Result<usize, WorkerError> {
    let input = CommitInput {
        totals: chunk,
        snapshot,
        ..CommitInput::default()
    };
    script.run(redis, &input, &now_rfc3339()).await?;
    let n = chunk.len();
    chunk.clear();
    Ok(n)
}

/// Rebuilds when `{sb}:lb` is empty but the store is not, unless another worker holds the lock.
/// Returns the outcome when this worker rebuilt.
///
/// # Errors
/// When the store or Redis fails.
pub async fn rebuild_if_empty(
    redis: &mut ConnectionManager,
    store: &dyn ScoreStore,
    board_size: usize,
) -> Result<Option<RebuildOutcome>, WorkerError> {
    let cached: u64 = redis.zcard(keys::LEADERBOARD).await?;
    if cached > 0 {
        return Ok(None);
    }
    let first = store.all_totals().next().await.transpose()?;
    if first.is_none() {
        return Ok(None);
    }
    let locked: bool = redis::cmd("SET")
        .arg(keys::REBUILD_LOCK)
        .arg(std::process::id())
        .arg("NX")
        .arg("PX")
        .arg(LOCK_TTL_MS)
        .query_async::<Option<String>>(redis)
        .await?
        .is_some();
    if !locked {
        tracing::info!("cache is empty but another worker is rebuilding it");
        return Ok(None);
    }
    // Another worker may have finished a rebuild between our check and our lock.
    let cached: u64 = redis.zcard(keys::LEADERBOARD).await?;
    if cached > 0 {
        let _: redis::RedisResult<()> = redis.del(keys::REBUILD_LOCK).await;
        return Ok(None);
    }
    let result = rebuild(redis, store, board_size).await;
    let _: redis::RedisResult<()> = redis.del(keys::REBUILD_LOCK).await;
    result.map(Some)
}
