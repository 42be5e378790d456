//! The contract every [`WatermarkStore`] keeps (`docs/design.md` §5.3), as one set of cases run
//! against each adapter (memory, MongoDB on the test kit's server, DynamoDB Local): a compare-and-set on
//! each user's `wm` (first write, hit, stale miss, a `None` expectation on a user with a `wm`, two
//! writers at once), reads of existing users and the partition's `hw`, `hw` raised but never lowered,
//! partition scans, a poisoned user refused alone, several partitions written in one call (each keeps
//! its own outcomes and `hw`), outages failing the whole call, and the migration of
//! v1 records (seeded as v1 left them). `contract_cases!` instantiates each case per adapter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ::mongodb::bson::{DateTime, Document, doc};
use aws_sdk_dynamodb::types::AttributeValue;
use futures::TryStreamExt;
use scoreboard_shared::partition::{Partitioner, StreamId};
use scoreboard_testkit::{DynamoLocal, MongoServer};
use scoreboard_worker::config::MongoConfig;
use scoreboard_worker::store::dynamo::{DynamoStore, RetryPolicy};
use scoreboard_worker::store::memory::MemoryStore;
use scoreboard_worker::store::mongo::MongoStore;
use scoreboard_worker::store::{
    PartitionWrite, StoreError, UserRecord, UserTotal, UserWrite, Watermark, WatermarkStore,
    WriteOutcome,
};

/// A store under test and the server behind it.
pub struct Backend {
    pub store: Arc<dyn WatermarkStore>,
    kind: Kind,
}

/// A user as v1 left it: total, name and the ids of the events applied to it.
struct V1User {
    id: &'static str,
    score: u64,
    name: Option<&'static str>,
    events: &'static [(&'static str, u64)],
}

enum Kind {
    Memory(Arc<MemoryStore>),
    Mongo {
        server: MongoServer,
        raw: ::mongodb::Collection<Document>,
    },
    Dynamo {
        server: DynamoLocal,
        store: DynamoStore,
    },
}

impl Backend {
    pub fn memory() -> Self {
        let store = Arc::new(MemoryStore::new());
        Self {
            store: store.clone(),
            kind: Kind::Memory(store),
        }
    }

    /// MongoDB on a server of the test's own (nx-27017, or a fresh database of `MONGODB_URI`'s mongod).
    pub async fn mongo() -> Self {
        let server = MongoServer::start();
        let config = MongoConfig {
            uri: server.uri().to_owned().into(),
            database: server.database().to_owned(),
            collection: "scores".to_owned(),
        };
        let store = Arc::new(MongoStore::connect(&config).await.expect("connect"));
        let client = ::mongodb::Client::with_uri_str(server.uri()).await.unwrap();
        let raw = client.database(server.database()).collection("scores");
        Self {
            store,
            kind: Kind::Mongo { server, raw },
        }
    }

    /// DynamoDB Local, its table created, with a short retry budget (outages end quickly).
    pub async fn dynamo() -> Self {
        let server = DynamoLocal::start();
        let store = crate::dynamo::store_with(&server, |o| {
            o.retry = RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(100),
            };
            o.attempt_timeout = Duration::from_secs(2);
        })
        .await;
        Self {
            store: Arc::new(store.clone()),
            kind: Kind::Dynamo { server, store },
        }
    }

    /// Makes `user`'s record one the store cannot add to (its score a string).
    async fn poison(&self, user: &str) {
        match &self.kind {
            Kind::Memory(store) => store.poison_user(user),
            Kind::Mongo { raw, .. } => {
                let result = raw
                    .update_one(doc! {"_id": user}, doc! {"$set": {"score": "lots"}})
                    .await
                    .unwrap();
                assert_eq!(result.matched_count, 1);
            }
            Kind::Dynamo { store, .. } => {
                store
                    .client()
                    .update_item()
                    .table_name(store.table())
                    .key("pk", AttributeValue::S(format!("user#{user}")))
                    .update_expression("SET score = :s")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":s", AttributeValue::S("lots".into()))
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// Makes the store unreachable (memory: the next call fails as unavailable).
    fn outage(&mut self) {
        match &mut self.kind {
            // The single write and each partition of the `write_many` (the default makes one call each).
            Kind::Memory(store) => store.fail_next(3),
            Kind::Mongo { server, .. } => server.stop(),
            Kind::Dynamo { server, .. } => server.stop(),
        }
    }

    /// Writes `users` the way v1 stored them, without `p` or `wm`: MongoDB documents
    /// `{_id, score, name, applied, updatedAt}`; DynamoDB user items plus one `event#<id>` marker item
    /// per applied event. `false` for the memory store, which never holds v1 records.
    async fn seed_v1(&self, users: &[V1User]) -> bool {
        match &self.kind {
            Kind::Memory(_) => false,
            Kind::Mongo { raw, .. } => {
                let docs = users.iter().map(|user| {
                    let applied: Vec<&str> = user.events.iter().map(|(id, _)| *id).collect();
                    let mut doc = doc! {
                        "_id": user.id,
                        "score": user.score as i64,
                        "applied": applied,
                        "updatedAt": DateTime::now(),
                    };
                    if let Some(name) = user.name {
                        doc.insert("name", name);
                    }
                    doc
                });
                raw.insert_many(docs).await.unwrap();
                true
            }
            Kind::Dynamo { store, .. } => {
                let n = |v: u64| AttributeValue::N(v.to_string());
                let s = |v: &str| AttributeValue::S(v.to_owned());
                for user in users {
                    let mut put = store
                        .client()
                        .put_item()
                        .table_name(store.table())
                        .item("pk", s(&format!("user#{}", user.id)))
                        .item("userId", s(user.id))
                        .item("score", n(user.score))
                        .item("updatedAt", n(1_700_000_000_000));
                    if let Some(name) = user.name {
                        put = put.item("name", s(name));
                    }
                    put.send().await.unwrap();
                    for (event, increment) in user.events {
                        store
                            .client()
                            .put_item()
                            .table_name(store.table())
                            .item("pk", s(&format!("event#{event}")))
                            .item("userId", s(user.id))
                            .item("inc", n(*increment))
                            .item("expiresAt", n(1_800_000_000))
                            .send()
                            .await
                            .unwrap();
                    }
                }
                true
            }
        }
    }

    /// v1 leftovers: MongoDB documents with `applied`, DynamoDB marker items.
    async fn v1_leftovers(&self) -> usize {
        match &self.kind {
            Kind::Memory(_) => 0,
            Kind::Mongo { raw, .. } => raw
                .count_documents(doc! {"applied": {"$exists": true}})
                .await
                .unwrap() as usize,
            Kind::Dynamo { store, .. } => {
                let out = store
                    .client()
                    .scan()
                    .table_name(store.table())
                    .consistent_read(true)
                    .filter_expression("begins_with(pk, :e)")
                    .expression_attribute_values(":e", AttributeValue::S("event#".into()))
                    .send()
                    .await
                    .unwrap();
                out.items().len()
            }
        }
    }

    /// What a first migration of `users` v1 users with `events` applied events changes.
    fn first_migration_changes(&self, users: u64, events: u64) -> u64 {
        match self.kind {
            Kind::Dynamo { .. } => users + events,
            _ => users,
        }
    }

    fn is_spawned_mongo_or_other(&self) -> bool {
        match &self.kind {
            Kind::Mongo { server, .. } => server.is_spawned(),
            _ => true,
        }
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

fn applied(outcome: &WriteOutcome) -> Option<u64> {
    match outcome {
        WriteOutcome::Applied { score } => Some(*score),
        _ => None,
    }
}

async fn record(store: &dyn WatermarkStore, partition: u16, user: &str) -> Option<UserRecord> {
    let read = store.read(partition, &[user]).await.unwrap();
    read.users.into_iter().find(|r| r.user_id == user)
}

async fn hw_of(store: &dyn WatermarkStore, partition: u16) -> Option<Watermark> {
    store.read(partition, &[]).await.unwrap().hw
}

async fn totals(store: &dyn WatermarkStore, partition: u16) -> BTreeMap<String, u64> {
    let all: Vec<UserTotal> = store
        .partition_totals(partition)
        .try_collect()
        .await
        .unwrap();
    let map: BTreeMap<_, _> = all.iter().map(|t| (t.user_id.clone(), t.score)).collect();
    assert_eq!(map.len(), all.len(), "a user listed twice");
    map
}

pub async fn a_first_write_creates_the_user(backend: Backend) {
    let store = backend.store.as_ref();
    assert_eq!(record(store, 1, "ann").await, None);

    let mut first = write("ann", None, 5, 10);
    first.display_name = Some("Ann".to_owned());
    let outcomes = store.write(1, &[first], None, wm(10)).await.unwrap();

    assert_eq!(applied(&outcomes[0]), Some(5));
    assert_eq!(
        record(store, 1, "ann").await,
        Some(UserRecord {
            user_id: "ann".to_owned(),
            score: 5,
            display_name: Some("Ann".to_owned()),
            wm: Some(wm(10)),
        })
    );
}

pub async fn a_write_with_the_wm_read_applies_and_returns_the_new_total(backend: Backend) {
    let store = backend.store.as_ref();
    let mut first = write("ann", None, 5, 10);
    first.display_name = Some("Ann".to_owned());
    store.write(1, &[first], None, wm(10)).await.unwrap();

    let read = record(store, 1, "ann").await.unwrap();
    let next = write("ann", Some((read.wm.unwrap(), read.score)), 7, 20);
    let outcomes = store.write(1, &[next], Some(wm(10)), wm(20)).await.unwrap();

    assert_eq!(applied(&outcomes[0]), Some(12));
    let after = record(store, 1, "ann").await.unwrap();
    assert_eq!((after.score, after.wm), (12, Some(wm(20))));
    assert_eq!(
        after.display_name.as_deref(),
        Some("Ann"),
        "a write without a name keeps it"
    );
}

pub async fn a_write_with_a_stale_wm_is_a_conflict_and_changes_nothing(backend: Backend) {
    let store = backend.store.as_ref();
    store
        .write(1, &[write("ann", None, 5, 10)], None, wm(10))
        .await
        .unwrap();
    store
        .write(
            1,
            &[write("ann", Some((wm(10), 5)), 1, 20)],
            Some(wm(10)),
            wm(20),
        )
        .await
        .unwrap();

    // A zombie that read wm 10 writes again.
    let outcomes = store
        .write(
            1,
            &[write("ann", Some((wm(10), 5)), 100, 30)],
            Some(wm(10)),
            wm(30),
        )
        .await
        .unwrap();

    assert!(
        matches!(outcomes[0], WriteOutcome::Conflict),
        "{outcomes:?}"
    );
    let after = record(store, 1, "ann").await.unwrap();
    assert_eq!(
        (after.score, after.wm),
        (6, Some(wm(20))),
        "score and wm unchanged"
    );
}

pub async fn a_write_expecting_no_wm_on_a_user_with_one_is_a_conflict(backend: Backend) {
    let store = backend.store.as_ref();
    store
        .write(1, &[write("ann", None, 5, 10)], None, wm(10))
        .await
        .unwrap();

    let outcomes = store
        .write(1, &[write("ann", None, 3, 20)], None, wm(20))
        .await
        .unwrap();

    assert!(
        matches!(outcomes[0], WriteOutcome::Conflict),
        "{outcomes:?}"
    );
    let after = record(store, 1, "ann").await.unwrap();
    assert_eq!((after.score, after.wm), (5, Some(wm(10))));
}

pub async fn two_writers_with_the_same_wm_apply_once(backend: Backend) {
    let store = backend.store.clone();
    let users: Vec<String> = (0..20).map(|u| format!("user{u}")).collect();
    let writes: Vec<UserWrite> = users.iter().map(|u| write(u, None, 1, 10)).collect();

    let (a, b) = tokio::join!(
        store.write(1, &writes, None, wm(10)),
        backend.store.write(1, &writes, None, wm(10))
    );
    let (a, b) = (a.unwrap(), b.unwrap());

    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        let hits = usize::from(applied(a).is_some()) + usize::from(applied(b).is_some());
        assert_eq!(hits, 1, "user{i}: {a:?} / {b:?}");
        assert!(matches!(a, WriteOutcome::Conflict) || matches!(b, WriteOutcome::Conflict));
    }
    assert!(totals(store.as_ref(), 1).await.values().all(|s| *s == 1));
}

pub async fn read_returns_only_existing_users_and_the_partitions_hw(backend: Backend) {
    let store = backend.store.as_ref();
    store
        .write(
            2,
            &[write("ann", None, 1, 10), write("bob", None, 2, 11)],
            None,
            wm(11),
        )
        .await
        .unwrap();

    let read = store
        .read(2, &["bob", "ghost", "ann", "bob"])
        .await
        .unwrap();

    let found: Vec<(&str, u64)> = read
        .users
        .iter()
        .map(|r| (r.user_id.as_str(), r.score))
        .collect();
    assert_eq!(
        found,
        [("bob", 2), ("ann", 1)],
        "existing users once, in the order asked"
    );
    assert_eq!(read.hw, Some(wm(11)));
    let other = store.read(3, &["ghost"]).await.unwrap();
    assert_eq!(
        (other.users.len(), other.hw),
        (0, None),
        "hw is per partition"
    );
    assert_eq!(store.read(2, &[]).await.unwrap().hw, Some(wm(11)));
}

pub async fn hw_is_raised_from_a_stale_read_and_never_lowered(backend: Backend) {
    let store = backend.store.as_ref();
    store.write(4, &[], None, wm(5)).await.unwrap();
    assert_eq!(hw_of(store, 4).await, Some(wm(5)));

    // Stale reads (None, then 3) of an hw that is 5: raised all the same.
    store
        .write(4, &[write("ann", None, 1, 7)], None, wm(7))
        .await
        .unwrap();
    assert_eq!(hw_of(store, 4).await, Some(wm(7)));
    store.write(4, &[], Some(wm(3)), wm(9)).await.unwrap();
    assert_eq!(hw_of(store, 4).await, Some(wm(9)));

    // A lower hw (a zombie's batch) never lowers it, whatever it read.
    store.write(4, &[], Some(wm(5)), wm(6)).await.unwrap();
    store.write(4, &[], None, wm(8)).await.unwrap();
    store.write(4, &[], Some(wm(9)), wm(2)).await.unwrap();
    assert_eq!(hw_of(store, 4).await, Some(wm(9)));
}

pub async fn partition_totals_lists_exactly_that_partitions_users(backend: Backend) {
    let store = backend.store.as_ref();
    store
        .write(
            1,
            &[write("ann", None, 1, 10), write("bob", None, 2, 10)],
            None,
            wm(10),
        )
        .await
        .unwrap();
    store
        .write(2, &[write("cyd", None, 3, 11)], None, wm(11))
        .await
        .unwrap();

    assert_eq!(
        totals(store, 1).await,
        BTreeMap::from([("ann".to_owned(), 1), ("bob".to_owned(), 2)]),
        "not the other partition's users, not the hw record"
    );
    assert_eq!(
        totals(store, 2).await,
        BTreeMap::from([("cyd".to_owned(), 3)])
    );
    assert!(totals(store, 3).await.is_empty());
}

pub async fn a_poisoned_user_is_refused_alone(backend: Backend) {
    let store = backend.store.as_ref();
    let first = ["ann", "bob", "cyd"].map(|u| write(u, None, 1, 10));
    store.write(1, &first, None, wm(10)).await.unwrap();
    backend.poison("bob").await;

    let read = store
        .read(1, &["ann", "bob", "cyd"])
        .await
        .expect("read despite the poison");
    assert_eq!(read.users.len(), 3);
    let next = ["ann", "bob", "cyd"].map(|u| write(u, Some((wm(10), 1)), 4, 20));
    let outcomes = store.write(1, &next, Some(wm(10)), wm(20)).await.unwrap();

    assert_eq!(applied(&outcomes[0]), Some(5));
    assert!(
        matches!(&outcomes[1], WriteOutcome::Refused(e) if !e.is_transient()),
        "{outcomes:?}"
    );
    assert_eq!(applied(&outcomes[2]), Some(5));
    assert_eq!(
        record(store, 1, "bob").await.unwrap().wm,
        Some(wm(10)),
        "bob unchanged"
    );
    assert_eq!(record(store, 1, "cyd").await.unwrap().score, 5);
}

pub async fn several_partitions_written_in_one_call_keep_their_outcomes_apart(backend: Backend) {
    let store = backend.store.as_ref();
    store
        .write(1, &[write("ann", None, 1, 10)], None, wm(10))
        .await
        .unwrap();
    store
        .write(
            2,
            &[write("bob", None, 1, 10), write("cyd", None, 1, 10)],
            None,
            wm(10),
        )
        .await
        .unwrap();
    backend.poison("cyd").await;

    let results = store
        .write_many(&[
            // Partition 1: a stale expectation for ann (a conflict), a new user, hw read right.
            PartitionWrite {
                partition: 1,
                writes: vec![
                    write("ann", Some((wm(5), 1)), 2, 20),
                    write("dan", None, 3, 20),
                ],
                hw_read: Some(wm(10)),
                hw: wm(20),
            },
            // Partition 2: bob applies, the poisoned cyd is refused alone, hw read stale (raised anyway).
            PartitionWrite {
                partition: 2,
                writes: vec![
                    write("bob", Some((wm(10), 1)), 4, 30),
                    write("cyd", Some((wm(10), 1)), 4, 30),
                ],
                hw_read: None,
                hw: wm(30),
            },
        ])
        .await;

    assert_eq!(results.len(), 2);
    let first = results[0].as_ref().expect("partition 1");
    assert!(matches!(first[0], WriteOutcome::Conflict), "{first:?}");
    assert_eq!(applied(&first[1]), Some(3));
    let second = results[1].as_ref().expect("partition 2");
    assert_eq!(applied(&second[0]), Some(5));
    assert!(
        matches!(&second[1], WriteOutcome::Refused(e) if !e.is_transient()),
        "{second:?}"
    );
    assert_eq!(
        totals(store, 1).await,
        BTreeMap::from([("ann".to_owned(), 1), ("dan".to_owned(), 3)])
    );
    assert_eq!(record(store, 2, "bob").await.unwrap().score, 5);
    assert_eq!(
        record(store, 2, "cyd").await.unwrap().wm,
        Some(wm(10)),
        "cyd unchanged"
    );
    assert_eq!(
        (hw_of(store, 1).await, hw_of(store, 2).await),
        (Some(wm(20)), Some(wm(30)))
    );
}

pub async fn an_outage_fails_the_whole_call_as_unavailable(mut backend: Backend) {
    if !backend.is_spawned_mongo_or_other() {
        return; // a shared mongod cannot be stopped by one test
    }
    backend
        .store
        .write(1, &[write("ann", None, 1, 10)], None, wm(10))
        .await
        .unwrap();
    backend.outage();

    let error = backend
        .store
        .write(
            1,
            &[write("ann", Some((wm(10), 1)), 1, 20)],
            Some(wm(10)),
            wm(20),
        )
        .await
        .unwrap_err();

    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    // Several partitions in one call: each of them fails.
    let batch = |partition| PartitionWrite {
        partition,
        writes: vec![write("ann", None, 1, 30)],
        hw_read: None,
        hw: wm(30),
    };
    let results = backend.store.write_many(&[batch(1), batch(2)]).await;
    assert_eq!(results.len(), 2);
    for result in results {
        assert!(
            matches!(result, Err(StoreError::Unavailable { .. })),
            "{result:?}"
        );
    }
}

pub async fn migrate_gives_v1_records_a_partition_drops_leftovers_and_is_idempotent(
    backend: Backend,
) {
    let partitioner = Partitioner::new(4);
    let seeded = backend
        .seed_v1(&[
            V1User {
                id: "ann",
                score: 11,
                name: Some("Ann"),
                events: &[("1-0", 5), ("1-1", 6)],
            },
            V1User {
                id: "bob",
                score: 1,
                name: None,
                events: &[("1-2", 1)],
            },
            V1User {
                id: "cyd",
                score: 2,
                name: None,
                events: &[("1-3", 2)],
            },
        ])
        .await;
    if !seeded {
        // The memory store never holds v1 records: there is nothing to migrate.
        assert_eq!(backend.store.migrate(4).await.unwrap(), 0);
        return;
    }
    assert!(backend.v1_leftovers().await > 0);

    let changed = backend.store.migrate(4).await.unwrap();

    assert_eq!(changed, backend.first_migration_changes(3, 4));
    assert_eq!(backend.v1_leftovers().await, 0, "v1 leftovers dropped");
    assert_eq!(backend.store.migrate(4).await.unwrap(), 0, "idempotent");
    let p = partitioner.partition_of("ann");
    assert_eq!(
        totals(backend.store.as_ref(), p).await.get("ann"),
        Some(&11)
    );
    let ann = record(backend.store.as_ref(), p, "ann").await.unwrap();
    assert_eq!((ann.score, ann.wm), (11, None));
    assert_eq!(ann.display_name.as_deref(), Some("Ann"));
    let mut again = write("ann", None, 4, 10);
    again.expected_score = 11;
    let outcomes = backend
        .store
        .write(p, &[again], None, wm(10))
        .await
        .unwrap();
    assert_eq!(applied(&outcomes[0]), Some(15), "{outcomes:?}");
    for user in ["bob", "cyd"] {
        let p = partitioner.partition_of(user);
        assert!(
            totals(backend.store.as_ref(), p).await.contains_key(user),
            "{user}"
        );
    }
}

pub async fn ping_answers_when_the_store_is_reachable(backend: Backend) {
    WatermarkStore::ping(backend.store.as_ref())
        .await
        .expect("reachable");
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
    a_first_write_creates_the_user,
    a_write_with_the_wm_read_applies_and_returns_the_new_total,
    a_write_with_a_stale_wm_is_a_conflict_and_changes_nothing,
    a_write_expecting_no_wm_on_a_user_with_one_is_a_conflict,
    two_writers_with_the_same_wm_apply_once,
    read_returns_only_existing_users_and_the_partitions_hw,
    hw_is_raised_from_a_stale_read_and_never_lowered,
    partition_totals_lists_exactly_that_partitions_users,
    a_poisoned_user_is_refused_alone,
    several_partitions_written_in_one_call_keep_their_outcomes_apart,
    an_outage_fails_the_whole_call_as_unavailable,
    migrate_gives_v1_records_a_partition_drops_leftovers_and_is_idempotent,
    ping_answers_when_the_store_is_reachable,
);
