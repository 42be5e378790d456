//! One tie rule across partitions: on random boards full of ties, spread over a random number of
//! partitions, some built (their top as the commit script writes it) and some not (computed from their
//! set), the merged board and `/me` rank exactly as a plain sort by score descending, then user id
//! ascending in byte order. On standalone Redis and on a 3-master cluster.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::helpers::{seed_sets, set_partition_tops};
use scoreboard_shared::partition::Partitioner;
use scoreboard_testkit::redis_under_test::{Inspect, Target, TestRedis};

mod the_tie_rule_agrees_between_the_merged_board_and_me_across_partitions {
    use scoreboard_testkit::redis_under_test::Target;

    #[test]
    fn standalone() {
        super::the_tie_rule_agrees_between_the_merged_board_and_me_across_partitions(
            Target::Standalone,
        );
    }

    #[test]
    fn cluster() {
        super::the_tie_rule_agrees_between_the_merged_board_and_me_across_partitions(
            Target::Cluster,
        );
    }
}

fn the_tie_rule_agrees_between_the_merged_board_and_me_across_partitions(target: Target) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let redis = TestRedis::start(target);
    let conn = runtime.block_on(redis.connection());
    // Ids of 1-3 bytes from a small alphabet (upper, lower, digits sort differently by byte and by
    // locale), scores from a small range: many ties, across partitions and across the board's cut-off.
    let board = prop::collection::btree_map("[a-cA-C0-2]{1,3}", 1u64..6, 0..25);
    let shape = (
        board,
        1usize..8,
        1u16..6,
        prop::collection::vec(any::<bool>(), 6),
    );
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&shape, |(board, size, partitions, built)| {
            let mut conn = conn.clone();
            runtime.block_on(async {
                redis.flush_all();
                let partitioner = Partitioner::new(partitions);
                let users = users(&board);
                seed_sets(&mut conn, partitioner, &users).await;
                let built = partitioner.all().filter(|&p| built[usize::from(p)]);
                set_partition_tops(&mut conn, partitioner, built, size, &users).await;
                let mut expected: Vec<(String, u64)> =
                    board.iter().map(|(u, s)| (u.clone(), *s)).collect();
                expected.sort_by(|a, b| {
                    b.1.cmp(&a.1)
                        .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
                });

                let merged = leaderboard::read_snapshot(&mut conn, partitioner, size)
                    .await
                    .unwrap();

                let got: Vec<(String, u64, u32)> = merged
                    .entries
                    .iter()
                    .map(|e| (e.user_id.clone(), e.score, e.rank))
                    .collect();
                let want: Vec<(String, u64, u32)> = expected
                    .iter()
                    .take(size)
                    .enumerate()
                    .map(|(i, (u, s))| (u.clone(), *s, i as u32 + 1))
                    .collect();
                prop_assert_eq!(got, want, "merged board");
                for (position, (user, score)) in expected.iter().enumerate() {
                    let mine = leaderboard::read_my_rank(&mut conn, partitioner, user)
                        .await
                        .unwrap();
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

fn users(board: &BTreeMap<String, u64>) -> Vec<(&str, u64, Option<&str>)> {
    board.iter().map(|(u, s)| (u.as_str(), *s, None)).collect()
}
