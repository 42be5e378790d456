//! What only the DynamoDB adapter has, against a real DynamoDB Local (started per test by the test kit):
//! round trips per batch, transaction chunking, the per-event path's call counts, paginated scans,
//! ping and outages (table setup is in `dynamo_setup.rs`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use scoreboard_testkit::{
    DYNAMO_TEST_ACCESS_KEY_ID, DYNAMO_TEST_REGION, DYNAMO_TEST_SECRET_ACCESS_KEY, DynamoLocal,
};
use scoreboard_worker::store::dynamo::{DynamoConfig, DynamoStore, RetryPolicy, StaticCredentials};
use scoreboard_worker::store::{ScoreStore, StoreError, StoreEvent, UserDelta, UserTotal};

pub const TABLE: &str = "scoreboard-test";

pub fn options(server: &DynamoLocal) -> DynamoConfig {
    let mut options = DynamoConfig::new(TABLE);
    options.endpoint_url = Some(server.endpoint_url());
    options.region = Some(DYNAMO_TEST_REGION.to_owned());
    options.credentials = Some(StaticCredentials {
        access_key_id: DYNAMO_TEST_ACCESS_KEY_ID.to_owned(),
        secret_access_key: DYNAMO_TEST_SECRET_ACCESS_KEY.to_owned().into(),
        session_token: None,
    });
    options.ensure_table = true;
    options
}

pub async fn store_with(
    server: &DynamoLocal,
    tweak: impl FnOnce(&mut DynamoConfig),
) -> DynamoStore {
    let mut options = options(server);
    tweak(&mut options);
    DynamoStore::connect(options)
        .await
        .unwrap_or_else(|e| panic!("connect to DynamoDB Local: {e}\n{}", server.log_tail()))
}

pub async fn store(server: &DynamoLocal) -> DynamoStore {
    store_with(server, |_| {}).await
}

pub fn delta(user: &str, events: &[(&str, u64)]) -> UserDelta {
    UserDelta {
        user_id: user.to_owned(),
        display_name: Some(format!("{user} name")),
        events: events
            .iter()
            .map(|(id, inc)| StoreEvent {
                event_id: (*id).to_owned(),
                increment: *inc,
            })
            .collect(),
    }
}

fn scores(totals: &[UserTotal]) -> HashMap<String, u64> {
    totals
        .iter()
        .map(|t| (t.user_id.clone(), t.score))
        .collect()
}

async fn all_scores(store: &DynamoStore) -> HashMap<String, u64> {
    let totals: Vec<UserTotal> = store.all_totals().try_collect().await.expect("scan");
    let map = scores(&totals);
    assert_eq!(map.len(), totals.len(), "scan returned a user twice");
    map
}

#[tokio::test]
async fn coalesced_batch_returns_exact_totals_and_names() {
    let server = DynamoLocal::start();
    let store = store(&server).await;

    let first = store
        .apply_batch(&[
            delta("alice", &[("1-0", 10), ("1-1", 5)]),
            delta("bob", &[("1-2", 7)]),
        ])
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].user_id, "alice");
    assert_eq!(first[0].score, 15);
    assert_eq!(first[0].display_name.as_deref(), Some("alice name"));
    assert_eq!(first[1].score, 7);

    let second = store
        .apply_batch(&[delta("alice", &[("2-0", 1)])])
        .await
        .unwrap();
    assert_eq!(scores(&second), HashMap::from([("alice".to_owned(), 16)]));

    let stats = store.stats();
    assert_eq!(
        stats.batch_transactions, 2,
        "one transaction per small batch"
    );
    assert_eq!(stats.batch_gets, 2, "one consistent BatchGetItem per batch");
    assert_eq!(stats.per_event_transactions, 0);
}

#[tokio::test]
async fn applying_the_same_events_twice_changes_nothing() {
    let server = DynamoLocal::start();
    let store = store(&server).await;
    let batch = [
        delta("alice", &[("1-0", 10), ("1-1", 5)]),
        delta("bob", &[("1-2", 7)]),
    ];

    let first = store.apply_batch(&batch).await.unwrap();
    let again = store.apply_batch(&batch).await.unwrap();

    assert_eq!(scores(&first), scores(&again));
    assert_eq!(
        all_scores(&store).await,
        HashMap::from([("alice".to_owned(), 15), ("bob".to_owned(), 7)])
    );
    let stats = store.stats();
    assert_eq!(stats.cancelled_transactions, 1);
    assert_eq!(stats.duplicate_events, 3, "every redelivered event skipped");
}

#[tokio::test]
async fn batch_over_the_transaction_item_limit_is_chunked() {
    let server = DynamoLocal::start();
    let store = store(&server).await;
    // 250 events of one user (needs 3 transactions by itself) and 80 single-event users (160 items).
    let ids: Vec<String> = (0..330).map(|i| format!("7-{i}")).collect();
    let mut batch = vec![delta(
        "heavy",
        &ids[..250]
            .iter()
            .map(|id| (id.as_str(), 2))
            .collect::<Vec<_>>(),
    )];
    for (i, id) in ids[250..].iter().enumerate() {
        batch.push(delta(&format!("user{i:02}"), &[(id.as_str(), 3)]));
    }

    let totals = scores(&store.apply_batch(&batch).await.unwrap());

    assert_eq!(totals.len(), 81);
    assert_eq!(totals["heavy"], 500);
    assert!(
        totals
            .iter()
            .filter(|(u, _)| *u != "heavy")
            .all(|(_, s)| *s == 3)
    );
    let stats = store.stats();
    assert_eq!(
        stats.batch_transactions - stats.retries,
        5,
        "410 items in transactions of at most 100, a user never twice in one: {stats:?}"
    );
    assert_eq!(stats.batch_gets, 1, "81 users fit one BatchGetItem");
    assert_eq!(all_scores(&store).await, totals);

    // The whole batch again (all 5+ transactions cancelled) still changes nothing. Counted from here: a
    // first-pass transaction that committed but timed out on a loaded machine is retried, finds its own
    // markers and already counts its events as duplicates.
    let duplicates_before = store.stats().duplicate_events;
    let again = scores(&store.apply_batch(&batch).await.unwrap());
    assert_eq!(again, totals);
    assert_eq!(store.stats().duplicate_events - duplicates_before, 330);
}

#[tokio::test]
async fn partially_applied_events_take_the_per_event_path() {
    let server = DynamoLocal::start();
    let store = store(&server).await;
    // A worker died after writing these two and before acking them.
    store
        .apply_batch(&[delta("alice", &[("1-0", 10), ("1-1", 20)])])
        .await
        .unwrap();

    // The redelivery comes back mixed with new events.
    let totals = store
        .apply_batch(&[
            delta("alice", &[("1-0", 10), ("1-1", 20), ("1-2", 40)]),
            delta("bob", &[("1-3", 1)]),
        ])
        .await
        .unwrap();

    assert_eq!(
        scores(&totals),
        HashMap::from([("alice".to_owned(), 70), ("bob".to_owned(), 1)])
    );
    let stats = store.stats();
    assert_eq!(stats.cancelled_transactions, 1);
    assert_eq!(stats.duplicate_events, 2);
    assert_eq!(
        stats.per_event_transactions, 2,
        "only the two new events are written one by one"
    );
}

#[tokio::test]
async fn concurrent_redeliveries_apply_each_event_once() {
    let server = DynamoLocal::start();
    let one = store(&server).await;
    let two = store_with(&server, |o| o.ensure_table = false).await;
    let batch: Vec<UserDelta> = (0..20)
        .map(|u| {
            let ids: Vec<String> = (0..5).map(|e| format!("{u}-{e}")).collect();
            let events: Vec<(&str, u64)> = ids.iter().map(|id| (id.as_str(), 1)).collect();
            delta(&format!("user{u}"), &events)
        })
        .collect();

    let (a, b) = tokio::join!(one.apply_batch(&batch), two.apply_batch(&batch));
    a.unwrap();
    b.unwrap();

    let all = all_scores(&one).await;
    assert_eq!(all.len(), 20);
    assert!(all.values().all(|s| *s == 5), "{all:?}");
}

#[tokio::test]
async fn rebuild_scan_pages_through_every_user_and_skips_markers() {
    let server = DynamoLocal::start();
    let store = store_with(&server, |o| o.scan_page_size = 7).await;
    let ids: Vec<String> = (0..120).map(|i| format!("9-{i}")).collect();
    let batch: Vec<UserDelta> = (0..60)
        .map(|u| {
            delta(
                &format!("user{u:03}"),
                &[
                    (ids[2 * u].as_str(), 1),
                    (ids[2 * u + 1].as_str(), u as u64),
                ],
            )
        })
        .collect();
    store.apply_batch(&batch).await.unwrap();

    let totals: Vec<UserTotal> = store.all_totals().try_collect().await.unwrap();

    assert_eq!(totals.len(), 60, "each user once, no markers");
    for total in &totals {
        let u: u64 = total.user_id["user".len()..].parse().unwrap();
        assert_eq!(total.score, u + 1);
        assert_eq!(
            total.display_name.as_deref(),
            Some(format!("{} name", total.user_id).as_str())
        );
    }
}

#[tokio::test]
async fn ping_reports_a_reachable_table_and_fails_otherwise() {
    let mut server = DynamoLocal::start();
    let store = store_with(&server, |o| {
        o.attempt_timeout = Duration::from_secs(2);
    })
    .await;
    store.ping().await.expect("table exists");

    let missing = store_with(&server, |o| {
        o.table = "no-such-table".to_owned();
        o.ensure_table = false;
    })
    .await;
    // A missing table is a refusal, not an outage: retrying cannot bring it back.
    let refused = missing.ping().await.unwrap_err();
    assert!(
        matches!(refused, StoreError::Unexpected { .. }),
        "{refused:?}"
    );
    assert!(
        refused.message().starts_with("DYNAMODB_TABLE: "),
        "{refused}"
    );

    server.stop();
    let started = Instant::now();
    assert!(store.ping().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn an_outage_fails_the_batch_after_bounded_retries() {
    let mut server = DynamoLocal::start();
    let store = store_with(&server, |o| {
        o.retry = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        };
        o.attempt_timeout = Duration::from_secs(2);
    })
    .await;
    store
        .apply_batch(&[delta("alice", &[("1-0", 1)])])
        .await
        .unwrap();
    let retries_before = store.stats().retries;

    server.stop();
    let started = Instant::now();
    let result = store.apply_batch(&[delta("alice", &[("1-1", 1)])]).await;

    assert!(
        matches!(result, Err(StoreError::Unavailable { .. })),
        "{result:?}"
    );
    assert_eq!(
        store.stats().retries - retries_before,
        3,
        "retried, bounded"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// The AWS CLI from the project venv (`make setup`), else from `PATH`.
#[tokio::test]
async fn the_store_recovers_after_dynamodb_comes_back() {
    let mut server = DynamoLocal::start_persistent();
    let store = store_with(&server, |o| {
        o.retry = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        };
        o.attempt_timeout = Duration::from_secs(2);
    })
    .await;
    store
        .apply_batch(&[delta("alice", &[("1-0", 5)])])
        .await
        .unwrap();

    server.stop();
    let during = store.apply_batch(&[delta("alice", &[("1-1", 1)])]).await;
    server.restart();

    assert!(matches!(during, Err(StoreError::Unavailable { .. })));
    // The caller retries the whole batch (as the worker does); the data survived the restart.
    let after = store
        .apply_batch(&[delta("alice", &[("1-0", 5), ("1-1", 1)])])
        .await
        .unwrap();
    assert_eq!(after[0].score, 6);
}
