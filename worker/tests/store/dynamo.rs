//! What only the DynamoDB adapter has, against a real DynamoDB Local (started per test by the test kit):
//! paginated partition scans, ping, outages and recovery (table setup is in `dynamo_setup.rs`, read
//! chunking and the migration in `dynamo_watermark.rs`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use scoreboard_shared::partition::StreamId;
use scoreboard_testkit::{
    DYNAMO_TEST_ACCESS_KEY_ID, DYNAMO_TEST_REGION, DYNAMO_TEST_SECRET_ACCESS_KEY, DynamoLocal,
};
use scoreboard_worker::store::dynamo::{DynamoConfig, DynamoStore, RetryPolicy, StaticCredentials};
use scoreboard_worker::store::{
    StoreError, UserTotal, UserWrite, Watermark, WatermarkStore, WriteOutcome,
};

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

pub fn wm(ms: u64) -> Watermark {
    Watermark::new(1, StreamId { ms, seq: 0 })
}

/// A user's first write (no `wm` yet), named `<user> name`.
pub fn first_write(user: &str, increment: u64, at: u64) -> UserWrite {
    UserWrite {
        user_id: user.to_owned(),
        expected_wm: None,
        expected_score: 0,
        increment,
        display_name: Some(format!("{user} name")),
        new_wm: wm(at),
    }
}

fn applied(outcomes: &[WriteOutcome]) -> Vec<u64> {
    outcomes
        .iter()
        .map(|o| match o {
            WriteOutcome::Applied { score } => *score,
            other => panic!("not applied: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn partition_scans_page_through_every_user_of_the_partition() {
    let server = DynamoLocal::start();
    let store = store_with(&server, |o| o.scan_page_size = 7).await;
    let ones: Vec<UserWrite> = (0..60u64)
        .map(|u| first_write(&format!("user{u:03}"), u + 1, 10))
        .collect();
    let twos: Vec<UserWrite> = (0..5u64)
        .map(|u| first_write(&format!("other{u}"), 1, 11))
        .collect();
    applied(&store.write(1, &ones, None, wm(10)).await.unwrap());
    applied(&store.write(2, &twos, None, wm(11)).await.unwrap());

    let totals: Vec<UserTotal> = store.partition_totals(1).try_collect().await.unwrap();

    let by_user: HashMap<&str, &UserTotal> =
        totals.iter().map(|t| (t.user_id.as_str(), t)).collect();
    assert_eq!(
        totals.len(),
        60,
        "each user once, no hw item, no other partition"
    );
    assert_eq!(by_user.len(), 60);
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
async fn an_outage_fails_the_read_after_bounded_retries() {
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
        .write(1, &[first_write("alice", 1, 10)], None, wm(10))
        .await
        .unwrap();
    let retries_before = store.stats().retries;

    server.stop();
    let started = Instant::now();
    let result = store.read(1, &["alice"]).await;

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
        .write(1, &[first_write("alice", 5, 10)], None, wm(10))
        .await
        .unwrap();

    server.stop();
    let mut next = first_write("alice", 1, 20);
    (next.expected_wm, next.expected_score) = (Some(wm(10)), 5);
    let during = store.write(1, &[next], Some(wm(10)), wm(20)).await;
    server.restart();

    assert!(
        matches!(during, Err(StoreError::Unavailable { .. })),
        "{during:?}"
    );
    // The caller re-reads and retries (as the worker does); the data survived the restart.
    let read = store.read(1, &["alice"]).await.unwrap();
    let alice = &read.users[0];
    assert_eq!((alice.score, alice.wm), (5, Some(wm(10))));
    let mut again = first_write("alice", 1, 20);
    (again.expected_wm, again.expected_score) = (alice.wm, alice.score);
    let after = store.write(1, &[again], read.hw, wm(20)).await.unwrap();
    assert_eq!(applied(&after), [6]);
}
