//! The ties rule (`docs/design.md` §5): equal scores rank by user id ascending in byte order — in the
//! commit script's partition top (also across its cut-off, where a plain `ZREVRANGE` would pick the
//! largest ids) and in the merger's global top.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::keys::PartitionKeys;
use scoreboard_testkit::RedisServer;
use scoreboard_worker::lease::LeaseScripts;
use scoreboard_worker::merger::{MergeOutcome, Merger, MergerConfig};
use scoreboard_worker::partition::scripts::{CommitInput, PartitionScripts};
use scoreboard_worker::store::memory::MemoryStore;
use scoreboard_worker::store::{UserTotal, WatermarkStore};

use crate::helpers::*;

fn merger_config(partitions: u16, board_size: usize) -> MergerConfig {
    MergerConfig {
        partitions,
        board_size,
        worker_id: "w1".into(),
        lease_ttl: Duration::from_secs(10),
        merge_interval: Duration::from_millis(10),
        merge_poll: Duration::from_secs(1),
    }
}

/// `(user, score, rank)` of a top's JSON entries.
fn ranked(top: &serde_json::Value) -> Vec<(String, u64, u64)> {
    top["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["userId"].as_str().unwrap().to_owned(),
                e["score"].as_u64().unwrap(),
                e["rank"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The top `size` of `board` by the rule, ranked from 1.
fn expected(board: &BTreeMap<String, u64>, size: usize) -> Vec<(String, u64, u64)> {
    let mut all: Vec<(String, u64)> = board.iter().map(|(u, s)| (u.clone(), *s)).collect();
    all.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
    });
    all.into_iter()
        .take(size)
        .enumerate()
        .map(|(i, (u, s))| (u, s, i as u64 + 1))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn equal_scores_rank_by_user_id_in_the_partition_top_and_the_global_top() {
    let server = RedisServer::start();
    let mut redis = redis_manager(&server.url());
    let store: Arc<dyn WatermarkStore> = Arc::new(MemoryStore::new());
    let config = worker_config("w1", 1, &[("LEADERBOARD_SIZE", "3")]);
    // Top 3 of: zed 90; carol, alice, dave, bob all 50.
    for (user, inc) in [
        ("carol", 50),
        ("zed", 90),
        ("alice", 50),
        ("dave", 50),
        ("bob", 50),
    ] {
        xadd_event(&mut redis, 1, user, None, inc).await;
    }
    let mut owner = owner(&server.url(), &store, &config, 0).await.unwrap();
    drain(&mut owner, Duration::from_secs(20)).await;
    let mut merger = Merger::new(
        merger_config(1, 3),
        redis.clone(),
        redis_config(&server.url()),
    );
    assert!(merger.try_acquire().await.unwrap());
    assert!(matches!(
        merger.merge().await.unwrap(),
        MergeOutcome::Published { .. }
    ));

    let top = partition_top(&mut redis, 0).await.unwrap();
    let order: Vec<&str> = top["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["userId"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["zed", "alice", "bob"]);
    assert_eq!(
        top["entries"][1]["name"], "alice",
        "the name defaults to the id"
    );
    let global = snapshot(&mut redis).await.unwrap();
    assert_eq!(
        rows(&global),
        [("zed".into(), 90), ("alice".into(), 50), ("bob".into(), 50)]
    );

    // Ties above the cut-off are ordered the same way.
    xadd_event(&mut redis, 1, "yan", None, 90).await;
    drain(&mut owner, Duration::from_secs(20)).await;
    merger.merge().await.unwrap();
    let global = snapshot(&mut redis).await.unwrap();
    let order: Vec<&str> = global.entries.iter().map(|e| e.user_id.as_str()).collect();
    assert_eq!(order, ["yan", "zed", "alice"]);
    assert_eq!(
        rows(&global),
        top_of(&store_totals(store.as_ref(), 1).await, 3)
    );
}

/// On random boards full of ties (ids of 1-3 bytes where upper case, lower case and digits sort
/// differently by byte; scores from a small range), spread over 3 partitions: each partition top the
/// commit script writes, and the merger's global top, equal a plain sort by the rule.
#[test]
fn the_commit_script_and_the_merger_follow_the_tie_rule_on_random_boards() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    const P: u16 = 3;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = RedisServer::start();
    let redis = {
        let _runtime = runtime.enter();
        redis_manager(&server.url())
    };
    let partitioner = Partitioner::new(P);
    let board = prop::collection::btree_map("[a-cA-C0-2]{1,3}", 1u64..6, 1..30);
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    runner
        .run(&(board, 1usize..8), |(board, size)| {
            let mut redis = redis.clone();
            let config = redis_config(&server.url());
            runtime.block_on(async move {
                let _: () = redis::cmd("FLUSHALL")
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                let scripts = PartitionScripts::new(size);
                let leases = LeaseScripts::new(Duration::from_secs(10));
                for partition in partitioner.all() {
                    let keys = PartitionKeys::new(partition);
                    let lease = leases
                        .acquire(&mut redis, &keys.lease(), &keys.epoch(), "w1")
                        .await
                        .unwrap()
                        .expect("a free lease");
                    let mine: BTreeMap<String, u64> = board
                        .iter()
                        .filter(|(u, _)| partitioner.partition_of(u) == partition)
                        .map(|(u, s)| (u.clone(), *s))
                        .collect();
                    let totals: Vec<UserTotal> = mine
                        .iter()
                        .map(|(user, score)| UserTotal {
                            user_id: user.clone(),
                            display_name: None,
                            score: *score,
                        })
                        .collect();
                    let input = CommitInput {
                        totals: &totals,
                        force: true,
                        ..CommitInput::default()
                    };
                    scripts
                        .commit(&mut redis, &keys, &lease, &input, "2026-11-29T00:00:00Z")
                        .await
                        .unwrap();
                    let top = partition_top(&mut redis, partition).await.unwrap();
                    prop_assert_eq!(
                        ranked(&top),
                        expected(&mine, size),
                        "partition {}",
                        partition
                    );
                }
                let mut merger = Merger::new(merger_config(P, size), redis.clone(), config);
                prop_assert!(merger.try_acquire().await.unwrap());
                let outcome = merger.merge().await.unwrap();
                prop_assert!(
                    matches!(outcome, MergeOutcome::Published { .. }),
                    "{:?}",
                    outcome
                );
                let global = snapshot(&mut redis).await.unwrap();
                let got: Vec<(String, u64, u64)> = global
                    .entries
                    .iter()
                    .map(|e| (e.user_id.clone(), e.score, u64::from(e.rank)))
                    .collect();
                prop_assert_eq!(got, expected(&board, size), "merger");
                Ok(())
            })
        })
        .unwrap();
}
