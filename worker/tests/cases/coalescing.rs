//! Coalescing and the store: a batch becomes ONE bulk update command and ONE read, totals exact; a
//! re-delivered overlap takes the per-event path and counts each event once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::ClientOptions;
use scoreboard_testkit::RedisServer;
use scoreboard_worker::StepOutcome;
use scoreboard_worker::config::{MongoConfig, StoreConfig};
use scoreboard_worker::store::mongo::MongoStore;
use scoreboard_worker::store::{ScoreStore, StoreEvent, UserDelta};

use crate::helpers::{self, StoreUnderTest};

/// A MongoStore whose client records every command it sends.
async fn monitored_store(target: &StoreUnderTest) -> (Arc<MongoStore>, Arc<Mutex<Vec<String>>>) {
    let StoreConfig::MongoDb(config) = target.config() else {
        panic!("mongo expected")
    };
    let commands = Arc::new(Mutex::new(Vec::new()));
    let seen = commands.clone();
    let mut options = ClientOptions::parse(secrecy::ExposeSecret::expose_secret(&config.uri))
        .await
        .unwrap();
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(started) = event {
            seen.lock().unwrap().push(started.command_name.clone());
        }
    }));
    let store = MongoStore::with_options(options, &MongoConfig { ..config })
        .await
        .unwrap();
    commands.lock().unwrap().clear();
    (Arc::new(store), commands)
}

fn writes_and_reads(commands: &Mutex<Vec<String>>) -> (usize, usize, Vec<String>) {
    let all = commands.lock().unwrap().clone();
    let updates = all.iter().filter(|c| *c == "update").count();
    let finds = all.iter().filter(|c| *c == "find").count();
    (updates, finds, all)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_many_events_for_few_users_is_one_bulk_write_with_exact_totals() {
    let redis_server = RedisServer::start();
    let target = StoreUnderTest::mongo();
    let (store, commands) = monitored_store(&target).await;
    let mut redis = helpers::redis_manager(&redis_server.url());
    let users = ["ann", "bob", "cyd", "dee", "eve"];
    let mut expected = BTreeMap::<String, u64>::new();
    for i in 0..400u64 {
        let user = users[(i * 7 % 5) as usize];
        let inc = 1 + i % 13;
        helpers::xadd_event(&mut redis, user, Some("N"), inc).await;
        *expected.entry(user.to_owned()).or_default() += inc;
    }
    let dyn_store: Arc<dyn ScoreStore> = store.clone();
    let mut worker = helpers::worker(&redis, &dyn_store, helpers::worker_config("c1", &[])).await;

    let outcome = worker
        .step(&scoreboard_shared::shutdown::Shutdown::never())
        .await
        .unwrap();

    assert!(
        matches!(
            outcome,
            StepOutcome::Processed {
                applied: 400,
                dead: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    let (updates, finds, all) = writes_and_reads(&commands);
    assert_eq!(
        (updates, finds),
        (1, 1),
        "one bulk update and one read per batch, saw {all:?}"
    );
    assert_eq!(helpers::store_totals(dyn_store.as_ref()).await, expected);
    assert_eq!(helpers::board(&mut redis).await, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_redelivery_applies_each_event_once_via_the_per_event_path() {
    let target = StoreUnderTest::mongo();
    let (store, commands) = monitored_store(&target).await;
    let delta = |user: &str, events: &[(&str, u64)]| UserDelta {
        user_id: user.to_owned(),
        display_name: None,
        events: events
            .iter()
            .map(|(id, inc)| StoreEvent {
                event_id: (*id).to_owned(),
                increment: *inc,
            })
            .collect(),
    };
    store
        .apply_batch(&[
            delta("u1", &[("1-0", 5), ("1-1", 7)]),
            delta("u2", &[("1-2", 1)]),
        ])
        .await
        .unwrap();
    commands.lock().unwrap().clear();

    // 1-1 was applied already; 1-3 is new. u2's event is new too.
    let totals = store
        .apply_batch(&[
            delta("u1", &[("1-1", 7), ("1-3", 100)]),
            delta("u2", &[("1-4", 2)]),
        ])
        .await
        .unwrap();

    let mut totals: Vec<(String, u64)> = totals.into_iter().map(|t| (t.user_id, t.score)).collect();
    totals.sort();
    assert_eq!(totals, [("u1".to_owned(), 112), ("u2".to_owned(), 3)]);
    let (updates, _, all) = writes_and_reads(&commands);
    assert!(
        updates >= 2,
        "the conflicting user took the per-event path: {all:?}"
    );

    // The very same batch again changes nothing.
    let again = store
        .apply_batch(&[
            delta("u1", &[("1-1", 7), ("1-3", 100)]),
            delta("u2", &[("1-4", 2)]),
        ])
        .await
        .unwrap();
    let sum: u64 = again.iter().map(|t| t.score).sum();
    assert_eq!(sum, 115);
    tokio::time::timeout(Duration::from_secs(5), store.ping())
        .await
        .unwrap()
        .unwrap();
}
