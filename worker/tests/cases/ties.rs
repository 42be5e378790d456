//! The ties rule: equal scores are ranked by user id ascending — also across the board's cut-off,
//! where plain `ZREVRANGE` would pick the largest ids.

use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::RedisServer;

use crate::helpers::{self, StoreUnderTest, xadd_event};

#[tokio::test(flavor = "multi_thread")]
async fn equal_scores_are_ranked_by_user_id_ascending() {
    let redis_server = RedisServer::start();
    let target = StoreUnderTest::mongo();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    // Top 3 of: zed 90; carol, alice, bob, dave all 50.
    for (user, inc) in [
        ("carol", 50),
        ("zed", 90),
        ("alice", 50),
        ("dave", 50),
        ("bob", 50),
    ] {
        xadd_event(&mut redis, user, None, inc).await;
    }
    let config = helpers::worker_config("w", &[("LEADERBOARD_SIZE", "3")]);
    let mut worker = helpers::worker(&redis, &store, config).await;

    worker.step(&Shutdown::never()).await.unwrap();

    let snap = helpers::snapshot(&mut redis).await.expect("snapshot");
    let order: Vec<(&str, u32)> = snap
        .entries
        .iter()
        .map(|e| (e.user_id.as_str(), e.rank))
        .collect();
    assert_eq!(order, [("zed", 1), ("alice", 2), ("bob", 3)]);
    // Names default to the user id when the token had none.
    assert_eq!(snap.entries[1].name, "alice");

    // Ties above the cut-off are ordered the same way.
    xadd_event(&mut redis, "yan", None, 90).await;
    worker.step(&Shutdown::never()).await.unwrap();
    let snap = helpers::snapshot(&mut redis).await.unwrap();
    let order: Vec<&str> = snap.entries.iter().map(|e| e.user_id.as_str()).collect();
    assert_eq!(order, ["yan", "zed", "alice"]);
    assert_eq!(
        helpers::rows(&snap),
        helpers::store_top(store.as_ref(), 3).await
    );
}

/// One rule, three readers: on random boards full of ties, the commit script's snapshot, the leaderboard
/// function's fallback read from the sorted set, and `/me` all rank by score descending, then user id
/// ascending (byte order), exactly as a plain sort does.
#[test]
fn the_tie_rule_agrees_across_the_commit_script_the_read_fallback_and_me() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use redis::AsyncCommands;
    use scoreboard_shared::redis::keys;
    use scoreboard_worker::store::UserTotal;
    use scoreboard_worker::{CommitInput, CommitScript};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let redis_server = RedisServer::start();
    let redis = runtime.block_on(async {
        redis_server
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    });
    // Ids of 1-3 bytes from a small alphabet (upper, lower, digits sort differently by byte), scores
    // from a small range: many ties, including across the board's cut-off.
    let board = prop::collection::btree_map("[a-cA-C0-2]{1,3}", 1u64..6, 1..25);
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&(board, 1usize..8), |(board, size)| {
            let mut redis = redis.clone();
            runtime.block_on(async {
                let _: () = redis::cmd("FLUSHALL")
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                let totals: Vec<UserTotal> = board
                    .iter()
                    .map(|(user, score)| UserTotal {
                        user_id: user.clone(),
                        display_name: None,
                        score: *score,
                    })
                    .collect();
                let mut expected: Vec<(String, u64)> =
                    board.iter().map(|(u, s)| (u.clone(), *s)).collect();
                expected.sort_by(|a, b| {
                    b.1.cmp(&a.1)
                        .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
                });

                CommitScript::new(size)
                    .run(
                        &mut redis,
                        &CommitInput {
                            totals: &totals,
                            snapshot: true,
                            ..CommitInput::default()
                        },
                        "2026-11-29T00:00:00Z",
                    )
                    .await
                    .unwrap();
                let committed = leaderboard::read_snapshot(&mut redis, size).await.unwrap();
                let _: () = redis.del(keys::TOP).await.unwrap();
                let fallback = leaderboard::read_snapshot(&mut redis, size).await.unwrap();

                let top: Vec<(String, u64)> = expected.iter().take(size).cloned().collect();
                let rows =
                    |entries: &[scoreboard_shared::snapshot::Entry]| -> Vec<(String, u64, u32)> {
                        entries
                            .iter()
                            .map(|e| (e.user_id.clone(), e.score, e.rank))
                            .collect()
                    };
                let want: Vec<(String, u64, u32)> = top
                    .iter()
                    .enumerate()
                    .map(|(i, (u, s))| (u.clone(), *s, i as u32 + 1))
                    .collect();
                prop_assert_eq!(rows(&committed.entries), want.clone(), "commit script");
                prop_assert_eq!(rows(&fallback.entries), want, "read fallback");
                for (position, (user, score)) in expected.iter().enumerate() {
                    let mine = leaderboard::read_my_rank(&mut redis, user).await.unwrap();
                    prop_assert_eq!(
                        (mine.rank, mine.score),
                        (Some(position as u64 + 1), *score),
                        "/me of {}",
                        user
                    );
                }
                Ok(())
            })
        })
        .unwrap();
}
