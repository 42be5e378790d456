//! Bounded memory: acked entries are trimmed (`XTRIM MINID`), never past the oldest pending entry.

use std::time::Duration;

use redis::AsyncCommands;
use scoreboard_shared::redis::keys;
use scoreboard_testkit::RedisServer;

use crate::helpers::{self, StoreUnderTest, xadd_event};

#[tokio::test(flavor = "multi_thread")]
async fn acked_entries_are_trimmed_but_pending_ones_are_kept() {
    let redis_server = RedisServer::start();
    let target = StoreUnderTest::mongo();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    for i in 0..50u64 {
        xadd_event(&mut redis, &format!("u{}", i % 5), None, 1).await;
    }
    let config = helpers::worker_config("w", &[("WORKER_BATCH_SIZE", "20")]);
    let mut worker = helpers::worker(&redis, &store, config).await;
    // A dead consumer holds the next 5 entries after the first 20 are processed.
    let first = worker.fetch().await.unwrap();
    let totals = worker.write_store(&first).await.unwrap();
    worker.commit(&first, &totals).await.unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(keys::CONSUMER_GROUP)
        .arg("dead")
        .arg("COUNT")
        .arg(5)
        .arg("STREAMS")
        .arg(keys::UPDATES)
        .arg(">")
        .query_async(&mut redis)
        .await
        .unwrap();

    let trimmed = worker.trim_and_count().await.unwrap();

    assert_eq!(
        trimmed, 20,
        "only the acked entries before the oldest pending one"
    );
    let len: usize = redis.xlen(keys::UPDATES).await.unwrap();
    assert_eq!(len, 30);
    assert_eq!(helpers::pending(&mut redis).await, 5);

    // Undelivered entries are never trimmed either: with nothing pending, only delivered ones go.
    let _: () = redis::cmd("XGROUP")
        .arg("DELCONSUMER")
        .arg(keys::UPDATES)
        .arg(keys::CONSUMER_GROUP)
        .arg("dead")
        .query_async(&mut redis)
        .await
        .unwrap();
    let trimmed = worker.trim_and_count().await.unwrap();
    assert_eq!(trimmed, 5);
    let len: usize = redis.xlen(keys::UPDATES).await.unwrap();
    assert_eq!(len, 25, "the 25 undelivered entries remain");
    helpers::drain(&mut worker, Duration::from_secs(10)).await;
    worker.trim_and_count().await.unwrap();
    let len: usize = redis.xlen(keys::UPDATES).await.unwrap();
    assert_eq!(len, 0);
}
