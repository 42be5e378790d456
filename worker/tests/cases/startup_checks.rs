//! Fail fast on misconfiguration: the real binary checks at start that its store is usable and exits
//! non-zero with a message naming the variable to fix — at once when the store refuses (a missing
//! DynamoDB table, an invalid MongoDB URI), after `STORE_CONNECT_TIMEOUT_SECS` when it does not answer.

use std::time::Duration;

use scoreboard_testkit::{DynamoLocal, RedisServer, free_port};

use crate::helpers::{WorkerProcess, env_pairs};

/// How long any of these may take before the test calls it a hang.
const BOUND: Duration = Duration::from_secs(20);

/// Runs the worker with `env` and returns (output, how long it ran) after asserting it exited non-zero
/// within [`BOUND`].
async fn run_until_exit(env: Vec<(String, String)>) -> (String, Duration) {
    let mut worker = WorkerProcess::start(&env);
    let Some((status, ran)) = worker.exit_within(BOUND).await else {
        panic!(
            "the worker still runs after {BOUND:?}:\n{}",
            worker.output()
        );
    };
    let output = worker.output();
    assert!(!status.success(), "exit status {status}:\n{output}");
    (output, ran)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dynamodb_table_that_does_not_exist_stops_the_worker_naming_dynamodb_table() {
    let dynamo = DynamoLocal::start();
    let redis = RedisServer::start();
    let mut env = dynamo.child_env();
    env.extend(env_pairs(&[
        ("STORE", "dynamodb"),
        ("DYNAMODB_TABLE", "nope"),
        ("REDIS_URL", &redis.url()),
    ]));

    let (output, _) = run_until_exit(env).await;

    assert!(
        output.contains(r#"DYNAMODB_TABLE: table \"nope\" does not exist in us-east-1"#)
            || output.contains(r#"DYNAMODB_TABLE: table "nope" does not exist in us-east-1"#),
        "{output}"
    );
    assert!(output.contains("DYNAMODB_ENSURE_TABLE=true"), "{output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_mongodb_stops_the_worker_after_the_connect_timeout_naming_mongodb_uri() {
    let redis = RedisServer::start();
    let closed = format!("mongodb://127.0.0.1:{}/?directConnection=true", free_port());
    let env = env_pairs(&[
        ("STORE", "mongodb"),
        ("MONGODB_URI", &closed),
        ("STORE_CONNECT_TIMEOUT_SECS", "3"),
        ("REDIS_URL", &redis.url()),
    ]);

    let (output, ran) = run_until_exit(env).await;

    assert!(
        ran >= Duration::from_secs(3),
        "kept trying until the deadline, ran {ran:?}"
    );
    assert!(
        output.contains("MONGODB_URI: the store did not answer within 3s"),
        "{output}"
    );
    assert!(output.contains("STORE_CONNECT_TIMEOUT_SECS"), "{output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_mongodb_uri_stops_the_worker_at_once_despite_the_default_timeout() {
    let redis = RedisServer::start();
    let env = env_pairs(&[
        ("STORE", "mongodb"),
        ("MONGODB_URI", "mongodb://127.0.0.1:notaport/"),
        ("REDIS_URL", &redis.url()),
    ]);

    let (output, ran) = run_until_exit(env).await;

    assert!(
        ran < Duration::from_secs(10),
        "not retried for the default 60 s: ran {ran:?}"
    );
    assert!(output.contains("MONGODB_URI: "), "{output}");
    assert!(!output.contains("store not reachable yet"), "{output}");
}
