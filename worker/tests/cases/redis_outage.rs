//! Redis outage: redis-server (with AOF, as a managed Redis keeps its data) is stopped for a few seconds
//! and started again while the worker runs; the worker retries, nothing is lost or counted twice.

use std::collections::BTreeMap;
use std::time::Duration;

use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::RedisServer;

use crate::helpers::{self, StoreUnderTest, xadd_event};

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_outage_delays_but_loses_nothing() {
    let mut redis_server = RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]);
    let target = StoreUnderTest::mongo();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    // A read whose reply is lost in the outage leaves entries pending: reclaimed after CLAIM_IDLE_MS.
    let config = helpers::worker_config(
        "w",
        &[("WORKER_BATCH_SIZE", "20"), ("CLAIM_IDLE_MS", "1000")],
    );
    let worker = helpers::worker(&redis, &store, config).await;
    let (trigger, shutdown) = Shutdown::new();
    let running = tokio::spawn(worker.run(shutdown));
    let mut expected = BTreeMap::<String, u64>::new();
    for i in 0..400u64 {
        let user = format!("u{}", i % 7);
        xadd_event(&mut redis, &user, None, 1 + i % 4).await;
        *expected.entry(user).or_default() += 1 + i % 4;
    }

    // Down while the worker is (most likely) mid-stream, for two seconds.
    redis_server.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis_server.restart();
    helpers::eventually(
        Duration::from_secs(10),
        "the test's connection is back",
        || {
            let mut redis = redis.clone();
            async move {
                redis::cmd("PING")
                    .query_async::<String>(&mut redis)
                    .await
                    .is_ok()
            }
        },
    )
    .await;
    for i in 400..500u64 {
        let user = format!("u{}", i % 7);
        xadd_event(&mut redis, &user, None, 1 + i % 4).await;
        *expected.entry(user).or_default() += 1 + i % 4;
    }

    helpers::eventually(
        Duration::from_secs(60),
        "every event after the outage",
        || {
            let (store, expected, mut redis) = (store.clone(), expected.clone(), redis.clone());
            async move {
                helpers::pending(&mut redis).await == 0
                    && helpers::store_totals(store.as_ref()).await == expected
            }
        },
    )
    .await;
    helpers::eventually(Duration::from_secs(10), "the board", || {
        let (expected, mut redis) = (expected.clone(), redis.clone());
        async move { helpers::board(&mut redis).await == expected }
    })
    .await;
    let snap = helpers::snapshot(&mut redis).await.unwrap();
    assert_eq!(
        helpers::rows(&snap),
        helpers::store_top(store.as_ref(), 10).await
    );
    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .expect("a Redis outage never stops the worker");
}
