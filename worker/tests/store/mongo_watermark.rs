//! What only the MongoDB adapter of the v2 port has, against the test kit's MongoDB-protocol server: the
//! round trips (one `find`, one unordered majority + journal `update` per batch; a missed `hw`
//! compare-and-set costs a re-read and one more `update`), the index on `p`, the `hw` documents kept out
//! of partition scans, and a document whose `wm` is not a watermark failing the read as not transient.

use std::sync::{Arc, Mutex};

use ::mongodb::bson::{Document, doc};
use ::mongodb::event::EventHandler;
use ::mongodb::event::command::CommandEvent;
use ::mongodb::options::ClientOptions;
use futures::TryStreamExt;
use scoreboard_shared::partition::StreamId;
use scoreboard_testkit::MongoServer;
use scoreboard_worker::config::MongoConfig;
use scoreboard_worker::store::mongo::MongoStore;
use scoreboard_worker::store::{
    StoreError, UserTotal, UserWrite, Watermark, WatermarkStore, WriteOutcome,
};

type Commands = Arc<Mutex<Vec<(String, Document)>>>;

fn config(server: &MongoServer) -> MongoConfig {
    MongoConfig {
        uri: server.uri().to_owned().into(),
        database: server.database().to_owned(),
        collection: "scores".to_owned(),
    }
}

/// A store whose client records every command it sends (name and body).
async fn monitored(server: &MongoServer) -> (MongoStore, Commands) {
    let commands: Commands = Arc::default();
    let seen = commands.clone();
    let mut options = ClientOptions::parse(server.uri()).await.unwrap();
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(started) = event {
            let entry = (started.command_name.clone(), started.command.clone());
            seen.lock().unwrap().push(entry);
        }
    }));
    let store = MongoStore::with_options(options, &config(server))
        .await
        .unwrap();
    commands.lock().unwrap().clear();
    (store, commands)
}

fn names(commands: &Commands) -> Vec<String> {
    let mut all = commands.lock().unwrap();
    let names = all.iter().map(|(name, _)| name.clone()).collect();
    all.clear();
    names
}

async fn raw(server: &MongoServer) -> ::mongodb::Collection<Document> {
    let client = ::mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    client.database(server.database()).collection("scores")
}

fn wm(ms: u64) -> Watermark {
    Watermark::new(1, StreamId { ms, seq: 0 })
}

fn first_write(user: &str, increment: u64, at: u64) -> UserWrite {
    UserWrite {
        user_id: user.to_owned(),
        expected_wm: None,
        expected_score: 0,
        increment,
        display_name: Some(format!("{user} name")),
        new_wm: wm(at),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_is_one_find_and_one_unordered_majority_journaled_update() {
    let server = MongoServer::start();
    let (store, commands) = monitored(&server).await;

    let read = store.read(3, &["ann", "bob", "cyd"]).await.unwrap();
    let writes = ["ann", "bob", "cyd"].map(|u| first_write(u, 2, 10));
    let outcomes = store.write(3, &writes, read.hw, wm(10)).await.unwrap();

    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, WriteOutcome::Applied { score: 2 }))
    );
    let all = commands.lock().unwrap().clone();
    let sent: Vec<&str> = all.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(sent, ["find", "update"]);
    let update = &all[1].1;
    assert!(!update.get_bool("ordered").unwrap(), "unordered");
    assert_eq!(
        update.get_document("writeConcern").unwrap(),
        &doc! {"w": "majority", "j": true}
    );
    let statements = update.get_array("updates").unwrap();
    assert_eq!(statements.len(), 4, "one per user and one for hw");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missed_hw_compare_and_set_re_reads_and_retries_once() {
    let server = MongoServer::start();
    let (store, commands) = monitored(&server).await;
    store.write(3, &[], None, wm(10)).await.unwrap();
    names(&commands);

    // A stale read (None) of an hw that is 10: E11000 on the hw statement, re-read, one more update.
    store
        .write(3, &[first_write("ann", 1, 20)], None, wm(20))
        .await
        .unwrap();

    assert_eq!(names(&commands), ["update", "find", "update"]);
    assert_eq!(store.read(3, &[]).await.unwrap().hw, Some(wm(20)));
    // An hw already at or above the batch's costs no statement at all.
    store.write(3, &[], Some(wm(20)), wm(15)).await.unwrap();
    assert!(names(&commands).iter().all(|c| c == "find"));
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_indexes_p_and_partition_scans_skip_hw_documents() {
    let server = MongoServer::start();
    let store = MongoStore::connect(&config(&server)).await.unwrap();
    store
        .write(3, &[first_write("ann", 4, 10)], None, wm(10))
        .await
        .unwrap();

    let indexes: Vec<::mongodb::IndexModel> = raw(&server)
        .await
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        indexes.iter().any(|i| i.keys == doc! {"p": 1}),
        "{indexes:?}"
    );
    let users: Vec<UserTotal> = store.partition_totals(3).try_collect().await.unwrap();
    assert_eq!(users.len(), 1, "the hw document is not a user: {users:?}");
    let hw = raw(&server)
        .await
        .find_one(doc! {"_id": "\u{1}hw:3"})
        .await
        .unwrap()
        .expect("the hw document");
    assert_eq!(hw.get_str("hw").unwrap(), "1-10-0");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wm_that_is_not_a_watermark_fails_the_read_as_not_transient() {
    let server = MongoServer::start();
    let store = MongoStore::connect(&config(&server)).await.unwrap();
    raw(&server)
        .await
        .insert_one(doc! {"_id": "ann", "score": 1, "wm": 42, "p": 3})
        .await
        .unwrap();

    let error = store.read(3, &["ann"]).await.unwrap_err();

    assert!(matches!(error, StoreError::Unexpected { .. }), "{error:?}");
}
