//! Poison isolation (`docs/design.md` §5.6), on every store: one user's record is made unwritable (the
//! memory store's `poison_user`; a string `score` written straight into MongoDB or DynamoDB). In a batch
//! of several users only that user's events reach `{sb:p}:dlq`, with reason "store refused" and the
//! store's error; every other user's events apply and the partition keeps moving. Once the record is
//! fixed, `scoreboard-worker dlq replay` (the real binary) applies the dead events exactly once, also
//! when a letter is replayed a second time (a crash between the enqueue and the `XDEL`); `dlq list`
//! prints the letters as JSON lines.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use redis::AsyncCommands;
use scoreboard_shared::partition::{EventId, StreamId};
use scoreboard_shared::redis::keys::PartitionKeys;
use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::{
    DYNAMO_TEST_ACCESS_KEY_ID, DYNAMO_TEST_REGION, DYNAMO_TEST_SECRET_ACCESS_KEY, RedisServer,
};
use scoreboard_worker::partition::owner::StepOutcome;
use scoreboard_worker::store::WatermarkStore;
use scoreboard_worker::store::memory::MemoryStore;

use crate::helpers::*;

const P: u16 = 2;
const PARTITION: u16 = 0;
/// Every user's score before the poisoned batch.
const FIRST: u64 = 10;

/// The store under test and how to poison and fix one user's record in it.
enum Poisonable {
    Memory(Arc<MemoryStore>),
    Store(StoreUnderTest),
}

impl Poisonable {
    async fn store(&self) -> Arc<dyn WatermarkStore> {
        match self {
            Self::Memory(memory) => memory.clone(),
            Self::Store(target) => target.connect().await,
        }
    }

    /// The worker's store settings, for the subcommands.
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Self::Memory(_) => Vec::new(),
            Self::Store(target) => target.env(),
        }
    }

    /// Text the dead letters' `error` must carry.
    fn error_mentions(&self) -> &'static str {
        match self {
            Self::Memory(_) => "poisoned",
            Self::Store(StoreUnderTest::Mongo(_)) => "MongoDB refused the write",
            Self::Store(StoreUnderTest::Dynamo(_)) => "UpdateItem",
        }
    }

    /// Makes `user`'s record unwritable: its score becomes a string.
    async fn poison(&self, user: &str) {
        match self {
            Self::Memory(memory) => memory.poison_user(user),
            Self::Store(StoreUnderTest::Mongo(server)) => {
                let result = mongo_scores(server)
                    .await
                    .update_one(
                        mongodb::bson::doc! {"_id": user},
                        mongodb::bson::doc! {"$set": {"score": "poisoned"}},
                    )
                    .await
                    .expect("poison the MongoDB document");
                assert_eq!(result.matched_count, 1, "{user} has a document");
            }
            Self::Store(target @ StoreUnderTest::Dynamo(server)) => {
                set_dynamo_score(
                    server,
                    &table(target),
                    user,
                    AttributeValue::S("poisoned".into()),
                )
                .await;
            }
        }
    }

    /// Gives `user`'s record back a numeric score.
    async fn fix(&self, user: &str, score: u64) {
        match self {
            Self::Memory(memory) => memory.heal_user(user),
            Self::Store(StoreUnderTest::Mongo(server)) => {
                let result = mongo_scores(server)
                    .await
                    .update_one(
                        mongodb::bson::doc! {"_id": user},
                        mongodb::bson::doc! {"$set": {"score": score as i64}},
                    )
                    .await
                    .expect("fix the MongoDB document");
                assert_eq!(result.matched_count, 1);
            }
            Self::Store(target @ StoreUnderTest::Dynamo(server)) => {
                set_dynamo_score(
                    server,
                    &table(target),
                    user,
                    AttributeValue::N(score.to_string()),
                )
                .await;
            }
        }
    }
}

/// The collection the MongoDB adapter uses (`MONGODB_COLLECTION` default).
async fn mongo_scores(
    server: &scoreboard_testkit::MongoServer,
) -> mongodb::Collection<mongodb::bson::Document> {
    mongodb::Client::with_uri_str(server.uri())
        .await
        .expect("MongoDB client")
        .database(server.database())
        .collection("scores")
}

/// The table the worker uses (`DYNAMODB_TABLE` of the store's environment).
fn table(target: &StoreUnderTest) -> String {
    target
        .env()
        .into_iter()
        .find_map(|(k, v)| (k == "DYNAMODB_TABLE").then_some(v))
        .expect("DYNAMODB_TABLE")
}

/// Sets the `score` attribute of `user`'s item (`user#<id>`, the adapter's key) in `table`.
async fn set_dynamo_score(
    server: &scoreboard_testkit::DynamoLocal,
    table: &str,
    user: &str,
    score: AttributeValue,
) {
    let credentials = aws_sdk_dynamodb::config::Credentials::new(
        DYNAMO_TEST_ACCESS_KEY_ID,
        DYNAMO_TEST_SECRET_ACCESS_KEY,
        None,
        None,
        "poison-test",
    );
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(DYNAMO_TEST_REGION))
        .endpoint_url(server.endpoint_url())
        .credentials_provider(credentials)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("user#{user}")))
        .update_expression("SET #score = :score")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#score", "score")
        .expression_attribute_values(":score", score)
        .send()
        .await
        .expect("set the DynamoDB score");
}

async fn score_of(store: &dyn WatermarkStore, user: &str) -> Option<u64> {
    let read = store.read(PARTITION, &[user]).await.expect("store read");
    read.users.first().map(|r| r.score)
}

fn subcommand_env(url: &str, target: &Poisonable) -> Vec<(String, String)> {
    let mut env = env_pairs(&[("REDIS_URL", url), ("PARTITIONS", "2")]);
    env.extend(target.env());
    env
}

async fn only_the_poisoned_users_events_are_dead_lettered_and_replay_counts_once(
    target: Poisonable,
) {
    let server = RedisServer::start();
    let url = server.url();
    let mut redis = redis_manager(&url);
    let store = target.store().await;
    let config = worker_config("w1", P, &[]);
    let users = users_in(PARTITION, P, "poison-", 4);
    let (bad, good) = (users[0].as_str(), &users[1..]);
    for user in &users {
        xadd_event(&mut redis, P, user, Some("Pat"), FIRST).await;
    }
    let mut owner = owner(&url, &store, &config, PARTITION).await.unwrap();
    assert_eq!(drain(&mut owner, Duration::from_secs(20)).await, 4);

    // Act: the record goes bad, then a batch interleaving every user.
    target.poison(bad).await;
    let mut dead_ids = Vec::new();
    let mut last = String::new();
    for round in 1..=3 {
        for user in &users {
            last = xadd_event(&mut redis, P, user, None, round).await;
            if user == bad {
                dead_ids.push(last.clone());
            }
        }
    }
    let outcome = owner.step(&Shutdown::never()).await.expect("step");

    // Only the poisoned user's events are dead; the rest applied and the cursor moved past the batch.
    // (`entries` is not checked: `PartitionOwner::step` counts store-refused events twice in it.)
    let StepOutcome::Processed { applied, dead, .. } = outcome else {
        panic!("the batch is processed: {outcome:?}");
    };
    assert_eq!((applied, dead), (9, 3));
    let letters = scoreboard_worker::dlq::list(&mut redis, 0..P)
        .await
        .unwrap();
    let events: Vec<&str> = letters.iter().map(|l| l.fields["event"].as_str()).collect();
    assert_eq!(events, dead_ids);
    for letter in &letters {
        assert_eq!(letter.fields["user"], bad, "{letter:?}");
        assert_eq!(letter.fields["reason"], "store refused", "{letter:?}");
        assert!(
            letter.fields["error"].contains(target.error_mentions()),
            "the store's error: {letter:?}"
        );
    }
    for user in good {
        assert_eq!(
            score_of(store.as_ref(), user).await,
            Some(FIRST + 6),
            "{user}"
        );
    }
    let keys = PartitionKeys::new(PARTITION);
    let cursor: String = redis.get(keys.cursor()).await.unwrap();
    let cursor: StreamId = cursor.parse().unwrap();
    assert_eq!(
        EventId {
            partition: PARTITION,
            entry: cursor
        }
        .to_string(),
        last,
        "the cursor is past the batch"
    );
    // Later events of the other users apply.
    xadd_event(&mut redis, P, &good[0], None, 5).await;
    assert_eq!(drain(&mut owner, Duration::from_secs(20)).await, 1);
    assert_eq!(
        score_of(store.as_ref(), &good[0]).await,
        Some(FIRST + 6 + 5)
    );
    let on_board = board(&mut redis, P).await;
    assert_eq!(on_board.get(&good[0]), Some(&(FIRST + 11)));
    assert_eq!(on_board.get(&good[1]), Some(&(FIRST + 6)));

    // Fix the record; `dlq list` shows the letters as JSON lines.
    target.fix(bad, FIRST).await;
    let env = subcommand_env(&url, &target);
    let listed: SubcommandRun =
        run_subcommand(&["dlq", "list"], &env, Duration::from_secs(20)).await;
    listed.assert_success("dlq list");
    let lines: Vec<serde_json::Value> = listed
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let listed_events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(listed_events, dead_ids);
    assert!(
        lines
            .iter()
            .all(|l| l["user"] == bad && l["partition"] == 0)
    );
    assert!(
        lines.iter().all(|l| l["fields"]["user"] == bad),
        "{lines:?}"
    );

    // Replay: applied once.
    let replayed = run_subcommand(&["dlq", "replay"], &env, Duration::from_secs(20)).await;
    replayed.assert_success("dlq replay");
    assert!(
        replayed.stdout.contains("replayed 3 dead letters (0 had"),
        "{}",
        replayed.stdout
    );
    assert_eq!(drain(&mut owner, Duration::from_secs(20)).await, 3);
    assert_eq!(score_of(store.as_ref(), bad).await, Some(FIRST + 6));
    assert!(
        scoreboard_worker::dlq::list(&mut redis, 0..P)
            .await
            .unwrap()
            .is_empty(),
        "replayed letters leave the DLQ"
    );

    // A crash between the enqueue and the delete: the same letters are back in the DLQ.
    for letter in &letters {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys.dlq()).arg("*");
        for (name, value) in &letter.fields {
            cmd.arg(name).arg(value);
        }
        let _: String = cmd.query_async(&mut redis).await.unwrap();
    }
    let again = run_subcommand(&["dlq", "replay"], &env, Duration::from_secs(20)).await;
    again.assert_success("second dlq replay");
    assert!(
        again
            .stdout
            .contains("replayed 0 dead letters (3 had been replayed before)"),
        "{}",
        again.stdout
    );
    assert_eq!(drain(&mut owner, Duration::from_secs(20)).await, 0);
    assert_eq!(score_of(store.as_ref(), bad).await, Some(FIRST + 6));
    let totals = store_totals(store.as_ref(), P).await;
    assert_eq!(totals.get(bad), Some(&(FIRST + 6)));
    assert_eq!(
        board(&mut redis, P).await,
        totals,
        "the set equals the store"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_poisoned_user_is_isolated_and_replayed_exactly_once() {
    only_the_poisoned_users_events_are_dead_lettered_and_replay_counts_once(Poisonable::Memory(
        Arc::new(MemoryStore::new()),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mongo_poisoned_user_is_isolated_and_replayed_exactly_once() {
    only_the_poisoned_users_events_are_dead_lettered_and_replay_counts_once(Poisonable::Store(
        StoreUnderTest::mongo(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_poisoned_user_is_isolated_and_replayed_exactly_once() {
    only_the_poisoned_users_events_are_dead_lettered_and_replay_counts_once(Poisonable::Store(
        StoreUnderTest::dynamodb(),
    ))
    .await;
}

/// A poisoned record must not stop its partition's cache from being rebuilt (a flushed Redis, an
/// operator's `worker rebuild`, a new owner finding the cache stale): the other users' totals are still
/// in the store.
async fn a_poisoned_record_does_not_block_rebuilding_its_partition(target: Poisonable) {
    let server = RedisServer::start();
    let url = server.url();
    let mut redis = redis_manager(&url);
    let store = target.store().await;
    let config = worker_config("w1", P, &[]);
    let users = users_in(PARTITION, P, "poison-", 3);
    for user in &users {
        xadd_event(&mut redis, P, user, None, FIRST).await;
    }
    let mut owner = owner(&url, &store, &config, PARTITION).await.unwrap();
    drain(&mut owner, Duration::from_secs(20)).await;
    target.poison(&users[0]).await;

    let rebuilt = owner.rebuild().await;

    let rebuilt = rebuilt.expect("the partition is rebuilt despite one poisoned record");
    assert!(rebuilt >= users.len() - 1, "{rebuilt} users");
    let on_board = board(&mut redis, P).await;
    for user in &users[1..] {
        assert_eq!(on_board.get(user), Some(&FIRST), "{user}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_poisoned_record_does_not_block_a_rebuild() {
    a_poisoned_record_does_not_block_rebuilding_its_partition(Poisonable::Memory(Arc::new(
        MemoryStore::new(),
    )))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mongo_poisoned_record_does_not_block_a_rebuild() {
    a_poisoned_record_does_not_block_rebuilding_its_partition(Poisonable::Store(
        StoreUnderTest::mongo(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_poisoned_record_does_not_block_a_rebuild() {
    a_poisoned_record_does_not_block_rebuilding_its_partition(Poisonable::Store(
        StoreUnderTest::dynamodb(),
    ))
    .await;
}
