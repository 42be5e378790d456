//! Redis is a cache of the store: after FLUSHALL (or deleting the board keys) `rebuild` restores the
//! exact board, and a worker that starts on an empty set rebuilds once, guarded by a lock.

use std::process::Command;
use std::time::Duration;

use redis::AsyncCommands;
use scoreboard_shared::redis::keys;
use scoreboard_testkit::RedisServer;

use crate::helpers::{self, StoreUnderTest, xadd_event};

#[tokio::test(flavor = "multi_thread")]
async fn flushall_then_rebuild_restores_the_exact_board_with_mongodb() {
    flushall_then_rebuild_restores_the_exact_board(StoreUnderTest::mongo()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn flushall_then_rebuild_restores_the_exact_board_with_dynamodb() {
    flushall_then_rebuild_restores_the_exact_board(StoreUnderTest::dynamodb()).await;
}

/// The scenario, for any store.
async fn flushall_then_rebuild_restores_the_exact_board(target: StoreUnderTest) {
    let redis_server = RedisServer::start();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    for i in 0..300u64 {
        xadd_event(
            &mut redis,
            &format!("u{:03}", i % 40),
            Some(&format!("Name {}", i % 40)),
            1 + i % 9,
        )
        .await;
    }
    let mut worker = helpers::worker(&redis, &store, helpers::worker_config("w", &[])).await;
    helpers::drain(&mut worker, Duration::from_secs(20)).await;
    let board_before = helpers::board(&mut redis).await;
    let top_before = helpers::snapshot(&mut redis).await.unwrap();
    assert_eq!(board_before.len(), 40);

    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(helpers::board(&mut redis).await.is_empty());
    let outcome = scoreboard_worker::rebuild(&mut redis, store.as_ref(), 10)
        .await
        .unwrap();

    assert_eq!(outcome.users, 40);
    assert_eq!(helpers::board(&mut redis).await, board_before);
    let top_after = helpers::snapshot(&mut redis).await.unwrap();
    assert_eq!(
        top_after.entries, top_before.entries,
        "same rows, ranks and names"
    );
    assert!(
        top_after.version > top_before.version,
        "versions keep growing across a lost cache ({} then {}), so SSE clients and ETags move on",
        top_before.version,
        top_after.version
    );

    // The running worker lost its group with the flush; it recreates it and keeps applying.
    xadd_event(&mut redis, "u000", None, 1000).await;
    assert_eq!(
        helpers::drain(&mut worker, Duration::from_secs(10)).await,
        1
    );
    let board_now = helpers::board(&mut redis).await;
    assert_eq!(board_now["u000"], board_before["u000"] + 1000);
    let board_before = board_now;
    let top_before = helpers::snapshot(&mut redis).await.unwrap();

    // Deleting only the board keys: a worker start finds the set empty and rebuilds exactly once.
    let _: () = redis
        .del(&[keys::LEADERBOARD, keys::TOP, keys::NAMES])
        .await
        .unwrap();
    let (mut r1, mut r2) = (redis.clone(), redis.clone());
    let (first, second) = tokio::join!(
        scoreboard_worker::rebuild_if_empty(&mut r1, store.as_ref(), 10),
        scoreboard_worker::rebuild_if_empty(&mut r2, store.as_ref(), 10),
    );
    let rebuilt = [first.unwrap(), second.unwrap()];
    assert_eq!(
        rebuilt.iter().filter(|r| r.is_some()).count(),
        1,
        "{rebuilt:?}"
    );
    assert_eq!(helpers::board(&mut redis).await, board_before);
    assert_eq!(
        helpers::snapshot(&mut redis).await.unwrap().entries,
        top_before.entries
    );
    // Not empty any more: nothing to do.
    assert!(
        scoreboard_worker::rebuild_if_empty(&mut redis, store.as_ref(), 10)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rebuild_subcommand_refills_the_cache_from_the_store_with_mongodb() {
    the_rebuild_subcommand_refills_the_cache_from_the_store(StoreUnderTest::mongo()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rebuild_subcommand_refills_the_cache_from_the_store_with_dynamodb() {
    the_rebuild_subcommand_refills_the_cache_from_the_store(StoreUnderTest::dynamodb()).await;
}

/// The scenario, for any store.
async fn the_rebuild_subcommand_refills_the_cache_from_the_store(target: StoreUnderTest) {
    let redis_server = RedisServer::start();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    for (user, inc) in [("a", 5), ("b", 9), ("c", 9)] {
        xadd_event(&mut redis, user, None, inc).await;
    }
    let mut worker = helpers::worker(&redis, &store, helpers::worker_config("w", &[])).await;
    helpers::drain(&mut worker, Duration::from_secs(10)).await;
    let before = helpers::board(&mut redis).await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut redis)
        .await
        .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_scoreboard-worker"))
        .arg("rebuild")
        .env_clear()
        .envs(target.env())
        .env("REDIS_URL", redis_server.url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run scoreboard-worker rebuild");

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("rebuilt 3 users"));
    assert_eq!(helpers::board(&mut redis).await, before);
    let rows = helpers::rows(&helpers::snapshot(&mut redis).await.unwrap());
    assert_eq!(
        rows,
        [
            ("b".to_owned(), 9),
            ("c".to_owned(), 9),
            ("a".to_owned(), 5)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_worker_refills_a_flushed_cache_by_itself() {
    let redis_server = RedisServer::start();
    let target = StoreUnderTest::mongo();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    for i in 0..60u64 {
        xadd_event(&mut redis, &format!("u{:02}", i % 12), None, 1 + i % 5).await;
    }
    let mut worker = helpers::worker(&redis, &store, helpers::worker_config("w", &[])).await;
    helpers::drain(&mut worker, Duration::from_secs(20)).await;
    let board_before = helpers::board(&mut redis).await;
    assert_eq!(board_before.len(), 12);

    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut redis)
        .await
        .unwrap();
    xadd_event(&mut redis, "u00", None, 7).await;
    helpers::drain(&mut worker, Duration::from_secs(20)).await;

    let mut expected = board_before;
    *expected.get_mut("u00").unwrap() += 7;
    assert_eq!(
        helpers::board(&mut redis).await,
        expected,
        "every user is back, not just the one touched"
    );
    let top = helpers::snapshot(&mut redis).await.unwrap();
    assert_eq!(top.entries.len(), 10);
}
