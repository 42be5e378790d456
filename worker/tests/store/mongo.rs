//! What only the MongoDB adapter has, against a real MongoDB-protocol server (nx-27017 from the test kit,
//! or the `mongod` at `MONGODB_URI`): lenient numbers, the start-up indexes, an outage (transient) and a
//! failed authentication (not transient).

use std::collections::BTreeMap;

use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use scoreboard_shared::partition::StreamId;
use scoreboard_testkit::MongoServer;
use scoreboard_worker::config::MongoConfig;
use scoreboard_worker::store::mongo::MongoStore;
use scoreboard_worker::store::{
    StoreError, UserTotal, UserWrite, Watermark, WatermarkStore, WriteOutcome,
};

fn config(server: &MongoServer) -> MongoConfig {
    MongoConfig {
        uri: server.uri().to_owned().into(),
        database: server.database().to_owned(),
        collection: "scores".to_owned(),
    }
}

fn wm(ms: u64) -> Watermark {
    Watermark::new(1, StreamId { ms, seq: 0 })
}

fn write(user: &str, expected: Option<(Watermark, u64)>, increment: u64, new: u64) -> UserWrite {
    UserWrite {
        user_id: user.to_owned(),
        expected_wm: expected.map(|(wm, _)| wm),
        expected_score: expected.map_or(0, |(_, score)| score),
        increment,
        display_name: None,
        new_wm: wm(new),
    }
}

async fn totals(store: &MongoStore, partition: u16) -> BTreeMap<String, u64> {
    let all: Vec<UserTotal> = store
        .partition_totals(partition)
        .try_collect()
        .await
        .unwrap();
    all.into_iter().map(|t| (t.user_id, t.score)).collect()
}

async fn raw_collection(server: &MongoServer) -> mongodb::Collection<Document> {
    let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    client.database(server.database()).collection("scores")
}

#[tokio::test(flavor = "multi_thread")]
async fn scores_stored_as_int32_int64_or_double_are_read_leniently() {
    let server = MongoServer::start();
    let store = MongoStore::connect(&config(&server)).await.unwrap();
    raw_collection(&server)
        .await
        .insert_many([
            doc! {"_id": "i32", "score": 7i32, "p": 1},
            doc! {"_id": "i64", "score": 9_007_199_254_740_000i64, "p": 1},
            doc! {"_id": "dbl", "score": 12.0f64, "p": 1},
        ])
        .await
        .unwrap();

    let read = store.read(1, &["i32", "i64", "dbl"]).await.unwrap();
    let scores: Vec<u64> = read.users.iter().map(|r| r.score).collect();
    assert_eq!(scores, [7, 9_007_199_254_740_000, 12]);
    let mut one_more = write("i32", None, 1, 10);
    one_more.expected_score = 7;
    let outcomes = store.write(1, &[one_more], None, wm(10)).await.unwrap();

    assert!(
        matches!(outcomes[0], WriteOutcome::Applied { score: 8 }),
        "{outcomes:?}"
    );
    assert_eq!(
        totals(&store, 1).await,
        BTreeMap::from([
            ("dbl".to_owned(), 12),
            ("i32".to_owned(), 8),
            ("i64".to_owned(), 9_007_199_254_740_000),
        ])
    );
    let bad = raw_collection(&server).await;
    bad.insert_one(doc! {"_id": "bad", "score": "lots", "p": 1})
        .await
        .unwrap();
    // A score this code cannot read is left out of the partition's totals (with a warning), so one
    // poisoned document never blocks a rebuild; the readable ones are all there.
    assert_eq!(
        totals(&store, 1).await,
        BTreeMap::from([
            ("dbl".to_owned(), 12),
            ("i32".to_owned(), 8),
            ("i64".to_owned(), 9_007_199_254_740_000),
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_creates_the_partition_index_idempotently_and_no_score_index() {
    let server = MongoServer::start();
    MongoStore::connect(&config(&server)).await.unwrap();
    let store = MongoStore::connect(&config(&server)).await.unwrap();
    store.ping().await.unwrap();

    let indexes: Vec<mongodb::IndexModel> = raw_collection(&server)
        .await
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let on = |field: &str| {
        indexes
            .iter()
            .filter(|i| i.keys.contains_key(field))
            .count()
    };
    assert_eq!(on("p"), 1, "one index on p: {indexes:?}");
    assert_eq!(on("score"), 0, "nothing reads by score: {indexes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_is_a_retryable_error_and_the_store_recovers() {
    let mut server = MongoServer::spawn();
    let store = MongoStore::connect(&config(&server)).await.unwrap();
    store
        .write(1, &[write("u", None, 1, 10)], None, wm(10))
        .await
        .unwrap();

    server.stop();
    let err = store
        .write(
            1,
            &[write("u", Some((wm(10), 1)), 2, 20)],
            Some(wm(10)),
            wm(20),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(store.ping().await.is_err());
    server.restart();

    // The caller re-reads before retrying (as the worker does); the data survived the restart.
    let read = store.read(1, &["u"]).await.unwrap();
    let before = &read.users[0];
    let expected = before.wm.map(|wm| (wm, before.score));
    store
        .write(1, &[write("u", expected, 2, 20)], read.hw, wm(20))
        .await
        .unwrap();
    assert_eq!(
        totals(&store, 1).await,
        BTreeMap::from([("u".to_owned(), 3)])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_authentication_is_refused_at_once_and_names_mongodb_uri() {
    let server = MongoServer::spawn();
    let mut config = config(&server);
    let with_credentials =
        server
            .uri()
            .replacen("mongodb://", "mongodb://nobody:wrong-password@", 1);
    config.uri = with_credentials.into();

    let started = std::time::Instant::now();
    // nx-27017 has no SCRAM: the driver's handshake fails authentication, as with a wrong password.
    let err = MongoStore::connect(&config).await.unwrap_err();

    assert!(matches!(err, StoreError::Unexpected { .. }), "{err:?}");
    assert!(err.message().starts_with("MONGODB_URI: "), "{err}");
    assert!(!err.to_string().contains("wrong-password"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
