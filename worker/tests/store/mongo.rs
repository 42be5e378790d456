//! What only the MongoDB adapter has, against a real MongoDB-protocol server (nx-27017 from the test kit,
//! or the `mongod` at `MONGODB_URI`): the dedupe window, lenient numbers, the start-up index, an outage
//! (transient) and a failed authentication (not transient).

use std::collections::BTreeMap;

use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use scoreboard_testkit::MongoServer;
use scoreboard_worker::config::MongoConfig;
use scoreboard_worker::store::mongo::MongoStore;
use scoreboard_worker::store::{ScoreStore, StoreError, UserTotal};

use crate::contract::delta;

fn config(server: &MongoServer, window: u32) -> MongoConfig {
    MongoConfig {
        uri: server.uri().to_owned().into(),
        database: server.database().to_owned(),
        collection: "scores".to_owned(),
        dedupe_window: window,
    }
}

async fn totals(store: &MongoStore) -> BTreeMap<String, u64> {
    let all: Vec<UserTotal> = store.all_totals().try_collect().await.unwrap();
    all.into_iter().map(|t| (t.user_id, t.score)).collect()
}

async fn raw_collection(server: &MongoServer) -> mongodb::Collection<Document> {
    let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    client.database(server.database()).collection("scores")
}

#[tokio::test(flavor = "multi_thread")]
async fn each_event_id_counts_once_and_the_window_keeps_the_last_k_ids() {
    let server = MongoServer::start();
    let store = MongoStore::connect(&config(&server, 3)).await.unwrap();
    let batch = [delta("u", None, &[("1-0", 1), ("1-1", 2)])];
    store.apply_batch(&batch).await.unwrap();
    store.apply_batch(&batch).await.unwrap();
    store
        .apply_batch(&[delta("u", None, &[("1-1", 2), ("1-2", 4), ("1-3", 8)])])
        .await
        .unwrap();

    assert_eq!(totals(&store).await, BTreeMap::from([("u".to_owned(), 15)]));
    let doc = raw_collection(&server)
        .await
        .find_one(doc! {"_id": "u"})
        .await
        .unwrap()
        .unwrap();
    let applied: Vec<&str> = doc
        .get_array("applied")
        .unwrap()
        .iter()
        .filter_map(|b| b.as_str())
        .collect();
    assert_eq!(
        applied,
        ["1-1", "1-2", "1-3"],
        "only the last K=3 ids are kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scores_stored_as_int32_int64_or_double_are_read_leniently() {
    let server = MongoServer::start();
    let store = MongoStore::connect(&config(&server, 10)).await.unwrap();
    raw_collection(&server)
        .await
        .insert_many([
            doc! {"_id": "i32", "score": 7i32},
            doc! {"_id": "i64", "score": 9_007_199_254_740_000i64},
            doc! {"_id": "dbl", "score": 12.0f64},
        ])
        .await
        .unwrap();

    let result = store
        .apply_batch(&[delta("i32", None, &[("1-0", 1)])])
        .await
        .unwrap();

    assert_eq!(result[0].score, 8);
    assert_eq!(
        totals(&store).await,
        BTreeMap::from([
            ("dbl".to_owned(), 12),
            ("i32".to_owned(), 8),
            ("i64".to_owned(), 9_007_199_254_740_000),
        ])
    );
    let bad = raw_collection(&server).await;
    bad.insert_one(doc! {"_id": "bad", "score": "lots"})
        .await
        .unwrap();
    let err = store
        .all_totals()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unexpected { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_creates_the_score_index_idempotently() {
    let server = MongoServer::start();
    MongoStore::connect(&config(&server, 10)).await.unwrap();
    let store = MongoStore::connect(&config(&server, 10)).await.unwrap();
    store.ping().await.unwrap();

    let indexes: Vec<mongodb::IndexModel> = raw_collection(&server)
        .await
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let on_score = indexes
        .iter()
        .filter(|i| i.keys.contains_key("score"))
        .count();
    assert_eq!(on_score, 1, "one index on score: {indexes:?}");
    assert_eq!(store.top(1).await.unwrap(), Vec::<UserTotal>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_is_a_retryable_error_and_the_store_recovers() {
    let mut server = MongoServer::spawn();
    let store = MongoStore::connect(&config(&server, 10)).await.unwrap();
    store
        .apply_batch(&[delta("u", None, &[("1-0", 1)])])
        .await
        .unwrap();

    server.stop();
    let err = store
        .apply_batch(&[delta("u", None, &[("1-1", 2)])])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(store.ping().await.is_err());
    server.restart();

    store
        .apply_batch(&[delta("u", None, &[("1-1", 2)])])
        .await
        .unwrap();
    assert_eq!(totals(&store).await, BTreeMap::from([("u".to_owned(), 3)]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_authentication_is_refused_at_once_and_names_mongodb_uri() {
    let server = MongoServer::spawn();
    let mut config = config(&server, 10);
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
