//! The contract every [`ScoreStore`] keeps, as one set of cases run against each adapter: absolute totals
//! and names, each event id counting once (redelivered whole, partly, or concurrently), full scans and
//! ping. A case is written once; `contract_cases!` instantiates it per adapter.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use scoreboard_testkit::{DynamoLocal, MongoServer};
use scoreboard_worker::config::{Env, StoreConfig};
use scoreboard_worker::store::memory::MemoryStore;
use scoreboard_worker::store::{self, ScoreStore, StoreEvent, UserDelta, UserTotal};

/// A store under test and the server behind it (kept alive for the test's duration).
pub struct Backend {
    pub store: Arc<dyn ScoreStore>,
    _server: Server,
}

enum Server {
    None,
    Mongo(MongoServer),
    Dynamo(DynamoLocal),
}

impl Backend {
    pub fn memory() -> Self {
        Self {
            store: Arc::new(MemoryStore::new()),
            _server: Server::None,
        }
    }

    /// MongoDB through the production factory (nx-27017, or the `mongod` at `MONGODB_URI`).
    pub async fn mongo() -> Self {
        let server = MongoServer::start();
        let env = Env::from_pairs([
            ("STORE", "mongodb"),
            ("MONGODB_URI", server.uri()),
            ("MONGODB_DATABASE", server.database()),
        ]);
        Self {
            store: connect(&env).await,
            _server: Server::Mongo(server),
        }
    }

    /// DynamoDB Local through the production factory, creating its table.
    pub async fn dynamo() -> Self {
        let server = DynamoLocal::start();
        let mut pairs = server.child_env();
        pairs.extend([
            ("STORE".to_owned(), "dynamodb".to_owned()),
            ("DYNAMODB_TABLE".to_owned(), "contract".to_owned()),
            ("DYNAMODB_ENSURE_TABLE".to_owned(), "true".to_owned()),
        ]);
        Self {
            store: connect(&Env::from_pairs(pairs)).await,
            _server: Server::Dynamo(server),
        }
    }

    /// A second client of the same store (two workers).
    pub async fn second_client(&self) -> Arc<dyn ScoreStore> {
        match &self._server {
            Server::None => self.store.clone(),
            Server::Mongo(server) => {
                connect(&Env::from_pairs([
                    ("STORE", "mongodb"),
                    ("MONGODB_URI", server.uri()),
                    ("MONGODB_DATABASE", server.database()),
                ]))
                .await
            }
            Server::Dynamo(server) => {
                let mut pairs = server.child_env();
                pairs.extend([
                    ("STORE".to_owned(), "dynamodb".to_owned()),
                    ("DYNAMODB_TABLE".to_owned(), "contract".to_owned()),
                ]);
                connect(&Env::from_pairs(pairs)).await
            }
        }
    }
}

async fn connect(env: &Env) -> Arc<dyn ScoreStore> {
    let config = StoreConfig::from_env(env).expect("store config");
    store::connect(&config).await.expect("connect to the store")
}

pub fn delta(user: &str, name: Option<&str>, events: &[(&str, u64)]) -> UserDelta {
    UserDelta {
        user_id: user.to_owned(),
        display_name: name.map(str::to_owned),
        events: events
            .iter()
            .map(|(id, inc)| StoreEvent {
                event_id: (*id).to_owned(),
                increment: *inc,
            })
            .collect(),
    }
}

fn scores(totals: &[UserTotal]) -> BTreeMap<String, u64> {
    totals
        .iter()
        .map(|t| (t.user_id.clone(), t.score))
        .collect()
}

async fn all_scores(store: &dyn ScoreStore) -> BTreeMap<String, u64> {
    let totals: Vec<UserTotal> = store.all_totals().try_collect().await.expect("scan");
    let map = scores(&totals);
    assert_eq!(map.len(), totals.len(), "a scan returned a user twice");
    map
}

pub async fn apply_batch_returns_new_absolute_totals_and_names(backend: Backend) {
    let store = backend.store.as_ref();
    let first = store
        .apply_batch(&[
            delta("ann", Some("Ann"), &[("1-0", 5), ("1-1", 6)]),
            delta("bob", None, &[("1-2", 1)]),
        ])
        .await
        .unwrap();
    let second = store
        .apply_batch(&[delta("ann", Some("Annie"), &[("2-0", 10)])])
        .await
        .unwrap();

    assert_eq!(
        scores(&first),
        BTreeMap::from([("ann".to_owned(), 11), ("bob".to_owned(), 1)])
    );
    assert_eq!(
        (
            second.len(),
            second[0].score,
            second[0].display_name.as_deref()
        ),
        (1, 21, Some("Annie"))
    );
    assert!(store.apply_batch(&[]).await.unwrap().is_empty());
}

pub async fn a_redelivered_batch_changes_nothing(backend: Backend) {
    let store = backend.store.as_ref();
    let batch = [
        delta("alice", Some("Alice"), &[("1-0", 10), ("1-1", 5)]),
        delta("bob", None, &[("1-2", 7)]),
    ];

    let first = store.apply_batch(&batch).await.unwrap();
    let again = store.apply_batch(&batch).await.unwrap();

    assert_eq!(scores(&first), scores(&again), "the same absolute totals");
    assert_eq!(
        all_scores(store).await,
        BTreeMap::from([("alice".to_owned(), 15), ("bob".to_owned(), 7)])
    );
}

pub async fn a_partly_applied_redelivery_applies_only_the_new_events(backend: Backend) {
    let store = backend.store.as_ref();
    // A worker died after writing these two and before acknowledging them.
    store
        .apply_batch(&[delta("alice", None, &[("1-0", 10), ("1-1", 20)])])
        .await
        .unwrap();

    let totals = store
        .apply_batch(&[
            delta("alice", None, &[("1-0", 10), ("1-1", 20), ("1-2", 40)]),
            delta("bob", None, &[("1-3", 1)]),
        ])
        .await
        .unwrap();

    assert_eq!(
        scores(&totals),
        BTreeMap::from([("alice".to_owned(), 70), ("bob".to_owned(), 1)])
    );
}

pub async fn concurrent_redeliveries_apply_each_event_once(backend: Backend) {
    let other = backend.second_client().await;
    let batch: Vec<UserDelta> = (0..20)
        .map(|u| {
            let ids: Vec<String> = (0..5).map(|e| format!("{u}-{e}")).collect();
            let events: Vec<(&str, u64)> = ids.iter().map(|id| (id.as_str(), 1)).collect();
            delta(&format!("user{u}"), None, &events)
        })
        .collect();

    let (a, b) = tokio::join!(backend.store.apply_batch(&batch), other.apply_batch(&batch));
    a.unwrap();
    b.unwrap();

    let all = all_scores(backend.store.as_ref()).await;
    assert_eq!(all.len(), 20);
    assert!(all.values().all(|s| *s == 5), "{all:?}");
}

pub async fn a_scan_lists_every_user_once_with_name(backend: Backend) {
    let store = backend.store.as_ref();
    let ids: Vec<String> = (0..60).map(|i| format!("9-{i}")).collect();
    let batch: Vec<UserDelta> = (0..30)
        .map(|u| {
            let name = format!("Player {u}");
            delta(
                &format!("user{u:03}"),
                Some(&name),
                &[
                    (ids[2 * u].as_str(), 1),
                    (ids[2 * u + 1].as_str(), u as u64),
                ],
            )
        })
        .collect();
    store.apply_batch(&batch).await.unwrap();

    let totals: Vec<UserTotal> = store.all_totals().try_collect().await.unwrap();

    assert_eq!(totals.len(), 30, "each user once, nothing else");
    for total in &totals {
        let u: u64 = total.user_id["user".len()..].parse().unwrap();
        assert_eq!(total.score, u + 1, "{total:?}");
        assert_eq!(total.display_name, Some(format!("Player {u}")));
    }
}

pub async fn ping_answers_when_the_store_is_reachable(backend: Backend) {
    backend.store.ping().await.expect("reachable");
}

/// One `#[tokio::test]` per case and adapter, named `<adapter>::<case>`.
macro_rules! contract_cases {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $case() {
                    super::$case(super::Backend::memory()).await;
                }
            )*
        }
        mod mongodb {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $case() {
                    super::$case(super::Backend::mongo().await).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $case() {
                    super::$case(super::Backend::dynamo().await).await;
                }
            )*
        }
    };
}

contract_cases!(
    apply_batch_returns_new_absolute_totals_and_names,
    a_redelivered_batch_changes_nothing,
    a_partly_applied_redelivery_applies_only_the_new_events,
    concurrent_redeliveries_apply_each_event_once,
    a_scan_lists_every_user_once_with_name,
    ping_answers_when_the_store_is_reachable,
);
