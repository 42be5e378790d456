//! Refilling one partition's cache from the store (`docs/design.md` §5.8): the owner streams the
//! partition's totals into scratch keys named after its lease epoch, swaps them in with a fenced
//! `RENAME`, then commits an empty batch that writes the partition top (with the store's high-water
//! mark) and publishes it. A stale owner's rebuild is refused at the swap.

use futures::StreamExt;
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::keys::PartitionKeys;

use super::scripts::{CommitInput, CommitStatus, PartitionScripts, now_rfc3339};
use crate::error::WorkerError;
use crate::lease::{Lease, LeaseScripts};
use crate::store::{Watermark, WatermarkStore};

const CHUNK: usize = 1_000;

/// How a rebuild ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuilt {
    /// Swapped in; this many users.
    Done { users: usize },
    /// The lease was lost: nothing swapped in.
    Fenced,
}

/// Rebuilds partition `keys` from `store`.
///
/// # Errors
/// When the store or Redis fails; it can simply be run again.
pub async fn rebuild(
    redis: &mut RedisConn,
    store: &dyn WatermarkStore,
    scripts: &PartitionScripts,
    keys: &PartitionKeys,
    lease: &Lease,
    leases: &LeaseScripts,
) -> Result<Rebuilt, WorkerError> {
    let partition = keys.partition();
    // The high-water mark first: the totals read after it are at least that new.
    let hw = store.read(partition, &[]).await?.hw;
    let scratch = (
        format!("{}:{}", keys.rebuild_leaderboard(), lease.epoch()),
        format!("{}:{}", keys.rebuild_names(), lease.epoch()),
    );
    redis::cmd("DEL")
        .arg(&scratch.0)
        .arg(&scratch.1)
        .query_async::<()>(redis)
        .await?;
    let mut totals = store.partition_totals(partition);
    let mut users = 0;
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        let next = totals.next().await.transpose()?;
        let done = next.is_none();
        if let Some(total) = next {
            chunk.push(total);
        }
        if chunk.len() == CHUNK || (done && !chunk.is_empty()) {
            let mut pipe = redis::pipe();
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(&scratch.0);
            let mut hset = redis::cmd("HSET");
            hset.arg(&scratch.1);
            let mut named = false;
            for total in &chunk {
                zadd.arg(total.score).arg(&total.user_id);
                if let Some(name) = &total.display_name {
                    hset.arg(&total.user_id).arg(name);
                    named = true;
                }
            }
            pipe.add_command(zadd).ignore();
            if named {
                pipe.add_command(hset).ignore();
            }
            pipe.query_async::<()>(redis).await?;
            // A long rebuild keeps its lease: renewed with every chunk, fenced out if it was lost.
            if !leases.renew(redis, lease).await? {
                return Ok(Rebuilt::Fenced);
            }
            users += chunk.len();
            chunk.clear();
        }
        if done {
            break;
        }
    }
    drop(totals);
    if !scripts.swap(redis, keys, lease, &scratch).await? {
        let _: redis::RedisResult<()> = redis::cmd("DEL")
            .arg(&scratch.0)
            .arg(&scratch.1)
            .query_async(redis)
            .await;
        return Ok(Rebuilt::Fenced);
    }
    let input = CommitInput {
        hw: Some(hw.map_or_else(Default::default, |w: Watermark| w.entry)),
        force: true,
        ..CommitInput::default()
    };
    match scripts
        .commit(redis, keys, lease, &input, &now_rfc3339())
        .await?
    {
        CommitStatus::Fenced => Ok(Rebuilt::Fenced),
        _ => {
            tracing::info!(partition, users, "partition cache rebuilt from the store");
            Ok(Rebuilt::Done { users })
        }
    }
}
