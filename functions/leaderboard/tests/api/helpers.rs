//! Arrangements for the leaderboard function's handler tests: a Redis per test (standalone, or a cluster
//! for the reads that run on both), the service built from env pairs, and the partitioned layout seeded
//! directly (`{sb:p}:lb`, `{sb:p}:names`, `{sb:p}:top`) as the
//! worker leaves it; tokens and events from the test kit.

use redis::AsyncCommands;
use serde_json::json;

use leaderboard::{LeaderboardService, ranks_before};
use scoreboard_shared::config::Env;
use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::keys::PartitionKeys;
pub use scoreboard_testkit::lambda_event::{Answer, answer, event};

pub(crate) use scoreboard_testkit::on_standalone_and_cluster;
pub use scoreboard_testkit::redis_under_test::{Inspect, Target, TestConn, TestRedis};

pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
pub const BOARD: &str = "/api/v1/scores/leaderboard";
pub const ME: &str = "/api/v1/scores/me";

/// An HS256 token for `sub`, valid for an hour.
pub fn hs_token(sub: &str) -> String {
    scoreboard_testkit::token::hs256(SECRET, sub, &format!("Player {sub}"))
}

/// A Redis (standalone or cluster) plus the leaderboard service configured against it.
pub struct LeaderboardHarness {
    pub redis: TestRedis,
    pub service: LeaderboardService,
}

impl LeaderboardHarness {
    /// On standalone Redis.
    pub fn start(extra: &[(&str, &str)]) -> Self {
        Self::on(Target::Standalone, extra)
    }

    /// On the Redis `target` names.
    pub fn on(target: Target, extra: &[(&str, &str)]) -> Self {
        let redis = TestRedis::start(target);
        let env = redis.env();
        let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        pairs.push(("JWT_SECRET", SECRET));
        pairs.extend_from_slice(extra);
        let service = LeaderboardService::from_env(&Env::from_pairs(pairs.iter().copied()))
            .expect("valid test config");
        Self { redis, service }
    }

    pub async fn get(&self, path: &str, token: Option<&str>, extra: &[(&str, &str)]) -> Answer {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(auth) = auth.as_deref() {
            headers.push(("authorization", auth));
        }
        answer(
            self.service
                .handle(event("GET", path, &headers, None))
                .await,
        )
    }

    pub async fn conn(&self) -> TestConn {
        self.redis.connection().await
    }
}

/// `(rank, userId, score)` of each entry of a board answer.
pub fn ranked_rows(board: &serde_json::Value) -> Vec<(u64, String, u64)> {
    board["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["rank"].as_u64().unwrap(),
                e["userId"].as_str().unwrap().to_owned(),
                e["score"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `users` with their totals in their partitions' sets (`{sb:p}:lb`), as the commit script leaves them;
/// a user with a name also gets it in `{sb:p}:names`.
pub async fn seed_sets(
    conn: &mut TestConn,
    partitioner: Partitioner,
    users: &[(&str, u64, Option<&str>)],
) {
    for (user, score, name) in users {
        let keys = PartitionKeys::new(partitioner.partition_of(user));
        let _: () = conn.zadd(keys.leaderboard(), *user, *score).await.unwrap();
        if let Some(name) = name {
            let _: () = conn.hset(keys.names(), *user, *name).await.unwrap();
        }
    }
}

/// Partition `p`'s top JSON as the commit script writes it: its top `size` of `users` (all of p) by the
/// ranking rule; names default to the user id.
pub async fn set_partition_top(
    conn: &mut TestConn,
    p: u16,
    size: usize,
    updated_at: &str,
    users: &[(&str, u64, Option<&str>)],
) {
    let mut rows = users.to_vec();
    rows.sort_by(|a, b| ranks_before((a.1, a.0), (b.1, b.0)));
    let entries: Vec<serde_json::Value> = rows
        .iter()
        .take(size)
        .enumerate()
        .map(|(i, (user, score, name))| {
            json!({"rank": i + 1, "userId": user, "name": name.unwrap_or(user), "score": score})
        })
        .collect();
    let top = json!({"version": 1_000 + u64::from(p), "updatedAt": updated_at,
                     "hw": format!("{}-0", 1_700_000_000_000u64 + u64::from(p)), "entries": entries});
    let _: () = conn
        .set(PartitionKeys::new(p).top(), top.to_string())
        .await
        .unwrap();
}

/// Every partition in `built` gets its top from the users that belong to it (possibly none).
pub async fn set_partition_tops(
    conn: &mut TestConn,
    partitioner: Partitioner,
    built: impl IntoIterator<Item = u16>,
    size: usize,
    users: &[(&str, u64, Option<&str>)],
) {
    for p in built {
        let mine: Vec<_> = users
            .iter()
            .copied()
            .filter(|(user, _, _)| partitioner.partition_of(user) == p)
            .collect();
        set_partition_top(conn, p, size, "2026-11-29T10:00:00Z", &mine).await;
    }
}
