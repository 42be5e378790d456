//! Shutdown: once requested, the worker stops reading but finishes and commits the batch in hand —
//! even one held up by a short store outage — and then returns.

use std::collections::BTreeMap;
use std::time::Duration;

use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::RedisServer;

use crate::helpers::{self, StoreUnderTest, xadd_event};

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_finishes_and_commits_the_batch_in_hand_then_stops_reading_with_mongodb() {
    shutdown_finishes_and_commits_the_batch_in_hand_then_stops_reading(
        StoreUnderTest::spawned_mongo(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_finishes_and_commits_the_batch_in_hand_then_stops_reading_with_dynamodb() {
    shutdown_finishes_and_commits_the_batch_in_hand_then_stops_reading(
        StoreUnderTest::spawned_dynamodb(),
    )
    .await;
}

/// The scenario, for any store.
async fn shutdown_finishes_and_commits_the_batch_in_hand_then_stops_reading(
    mut target: StoreUnderTest,
) {
    let redis_server = RedisServer::start();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    let worker = helpers::worker(&redis, &store, helpers::worker_config("w", &[])).await;
    let (trigger, shutdown) = Shutdown::new();
    let running = tokio::spawn(worker.run(shutdown));

    // The store goes down, so the next batch is held in hand (delivered, not acked).
    target.stop();
    // All 30 in one MULTI, so the blocked read takes them as one batch.
    let mut pipe = redis::pipe();
    pipe.atomic();
    for i in 0..30u64 {
        let user = format!("u{}", i % 3);
        pipe.cmd("XADD")
            .arg(scoreboard_shared::redis::keys::UPDATES)
            .arg("*")
            .arg(&[
                ("v", "1"),
                ("user", user.as_str()),
                ("inc", "2"),
                ("ts", "1"),
                ("req", "r"),
            ])
            .ignore();
    }
    let _: () = pipe.query_async(&mut redis).await.unwrap();
    helpers::eventually(Duration::from_secs(10), "a batch in hand", || {
        let mut redis = redis.clone();
        async move { helpers::pending(&mut redis).await == 30 }
    })
    .await;
    trigger.trigger();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !running.is_finished(),
        "the batch in hand is not abandoned at once"
    );
    target.restart();

    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the worker stops after committing")
        .unwrap()
        .expect("a stopped outage ends in a clean stop");
    assert_eq!(
        helpers::pending(&mut redis).await,
        0,
        "the batch was committed"
    );
    let expected = BTreeMap::from([
        ("u0".to_owned(), 20),
        ("u1".to_owned(), 20),
        ("u2".to_owned(), 20),
    ]);
    assert_eq!(helpers::store_totals(store.as_ref()).await, expected);
    assert_eq!(helpers::board(&mut redis).await, expected);

    // It stopped reading: a later entry stays undelivered.
    xadd_event(&mut redis, "late", None, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(helpers::pending(&mut redis).await, 0);
    assert!(
        !helpers::store_totals(store.as_ref())
            .await
            .contains_key("late")
    );
}
