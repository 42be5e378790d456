//! Exactly-once effect: a crash between the store write and the commit (XACK) re-delivers the batch to
//! another worker; the second delivery changes nothing in the store, the sorted set or the snapshot.

use std::time::Duration;

use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::RedisServer;

use crate::helpers::{self, StoreUnderTest};

#[tokio::test(flavor = "multi_thread")]
async fn events_delivered_twice_change_nothing_the_second_time_with_mongodb() {
    events_delivered_twice_change_nothing_the_second_time(StoreUnderTest::mongo()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_delivered_twice_change_nothing_the_second_time_with_dynamodb() {
    events_delivered_twice_change_nothing_the_second_time(StoreUnderTest::dynamodb()).await;
}

/// The scenario, for any store.
async fn events_delivered_twice_change_nothing_the_second_time(target: StoreUnderTest) {
    let redis_server = RedisServer::start();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    for i in 0..60u64 {
        helpers::xadd_event(
            &mut redis,
            &format!("user-{}", i % 12),
            Some("P"),
            1 + i % 5,
        )
        .await;
    }
    let claim_fast = [("CLAIM_IDLE_MS", "100")];

    // Worker A reads and writes the store, then "crashes" before its commit.
    let mut a = helpers::worker(&redis, &store, helpers::worker_config("a", &claim_fast)).await;
    let batch = a.fetch().await.unwrap();
    assert_eq!(batch.events.len(), 60);
    a.write_store(&batch).await.unwrap();
    drop(a);
    let store_after_first = helpers::store_totals(store.as_ref()).await;
    assert_eq!(helpers::pending(&mut redis).await, 60, "nothing acked yet");

    // Worker B reclaims the idle entries and processes them again.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut b = helpers::worker(&redis, &store, helpers::worker_config("b", &claim_fast)).await;
    let redelivered = b.fetch().await.unwrap();
    assert!(redelivered.reclaimed);
    assert_eq!(redelivered.events.len(), 60);
    let totals = b.write_store(&redelivered).await.unwrap();
    let outcome = b.commit(&redelivered, &totals).await.unwrap();

    assert_eq!(
        helpers::store_totals(store.as_ref()).await,
        store_after_first
    );
    assert_eq!(helpers::board(&mut redis).await, store_after_first);
    assert_eq!(helpers::pending(&mut redis).await, 0);
    let snap = helpers::snapshot(&mut redis)
        .await
        .expect("snapshot written");
    assert_eq!(snap.version, outcome.version);
    assert_eq!(
        helpers::rows(&snap),
        helpers::store_top(store.as_ref(), 10).await
    );

    // A third delivery of the same batch (store write + commit again): no change anywhere.
    let totals = b.write_store(&redelivered).await.unwrap();
    let again = b.commit(&redelivered, &totals).await.unwrap();
    assert!(!again.published, "the top did not change");
    assert_eq!(again.version, snap.version);
    assert_eq!(
        helpers::store_totals(store.as_ref()).await,
        store_after_first
    );
    assert_eq!(helpers::board(&mut redis).await, store_after_first);
    assert_eq!(helpers::snapshot(&mut redis).await, Some(snap));
    assert_eq!(helpers::drain(&mut b, Duration::from_secs(10)).await, 0);
    let _ = Shutdown::never();
}
