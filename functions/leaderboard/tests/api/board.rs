//! `GET /api/v1/scores/leaderboard`: the global snapshot `{sb}:top` with its version as `ETag`/`304`; while
//! it is missing, the partitions' tops merged (ties across partitions by user id), unbuilt partitions
//! computed from their sets, and the last published version. The reads run on standalone Redis and on a
//! 3-master cluster with the partitions on every master.

use redis::AsyncCommands;
use serde_json::json;

use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::keys::{self, PartitionKeys};
use scoreboard_shared::snapshot::{Entry, Snapshot};

use crate::helpers::*;

on_standalone_and_cluster!(
    returns_the_global_snapshot_with_its_version_as_etag,
    without_a_global_snapshot_partition_tops_are_merged_with_ties_across_partitions_by_user_id,
    a_partition_not_built_yet_is_computed_from_its_set,
);

async fn returns_the_global_snapshot_with_its_version_as_etag(target: Target) {
    let h = LeaderboardHarness::on(target, &[("PARTITIONS", "4")]);
    let mut conn = h.conn().await;
    let snapshot = Snapshot {
        version: 5,
        updated_at: "2026-11-28T16:00:00Z".into(),
        entries: vec![Entry {
            rank: 1,
            user_id: "u1".into(),
            name: "Ann".into(),
            score: 120,
        }],
    };
    let _: () = conn
        .set(keys::TOP, serde_json::to_string(&snapshot).unwrap())
        .await
        .unwrap();
    // Newer partition tops do not change the answer: the merger's snapshot is the board.
    let partitioner = Partitioner::new(4);
    set_partition_tops(
        &mut conn,
        partitioner,
        partitioner.all(),
        10,
        &[("zed", 900, None)],
    )
    .await;
    let token = hs_token("viewer");

    let answer = h.get(BOARD, Some(&token), &[]).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("etag"), Some("\"5\""));
    assert_eq!(answer.header("cache-control"), Some("no-cache"));
    assert_eq!(
        answer.json,
        json!({"version":5,"updatedAt":"2026-11-28T16:00:00Z",
               "entries":[{"rank":1,"userId":"u1","name":"Ann","score":120}]})
    );

    let not_modified = h
        .get(BOARD, Some(&token), &[("if-none-match", "\"5\"")])
        .await;
    assert_eq!(not_modified.status, 304);
    assert_eq!(
        not_modified.json,
        serde_json::Value::Null,
        "304 has no body"
    );
    assert_eq!(not_modified.header("etag"), Some("\"5\""));

    let stale = h
        .get(BOARD, Some(&token), &[("if-none-match", "\"4\"")])
        .await;
    assert_eq!(stale.status, 200);
}

#[tokio::test]
async fn an_empty_board_is_version_zero_with_no_entries() {
    let h = LeaderboardHarness::start(&[]);
    let answer = h.get(BOARD, Some(&hs_token("v")), &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json,
        json!({"version":0,"updatedAt":"1970-01-01T00:00:00Z","entries":[]})
    );
    assert_eq!(answer.header("etag"), Some("\"0\""));
}

#[tokio::test]
async fn built_partitions_with_no_users_merge_to_an_empty_board_at_the_last_version() {
    let h = LeaderboardHarness::start(&[("PARTITIONS", "3")]);
    let mut conn = h.conn().await;
    let partitioner = Partitioner::new(3);
    set_partition_tops(&mut conn, partitioner, partitioner.all(), 10, &[]).await;
    let _: () = conn.set(keys::VERSION, 12).await.unwrap();

    let answer = h.get(BOARD, Some(&hs_token("v")), &[]).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["entries"], json!([]));
    assert_eq!(answer.json["version"], 12);
    assert_eq!(answer.json["updatedAt"], "2026-11-29T10:00:00Z");
}

async fn without_a_global_snapshot_partition_tops_are_merged_with_ties_across_partitions_by_user_id(
    target: Target,
) {
    let h = LeaderboardHarness::on(target, &[("PARTITIONS", "4"), ("LEADERBOARD_SIZE", "4")]);
    let mut conn = h.conn().await;
    let partitioner = Partitioner::new(4);
    // ann, bob, eve and ivy tie at 50, each in another partition; the cut keeps the three smallest ids.
    let users = [
        ("zed", 90, Some("Zed")),
        ("ivy", 50, Some("Ivy")),
        ("bob", 50, None),
        ("eve", 50, Some("Eve")),
        ("ann", 50, Some("Ann")),
        ("kim", 10, None),
        ("max", 5, None),
    ];
    let tied: std::collections::BTreeSet<u16> = ["ann", "bob", "eve", "ivy"]
        .iter()
        .map(|u| partitioner.partition_of(u))
        .collect();
    assert_eq!(
        tied.len(),
        4,
        "the tied users are spread over the four partitions"
    );
    h.redis
        .assert_on_every_master(partitioner, users.iter().map(|(user, _, _)| *user));
    // Only the tops are seeded: a built partition is read from its top, never from its set.
    set_partition_tops(&mut conn, partitioner, partitioner.all(), 4, &users).await;
    let _: () = conn.set(keys::VERSION, 7).await.unwrap();

    let answer = h.get(BOARD, Some(&hs_token("v")), &[]).await;

    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("etag"),
        Some("\"7\""),
        "the last published version"
    );
    assert_eq!(answer.json["version"], 7);
    assert_eq!(
        ranked_rows(&answer.json),
        [
            (1, "zed".into(), 90),
            (2, "ann".into(), 50),
            (3, "bob".into(), 50),
            (4, "eve".into(), 50)
        ]
    );
    assert_eq!(answer.json["entries"][0]["name"], "Zed");
    assert_eq!(answer.json["entries"][2]["name"], "bob");
    let again = h
        .get(BOARD, Some(&hs_token("v")), &[("if-none-match", "\"7\"")])
        .await;
    assert_eq!(again.status, 304);
}

#[tokio::test]
async fn the_merged_board_is_as_new_as_the_newest_partition_top() {
    let h = LeaderboardHarness::start(&[("PARTITIONS", "2")]);
    let mut conn = h.conn().await;
    // Compared as times, not text: "…00Z" sorts after "…00.500Z" as text.
    set_partition_top(&mut conn, 0, 10, "2026-11-29T10:00:00Z", &[]).await;
    set_partition_top(&mut conn, 1, 10, "2026-11-29T10:00:00.500Z", &[]).await;

    let answer = h.get(BOARD, Some(&hs_token("v")), &[]).await;

    assert_eq!(answer.json["updatedAt"], "2026-11-29T10:00:00.500Z");
}

async fn a_partition_not_built_yet_is_computed_from_its_set(target: Target) {
    let h = LeaderboardHarness::on(target, &[("PARTITIONS", "4"), ("LEADERBOARD_SIZE", "3")]);
    let mut conn = h.conn().await;
    let partitioner = Partitioner::new(4);
    // zed, a, ann and c share a partition; B, bob and eve are elsewhere. Byte order puts "B" before "a".
    let unbuilt_users = [
        ("zed", 90, Some("Zed Z")),
        ("c", 50, None),
        ("ann", 50, Some("Ann")),
        ("a", 50, None),
    ];
    let unbuilt = partitioner.partition_of("zed");
    for (user, _, _) in &unbuilt_users {
        assert_eq!(partitioner.partition_of(user), unbuilt, "{user}");
    }
    let built_users = [("B", 50, Some("Bee")), ("bob", 50, None), ("eve", 40, None)];
    for (user, _, _) in &built_users {
        assert_ne!(partitioner.partition_of(user), unbuilt, "{user}");
    }
    h.redis.assert_on_every_master(
        partitioner,
        unbuilt_users
            .iter()
            .chain(&built_users)
            .map(|(user, _, _)| *user),
    );
    seed_sets(&mut conn, partitioner, &unbuilt_users).await;
    seed_sets(&mut conn, partitioner, &built_users).await;
    set_partition_tops(
        &mut conn,
        partitioner,
        partitioner.all().filter(|&p| p != unbuilt),
        3,
        &built_users,
    )
    .await;

    let answer = h.get(BOARD, Some(&hs_token("v")), &[]).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["version"], 0, "nothing published yet");
    assert_eq!(
        answer.json["entries"],
        json!([
            {"rank":1,"userId":"zed","name":"Zed Z","score":90},
            {"rank":2,"userId":"B","name":"Bee","score":50},
            {"rank":3,"userId":"a","name":"a","score":50},
        ])
    );
}

#[tokio::test]
async fn an_unreadable_partition_top_is_computed_from_its_set() {
    let h = LeaderboardHarness::start(&[("PARTITIONS", "2")]);
    let mut conn = h.conn().await;
    let partitioner = Partitioner::new(2);
    let users = [("ann", 30, Some("Ann")), ("bob", 20, None)];
    seed_sets(&mut conn, partitioner, &users).await;
    set_partition_tops(&mut conn, partitioner, partitioner.all(), 10, &users).await;
    let broken = partitioner.partition_of("ann");
    let _: () = conn
        .set(PartitionKeys::new(broken).top(), "{not json")
        .await
        .unwrap();

    let answer = h.get(BOARD, Some(&hs_token("v")), &[]).await;

    assert_eq!(answer.status, 200);
    assert_eq!(
        ranked_rows(&answer.json),
        [(1, "ann".into(), 30), (2, "bob".into(), 20)]
    );
    assert_eq!(answer.json["entries"][0]["name"], "Ann");
}
