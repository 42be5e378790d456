//! `GET /leaderboard`: the merger's global snapshot `{sb}:top` in one `GET`; while it is missing (a new
//! deployment before the first merge, or Redis lost it), the top merged from the partitions in one pass.
//!
//! The fallback reads every `{sb:p}:top` concurrently; a partition whose top is missing (not built yet) or
//! unreadable has its candidates computed from `{sb:p}:lb` and `{sb:p}:names` by `read.lua`, one script call per such
//! partition. The candidates are ranked by [`ranks_before`] and cut at `size`. A fallback answer carries the
//! version of the last published snapshot (`{sb}:version`, 0 before any), as v1's fallback did: the next
//! snapshot the merger publishes has a higher version, so a client holding the fallback's `ETag` always
//! gets it. Its `updatedAt` is the newest `updatedAt` of the partition tops read (the epoch when none).

use futures::future::{try_join, try_join_all};
use redis::aio::ConnectionLike;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::warn;

use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::keys::{self, PartitionKeys};
use scoreboard_shared::snapshot::{Entry, Snapshot};

use super::{invalid, parse_score, ranks_before};

/// `{sb:p}:top` as the worker's commit script writes it; `version` and `hw` are the partition's own and
/// play no part in the global answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartitionTop {
    #[serde(default)]
    updated_at: String,
    entries: Vec<Entry>,
}

/// A candidate row for the global top: user, score, display name.
type Row = (String, u64, String);

/// The current board: `{sb}:top`, or the partitions' tops merged when it is missing.
///
/// # Errors
/// Redis errors, or a global snapshot that is not valid JSON (a partition top that is not valid JSON is
/// logged and computed from its set instead).
pub async fn read_snapshot<C>(
    conn: &mut C,
    partitioner: Partitioner,
    size: usize,
) -> redis::RedisResult<Snapshot>
where
    C: ConnectionLike + Clone,
{
    let top: Option<String> = redis::cmd("GET").arg(keys::TOP).query_async(conn).await?;
    match top {
        Some(json) => {
            serde_json::from_str(&json).map_err(|e| invalid("stored snapshot is not valid JSON", e))
        }
        None => merge_partitions(conn, partitioner, size).await,
    }
}

async fn merge_partitions<C>(
    conn: &C,
    partitioner: Partitioner,
    size: usize,
) -> redis::RedisResult<Snapshot>
where
    C: ConnectionLike + Clone,
{
    let version = get::<_, u64>(conn, keys::VERSION.to_owned());
    let tops = try_join_all(
        partitioner
            .all()
            .map(|p| get::<_, String>(conn, PartitionKeys::new(p).top())),
    );
    let (version, tops) = try_join(version, tops).await?;

    let mut rows: Vec<Row> = Vec::new();
    let mut updated_at: Option<(OffsetDateTime, String)> = None;
    let mut unbuilt = Vec::new();
    for (p, top) in partitioner.all().zip(tops) {
        let Some(json) = top else {
            unbuilt.push(p);
            continue;
        };
        let top: PartitionTop = match serde_json::from_str(&json) {
            Ok(top) => top,
            Err(error) => {
                warn!(partition = p, error = %error, "partition top is not valid JSON; computing it from the set");
                unbuilt.push(p);
                continue;
            }
        };
        if let Ok(at) = OffsetDateTime::parse(&top.updated_at, &Rfc3339)
            && updated_at.as_ref().is_none_or(|(newest, _)| at > *newest)
        {
            updated_at = Some((at, top.updated_at));
        }
        rows.extend(
            top.entries
                .into_iter()
                .map(|e| (e.user_id, e.score, e.name)),
        );
    }
    let computed = try_join_all(unbuilt.into_iter().map(|p| computed_top(conn, p, size))).await?;
    rows.extend(computed.into_iter().flatten());

    Ok(Snapshot {
        version: version.unwrap_or(0),
        updated_at: updated_at.map_or_else(|| Snapshot::empty().updated_at, |(_, text)| text),
        entries: ranked(rows, size),
    })
}

/// One `GET` of one key on its own slot, sent concurrently with the others on the shared connection.
async fn get<C, T>(conn: &C, key: String) -> redis::RedisResult<Option<T>>
where
    C: ConnectionLike + Clone,
    T: redis::FromRedisValue,
{
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn.clone())
        .await
}

/// The candidates for partition `p`'s top `size`, from its set (`read.lua`), for a partition not built yet.
async fn computed_top<C>(conn: &C, p: u16, size: usize) -> redis::RedisResult<Vec<Row>>
where
    C: ConnectionLike + Clone,
{
    static SCRIPT: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(include_str!("read.lua")));
    let keys = PartitionKeys::new(p);
    let flat: Vec<String> = SCRIPT
        .key(keys.leaderboard())
        .key(keys.names())
        .arg(size)
        .invoke_async(&mut conn.clone())
        .await?;
    Ok(flat
        .chunks_exact(3)
        .map(|c| (c[0].clone(), parse_score(&c[1]), c[2].clone()))
        .collect())
}

/// The top `size` of `rows` by the ranking rule, ranked 1..n; an empty name shows the user id.
fn ranked(mut rows: Vec<Row>, size: usize) -> Vec<Entry> {
    rows.sort_by(|a, b| ranks_before((a.1, &a.0), (b.1, &b.0)));
    rows.into_iter()
        .take(size)
        .enumerate()
        .map(|(i, (user_id, score, name))| Entry {
            rank: u32::try_from(i + 1).unwrap_or(u32::MAX),
            name: if name.is_empty() {
                user_id.clone()
            } else {
                name
            },
            user_id,
            score,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: &str, score: u64) -> Row {
        (user.to_owned(), score, String::new())
    }

    #[test]
    fn ranked_orders_by_score_then_user_bytes_cuts_and_reranks() {
        let rows = vec![
            row("b", 5),
            row("a", 9),
            row("B", 5),
            row("c", 5),
            row("z", 1),
        ];
        let entries = ranked(rows, 3);
        let got: Vec<(u32, &str, u64)> = entries
            .iter()
            .map(|e| (e.rank, e.user_id.as_str(), e.score))
            .collect();
        assert_eq!(got, [(1, "a", 9), (2, "B", 5), (3, "b", 5)]);
        assert_eq!(entries[0].name, "a", "an empty name shows the user id");
    }
}
