//! The worker's reads of `{sb}:updates`: creating the consumer group, reading new entries, reclaiming
//! idle ones (`XAUTOCLAIM`) with their delivery counts, the pending count, and trimming acked entries.
//!
//! Invariant of [`trim_acked`]: it never removes an entry that is pending or not yet delivered.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::streams::{
    StreamAutoClaimReply, StreamInfoGroupsReply, StreamPendingCountReply, StreamPendingReply,
    StreamReadReply,
};
use redis::{RedisResult, Value};
use scoreboard_shared::redis::keys::{CONSUMER_GROUP, UPDATES};

/// One entry as delivered, before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry {
    pub id: String,
    pub fields: HashMap<String, Value>,
    /// How many times the group has delivered it, this delivery included.
    pub deliveries: u64,
}

/// Creates the consumer group (and the stream) if missing; the group starts at the stream's beginning
/// so updates accepted before any worker ran are not skipped.
///
/// # Errors
/// When Redis fails for another reason than the group existing.
pub async fn ensure_group<C: ConnectionLike + Send>(conn: &mut C) -> RedisResult<()> {
    let created: RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(UPDATES)
        .arg(CONSUMER_GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// `XREADGROUP … COUNT n BLOCK ms STREAMS {sb}:updates >`: new entries for this consumer.
///
/// # Errors
/// When Redis fails (a missing group is recreated by the caller via [`ensure_group`]).
pub async fn read_new<C: ConnectionLike + Send>(
    conn: &mut C,
    consumer: &str,
    count: usize,
    block: Duration,
) -> RedisResult<Vec<RawEntry>> {
    let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(CONSUMER_GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(block.as_millis() as u64)
        .arg("STREAMS")
        .arg(UPDATES)
        .arg(">")
        .query_async(conn)
        .await?;
    Ok(reply
        .into_iter()
        .flat_map(|r| r.keys)
        .flat_map(|k| k.ids)
        .map(|id| RawEntry {
            id: id.id,
            fields: id.map,
            deliveries: 1,
        })
        .collect())
}

/// `XAUTOCLAIM` of entries idle at least `min_idle`, starting at `cursor`; returns the next cursor and
/// the claimed entries with their delivery counts (this claim included).
///
/// # Errors
/// When Redis fails.
pub async fn claim_idle<C: ConnectionLike + Send>(
    conn: &mut C,
    consumer: &str,
    min_idle: Duration,
    cursor: &str,
    count: usize,
) -> RedisResult<(String, Vec<RawEntry>)> {
    let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
        .arg(UPDATES)
        .arg(CONSUMER_GROUP)
        .arg(consumer)
        .arg(min_idle.as_millis() as u64)
        .arg(cursor)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    if reply.claimed.is_empty() {
        return Ok((reply.next_stream_id, Vec::new()));
    }
    let first = reply
        .claimed
        .first()
        .map(|e| e.id.clone())
        .unwrap_or_default();
    let last = reply
        .claimed
        .last()
        .map(|e| e.id.clone())
        .unwrap_or_default();
    let pending: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(UPDATES)
        .arg(CONSUMER_GROUP)
        .arg(&first)
        .arg(&last)
        .arg(reply.claimed.len())
        .arg(consumer)
        .query_async(conn)
        .await?;
    let counts: HashMap<String, u64> = pending
        .ids
        .into_iter()
        .map(|p| (p.id, p.times_delivered as u64))
        .collect();
    let entries = reply
        .claimed
        .into_iter()
        .map(|id| RawEntry {
            deliveries: counts.get(&id.id).copied().unwrap_or(1),
            id: id.id,
            fields: id.map,
        })
        .collect();
    Ok((reply.next_stream_id, entries))
}

/// How many entries are delivered but not acked, and the oldest of them.
///
/// # Errors
/// When Redis fails.
pub async fn pending_summary<C: ConnectionLike + Send>(
    conn: &mut C,
) -> RedisResult<(usize, Option<String>)> {
    let reply: StreamPendingReply = redis::cmd("XPENDING")
        .arg(UPDATES)
        .arg(CONSUMER_GROUP)
        .query_async(conn)
        .await?;
    Ok(match reply {
        StreamPendingReply::Data(data) if data.count > 0 => (data.count, Some(data.start_id)),
        _ => (0, None),
    })
}

/// Trims acked entries: `XTRIM MINID` at the oldest pending entry, or just past the group's last
/// delivered entry when nothing is pending. Returns the number of entries removed.
///
/// # Errors
/// When Redis fails.
pub async fn trim_acked<C: ConnectionLike + Send>(conn: &mut C) -> RedisResult<u64> {
    // Read the last delivered id first: entries delivered after this point are above it, so a pending
    // summary read afterwards cannot make us trim an entry delivered in between.
    let groups: StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(UPDATES)
        .query_async(conn)
        .await?;
    let Some(group) = groups.groups.into_iter().find(|g| g.name == CONSUMER_GROUP) else {
        return Ok(0);
    };
    let (_, oldest_pending) = pending_summary(conn).await?;
    let min_id = match oldest_pending {
        Some(id) => id,
        None => match next_id(&group.last_delivered_id) {
            Some(id) => id,
            None => return Ok(0),
        },
    };
    redis::cmd("XTRIM")
        .arg(UPDATES)
        .arg("MINID")
        .arg(min_id)
        .query_async(conn)
        .await
}

/// The smallest stream id greater than `id` (`ms-seq` → `ms-(seq+1)`); `None` for `0-0` or garbage.
pub fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    if ms == 0 && seq == 0 {
        return None;
    }
    Some(match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms.checked_add(1)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_id_steps_the_sequence() {
        assert_eq!(next_id("5-1").as_deref(), Some("5-2"));
        assert_eq!(next_id(&format!("5-{}", u64::MAX)).as_deref(), Some("6-0"));
        assert_eq!(next_id("0-0"), None);
        assert_eq!(next_id("garbage"), None);
    }
}
