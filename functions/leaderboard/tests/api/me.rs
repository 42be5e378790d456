//! `GET /api/v1/scores/me`: the caller's global rank summed over partitions with one tie rule, their score
//! from their own partition, and the answer for a user with no score; on standalone Redis and on a 3-master
//! cluster with the partitions on every master.

use serde_json::json;

use scoreboard_shared::partition::Partitioner;

use crate::helpers::*;

on_standalone_and_cluster!(
    me_sums_ranks_over_partitions_with_ties_across_partitions_by_user_id,
    a_user_with_no_score_has_no_rank,
);

async fn me_sums_ranks_over_partitions_with_ties_across_partitions_by_user_id(target: Target) {
    let h = LeaderboardHarness::on(target, &[("PARTITIONS", "4")]);
    let mut conn = h.conn().await;
    let partitioner = Partitioner::new(4);
    // In board order; yan and zed tie across partitions, and so do the 50s ("B" sorts before "a").
    let board = [
        ("yan", 90),
        ("zed", 90),
        ("B", 50),
        ("a", 50),
        ("ann", 50),
        ("bob", 50),
        ("d", 50),
        ("eve", 50),
        ("ivy", 50),
        ("kim", 10),
    ];
    let users: Vec<(&str, u64, Option<&str>)> = board
        .iter()
        .map(|(user, score)| (*user, *score, Some("Named")))
        .collect();
    let spread: std::collections::BTreeSet<u16> = board
        .iter()
        .map(|(user, _)| partitioner.partition_of(user))
        .collect();
    assert_eq!(spread.len(), 4, "every partition holds some of the board");
    h.redis
        .assert_on_every_master(partitioner, board.iter().map(|(user, _)| *user));
    seed_sets(&mut conn, partitioner, &users).await;

    for (position, (user, score)) in board.iter().enumerate() {
        let answer = h.get(ME, Some(&hs_token(user)), &[]).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.json,
            json!({"userId": user, "name": "Named", "rank": position + 1, "score": score}),
            "{user}"
        );
    }
}

async fn a_user_with_no_score_has_no_rank(target: Target) {
    let h = LeaderboardHarness::on(target, &[("PARTITIONS", "4")]);
    let mut conn = h.conn().await;
    seed_sets(&mut conn, Partitioner::new(4), &[("ann", 50, Some("Ann"))]).await;

    let newcomer = h.get(ME, Some(&hs_token("zed")), &[]).await;

    assert_eq!(newcomer.status, 200);
    assert_eq!(
        newcomer.json,
        json!({"userId":"zed","name":null,"rank":null,"score":0})
    );
}

#[tokio::test]
async fn with_one_partition_me_counts_ties_by_user_id() {
    let h = LeaderboardHarness::start(&[("PARTITIONS", "1")]);
    let mut conn = h.conn().await;
    let users = [
        ("a", 90, None),
        ("d", 50, None),
        ("c", 50, None),
        ("b", 50, Some("Bea")),
    ];
    seed_sets(&mut conn, Partitioner::new(1), &users).await;

    let answer = h.get(ME, Some(&hs_token("c")), &[]).await;
    assert_eq!(
        answer.json,
        json!({"userId":"c","name":null,"rank":3,"score":50})
    );
    let answer = h.get(ME, Some(&hs_token("b")), &[]).await;
    assert_eq!(
        answer.json,
        json!({"userId":"b","name":"Bea","rank":2,"score":50})
    );
}
