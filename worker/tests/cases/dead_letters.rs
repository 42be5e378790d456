//! Malformed entries and entries delivered `MAX_DELIVERIES` times go to `{sb}:dlq` with the reason and
//! are acked; the good entries of the same batch are applied.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::AsyncCommands;
use redis::streams::StreamRangeReply;
use scoreboard_shared::redis::keys;
use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::RedisServer;

use crate::helpers::{self, StoreUnderTest, xadd_event, xadd_raw};

async fn dead_letters(redis: &mut redis::aio::ConnectionManager) -> BTreeMap<String, String> {
    let reply: StreamRangeReply = redis.xrange_all(keys::DLQ).await.unwrap();
    reply
        .ids
        .iter()
        .map(|e| {
            let field = |k: &str| e.get::<String>(k).unwrap_or_default();
            (field("event"), field("reason"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_entries_go_to_the_dlq_and_good_ones_in_the_batch_are_applied() {
    let redis_server = RedisServer::start();
    let target = StoreUnderTest::mongo();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    let good1 = xadd_event(&mut redis, "ann", Some("Ann"), 10).await;
    let no_inc = xadd_raw(
        &mut redis,
        &[("v", "1"), ("user", "bob"), ("ts", "1"), ("req", "r")],
    )
    .await;
    let bad_inc = xadd_raw(
        &mut redis,
        &[
            ("v", "1"),
            ("user", "bob"),
            ("inc", "-3"),
            ("ts", "1"),
            ("req", "r"),
        ],
    )
    .await;
    let bad_version = xadd_raw(
        &mut redis,
        &[
            ("v", "9"),
            ("user", "bob"),
            ("inc", "3"),
            ("ts", "1"),
            ("req", "r"),
        ],
    )
    .await;
    let unknown = xadd_raw(
        &mut redis,
        &[
            ("v", "1"),
            ("user", "bob"),
            ("inc", "3"),
            ("ts", "1"),
            ("req", "r"),
            ("admin", "1"),
        ],
    )
    .await;
    let good2 = xadd_event(&mut redis, "ann", None, 5).await;
    let mut worker = helpers::worker(&redis, &store, helpers::worker_config("w", &[])).await;

    let outcome = worker.step(&Shutdown::never()).await.unwrap();

    assert!(
        matches!(
            outcome,
            scoreboard_worker::StepOutcome::Processed {
                applied: 2,
                dead: 4,
                ..
            }
        ),
        "{outcome:?}"
    );
    let dlq = dead_letters(&mut redis).await;
    assert_eq!(dlq.len(), 4, "{dlq:?}");
    assert!(dlq[&no_inc].contains("missing field inc"), "{dlq:?}");
    assert!(dlq[&bad_inc].contains("inc"), "{dlq:?}");
    assert!(dlq[&bad_version].contains("schema version"), "{dlq:?}");
    assert!(dlq[&unknown].contains("unknown field"), "{dlq:?}");
    assert!(!dlq.contains_key(&good1) && !dlq.contains_key(&good2));
    let totals = helpers::store_totals(store.as_ref()).await;
    assert_eq!(totals, BTreeMap::from([("ann".to_owned(), 15)]));
    assert_eq!(helpers::board(&mut redis).await, totals);
    assert_eq!(
        helpers::pending(&mut redis).await,
        0,
        "dead letters are acked too"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_delivered_max_deliveries_times_goes_to_the_dlq_and_the_rest_proceeds() {
    let redis_server = RedisServer::start();
    let target = StoreUnderTest::mongo();
    let store = target.connect().await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    let config = helpers::worker_config("w", &[("CLAIM_IDLE_MS", "100"), ("MAX_DELIVERIES", "3")]);
    let mut worker = helpers::worker(&redis, &store, config).await;
    let poison = xadd_event(&mut redis, "ann", None, 7).await;
    let healthy = xadd_event(&mut redis, "bob", None, 4).await;
    // Two consumers took both entries and died three times in a row (3 deliveries each).
    for ghost in ["ghost-1", "ghost-2", "ghost-3"] {
        if ghost == "ghost-1" {
            let _: redis::Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(keys::CONSUMER_GROUP)
                .arg(ghost)
                .arg("COUNT")
                .arg(10)
                .arg("STREAMS")
                .arg(keys::UPDATES)
                .arg(">")
                .query_async(&mut redis)
                .await
                .unwrap();
        } else {
            let _: redis::Value = redis::cmd("XCLAIM")
                .arg(keys::UPDATES)
                .arg(keys::CONSUMER_GROUP)
                .arg(ghost)
                .arg(0)
                .arg(&poison)
                .query_async(&mut redis)
                .await
                .unwrap();
        }
    }
    // The healthy entry was delivered once; the poison entry three times.
    tokio::time::sleep(Duration::from_millis(150)).await;

    let outcome = worker.step(&Shutdown::never()).await.unwrap();

    assert!(
        matches!(
            outcome,
            scoreboard_worker::StepOutcome::Processed {
                applied: 1,
                dead: 1,
                ..
            }
        ),
        "{outcome:?}"
    );
    let dlq = dead_letters(&mut redis).await;
    assert_eq!(dlq.len(), 1);
    assert!(dlq[&poison].contains("delivered 4 times"), "{dlq:?}");
    assert!(!dlq.contains_key(&healthy));
    assert_eq!(
        helpers::store_totals(store.as_ref()).await,
        BTreeMap::from([("bob".to_owned(), 4)])
    );
    assert_eq!(helpers::pending(&mut redis).await, 0);
}
