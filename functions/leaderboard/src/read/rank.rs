//! `GET /me`: the caller's global rank = 1 + Σ over partitions of the users ranked above them.
//!
//! Two round trips. First `me.lua` on the caller's own partition reads their score, name and the number of
//! that partition's users above them in one cut. Then `above.lua` counts, in every other partition, the
//! users with a higher score or the same score and a smaller user id (byte order), one script call per
//! partition, sent concurrently. Partitions share no users, so the sum is the global rank.

use futures::future::try_join_all;
use redis::aio::ConnectionLike;
use serde::Serialize;

use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::keys::PartitionKeys;

use super::{invalid, parse_score};

/// The caller's standing; `rank` is `None` when the user has no score yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MyRank {
    pub user_id: String,
    pub name: Option<String>,
    pub rank: Option<u64>,
    pub score: u64,
}

/// One user's global rank and score.
///
/// # Errors
/// Redis errors.
pub async fn read_my_rank<C>(
    conn: &mut C,
    partitioner: Partitioner,
    user_id: &str,
) -> redis::RedisResult<MyRank>
where
    C: ConnectionLike + Clone,
{
    static ME: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(include_str!("me.lua")));
    let own = partitioner.partition_of(user_id);
    let keys = PartitionKeys::new(own);
    let reply: Vec<String> = ME
        .key(keys.leaderboard())
        .key(keys.names())
        .arg(user_id)
        .invoke_async(conn)
        .await?;
    let [score_text, above_here, name] = reply.as_slice() else {
        return Ok(MyRank {
            user_id: user_id.to_owned(),
            name: None,
            rank: None,
            score: 0,
        });
    };
    let above_here: u64 = above_here
        .parse()
        .map_err(|e| invalid("count is not an integer", e))?;
    let elsewhere = try_join_all(
        partitioner
            .all()
            .filter(|&p| p != own)
            .map(|p| count_above(conn, p, score_text, user_id)),
    )
    .await?;
    Ok(MyRank {
        user_id: user_id.to_owned(),
        name: (!name.is_empty()).then(|| name.clone()),
        rank: Some(1 + above_here + elsewhere.iter().sum::<u64>()),
        score: parse_score(score_text),
    })
}

/// Users of partition `p` ranked above `(score, user_id)` (`above.lua`).
async fn count_above<C>(conn: &C, p: u16, score: &str, user_id: &str) -> redis::RedisResult<u64>
where
    C: ConnectionLike + Clone,
{
    static ABOVE: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(include_str!("above.lua")));
    ABOVE
        .key(PartitionKeys::new(p).leaderboard())
        .arg(score)
        .arg(user_id)
        .invoke_async(&mut conn.clone())
        .await
}
