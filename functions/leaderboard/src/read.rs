//! Reading the board from Redis: the stored snapshot, or (when it is missing) one computed from the
//! sorted set with the same ranking rule; and one user's rank.

use redis::aio::ConnectionLike;
use serde::Serialize;

use scoreboard_shared::redis::keys;
use scoreboard_shared::snapshot::{Entry, Snapshot};

/// The caller's standing; `rank` is `None` when the user has no score yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MyRank {
    pub user_id: String,
    pub name: Option<String>,
    pub rank: Option<u64>,
    pub score: u64,
}

/// The current snapshot in one script call.
///
/// # Errors
/// Redis errors, or a stored snapshot that is not valid JSON.
pub async fn read_snapshot<C: ConnectionLike>(
    conn: &mut C,
    size: usize,
) -> redis::RedisResult<Snapshot> {
    static SCRIPT: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(include_str!("read.lua")));
    let reply: Vec<redis::Value> = SCRIPT
        .key(keys::TOP)
        .key(keys::LEADERBOARD)
        .key(keys::NAMES)
        .key(keys::VERSION)
        .arg(size)
        .invoke_async(conn)
        .await?;
    let mut values = reply.into_iter();
    match values.next() {
        Some(redis::Value::Nil) | None => from_rows(values, size),
        Some(top) => {
            let json: String = redis::from_redis_value(top)?;
            serde_json::from_str(&json).map_err(|e| invalid("stored snapshot is not valid JSON", e))
        }
    }
}

fn from_rows(
    mut values: impl Iterator<Item = redis::Value>,
    size: usize,
) -> redis::RedisResult<Snapshot> {
    let version: u64 = values
        .next()
        .map(redis::from_redis_value)
        .transpose()?
        .unwrap_or(0);
    let flat: Vec<String> = values
        .map(redis::from_redis_value)
        .collect::<Result<_, _>>()?;
    let mut rows: Vec<(String, u64, String)> = flat
        .chunks_exact(3)
        .map(|c| (c[0].clone(), parse_score(&c[1]), c[2].clone()))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.dedup_by(|a, b| a.0 == b.0);
    let entries = rows
        .into_iter()
        .take(size)
        .enumerate()
        .map(|(i, (user_id, score, name))| Entry {
            rank: i as u32 + 1,
            name: if name.is_empty() {
                user_id.clone()
            } else {
                name
            },
            user_id,
            score,
        })
        .collect();
    Ok(Snapshot {
        version,
        updated_at: Snapshot::empty().updated_at,
        entries,
    })
}

/// One user's rank and score in one script call.
///
/// # Errors
/// Redis errors.
pub async fn read_my_rank<C: ConnectionLike>(
    conn: &mut C,
    user_id: &str,
) -> redis::RedisResult<MyRank> {
    static SCRIPT: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(include_str!("me.lua")));
    let reply: Vec<String> = SCRIPT
        .key(keys::LEADERBOARD)
        .key(keys::NAMES)
        .arg(user_id)
        .invoke_async(conn)
        .await?;
    Ok(match reply.as_slice() {
        [score, rank, name] => MyRank {
            user_id: user_id.to_owned(),
            name: (!name.is_empty()).then(|| name.clone()),
            rank: Some(
                rank.parse()
                    .map_err(|e| invalid("rank is not an integer", e))?,
            ),
            score: parse_score(score),
        },
        _ => MyRank {
            user_id: user_id.to_owned(),
            name: None,
            rank: None,
            score: 0,
        },
    })
}

/// Sorted-set scores come back as text of a double; totals are integers below 2^53.
fn parse_score(text: &str) -> u64 {
    text.parse::<f64>().map_or(0, |f| f.max(0.0) as u64)
}

fn invalid(what: &'static str, e: impl std::fmt::Display) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Client, what, e.to_string()))
}
