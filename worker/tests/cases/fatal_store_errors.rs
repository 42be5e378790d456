//! Store errors at run time that retrying cannot fix: a DynamoDB table deleted under a running worker
//! binary makes it exit non-zero with the batch left pending (nothing acked, nothing lost) instead of
//! retrying forever.

use std::time::Duration;

use scoreboard_shared::redis::keys;
use scoreboard_testkit::{DynamoLocal, RedisServer};
use scoreboard_worker::config::{Env, StoreConfig};
use scoreboard_worker::store::dynamo::DynamoStore;

use crate::helpers::{self, WorkerProcess, env_pairs, xadd_event};

const TABLE: &str = "deleted-under-the-worker";
/// Entries appended after the table is gone.
const STRANDED: usize = 20;

/// A client for the table the worker uses, built from the same environment.
async fn admin(env: &[(String, String)]) -> DynamoStore {
    let config = StoreConfig::from_env(&Env::from_pairs(env.iter().cloned())).unwrap();
    let StoreConfig::DynamoDb(mut config) = config else {
        panic!("a DynamoDB configuration");
    };
    config.ensure_table = false;
    DynamoStore::connect(config).await.expect("an SDK client")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_deleted_under_a_running_worker_stops_it_with_the_batch_pending() {
    let dynamo = DynamoLocal::start();
    let redis_server = RedisServer::start();
    let mut redis = helpers::redis_manager(&redis_server.url());
    let mut env = dynamo.child_env();
    env.extend(env_pairs(&[
        ("STORE", "dynamodb"),
        ("DYNAMODB_TABLE", TABLE),
        ("DYNAMODB_ENSURE_TABLE", "true"),
        ("REDIS_URL", &redis_server.url()),
        ("WORKER_BLOCK_MS", "100"),
    ]));
    let mut worker = WorkerProcess::start(&env);
    xadd_event(&mut redis, "before", None, 5).await;
    helpers::eventually(
        Duration::from_secs(60),
        "the worker applies an event",
        || {
            let mut redis = redis.clone();
            async move { helpers::board(&mut redis).await.get("before") == Some(&5) }
        },
    )
    .await;

    admin(&env)
        .await
        .client()
        .delete_table()
        .table_name(TABLE)
        .send()
        .await
        .expect("delete the table");
    // All in one MULTI, so the worker's blocked read takes them as one batch.
    let mut pipe = redis::pipe();
    pipe.atomic();
    for i in 0..STRANDED {
        let user = format!("u{}", i % 4);
        pipe.cmd("XADD")
            .arg(keys::UPDATES)
            .arg("*")
            .arg(&[
                ("v", "1"),
                ("user", user.as_str()),
                ("inc", "2"),
                ("ts", "1"),
                ("req", "r"),
            ])
            .ignore();
    }
    let _: () = pipe.query_async(&mut redis).await.unwrap();

    let Some((status, _)) = worker.exit_within(Duration::from_secs(30)).await else {
        panic!(
            "the worker keeps retrying a deleted table:\n{}",
            worker.output()
        );
    };
    let output = worker.output();
    assert!(!status.success(), "exit status {status}:\n{output}");
    assert!(output.contains("ResourceNotFoundException"), "{output}");
    assert!(output.contains("DYNAMODB_TABLE"), "{output}");
    assert_eq!(
        helpers::pending(&mut redis).await,
        STRANDED,
        "the batch in hand is left pending, nothing acked"
    );
    let len: usize = redis::cmd("XLEN")
        .arg(keys::UPDATES)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(len >= STRANDED, "nothing trimmed away: XLEN {len}");
    assert_eq!(
        helpers::board(&mut redis).await,
        [("before".to_owned(), 5)].into(),
        "nothing from the failed batch reached the board"
    );
}
