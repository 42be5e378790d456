//! Store outage: the store's server (the MongoDB-protocol server, or DynamoDB Local keeping its data on
//! disk) is stopped for a few seconds and started again while the worker runs; nothing is acked during
//! the outage and nothing is lost.

use std::collections::BTreeMap;
use std::time::Duration;

use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::RedisServer;

use crate::helpers::{self, StoreUnderTest, xadd_event};

#[tokio::test(flavor = "multi_thread")]
async fn a_store_outage_delays_but_loses_nothing_with_mongodb() {
    a_store_outage_delays_but_loses_nothing(StoreUnderTest::spawned_mongo()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_outage_delays_but_loses_nothing_with_dynamodb() {
    a_store_outage_delays_but_loses_nothing(StoreUnderTest::spawned_dynamodb()).await;
}

/// The scenario, for any store.
async fn a_store_outage_delays_but_loses_nothing(mut target: StoreUnderTest) {
    let redis_server = RedisServer::start();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    let worker = helpers::worker(&redis, &store, helpers::worker_config("w", &[])).await;
    let (trigger, shutdown) = Shutdown::new();
    let running = tokio::spawn(worker.run(shutdown));
    let mut expected = BTreeMap::<String, u64>::new();
    let produce =
        async |redis: &mut _, from: u64, to: u64, expected: &mut BTreeMap<String, u64>| {
            for i in from..to {
                let user = format!("u{}", i % 10);
                xadd_event(redis, &user, None, 1 + i % 3).await;
                *expected.entry(user).or_default() += 1 + i % 3;
            }
        };
    produce(&mut redis, 0, 100, &mut expected).await;
    let first = expected.clone();
    helpers::eventually(Duration::from_secs(20), "the first 100 events", || {
        let store = store.clone();
        let first = first.clone();
        async move { helpers::store_totals(store.as_ref()).await == first }
    })
    .await;

    target.stop();
    produce(&mut redis, 100, 250, &mut expected).await;
    // During the outage the new entries are delivered but not acked.
    helpers::eventually(
        Duration::from_secs(10),
        "entries held during the outage",
        || {
            let mut redis = redis.clone();
            async move { helpers::pending(&mut redis).await > 0 }
        },
    )
    .await;
    assert_liveness_survives_the_outage(&redis, &store).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        helpers::pending(&mut redis).await > 0,
        "nothing acked while the store is down"
    );
    target.restart();

    helpers::eventually(
        Duration::from_secs(60),
        "every event after the outage",
        || {
            let (store, expected, mut redis) = (store.clone(), expected.clone(), redis.clone());
            async move {
                helpers::store_totals(store.as_ref()).await == expected
                    && helpers::pending(&mut redis).await == 0
            }
        },
    )
    .await;
    assert_eq!(helpers::board(&mut redis).await, expected);
    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .expect("an outage is transient: the worker rode it out");
}

/// `/healthz` stays 200 during a store outage (reporting it), so an orchestrator never restarts a worker
/// that is riding the outage out; a restart would abandon its batch and push it toward the DLQ.
async fn assert_liveness_survives_the_outage(
    redis: &redis::aio::ConnectionManager,
    store: &std::sync::Arc<dyn scoreboard_worker::store::ScoreStore>,
) {
    let app = scoreboard_worker::health_app(scoreboard_worker::HealthState {
        redis: redis.clone(),
        store: store.clone(),
        metrics: scoreboard_shared::telemetry::prometheus(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/healthz", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    scoreboard_shared::tls::install_crypto_provider();
    let response = reqwest::get(&url).await.expect("healthz answers");
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["store"], false, "{body}");
    assert_eq!(body["redis"], true, "{body}");
    server.abort();
}
