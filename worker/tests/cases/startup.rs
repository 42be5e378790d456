//! How the worker binary refuses to start (`docs/design.md` §4, STYLE 6: typed config, failing fast):
//! invalid settings exit non-zero at once naming the variable; an unreachable store exits after
//! `STORE_CONNECT_TIMEOUT_SECS` naming the variable that says where the store is; a Redis that may evict
//! keys (an evicted lease, cursor or epoch breaks fencing) is refused naming `maxmemory-policy`.

use std::time::Duration;

use scoreboard_testkit::{RedisServer, free_port};

use crate::helpers::*;

/// Starts the worker with `env`, expects it to exit non-zero within `bound`; returns its output and
/// how long it ran.
async fn refused(env: &[(String, String)], bound: Duration) -> (String, Duration) {
    let mut worker = WorkerProcess::start(env);
    let Some((status, ran)) = worker.exit_within(bound).await else {
        panic!(
            "the worker still runs after {bound:?}:\n{}",
            worker.output_tail(20)
        );
    };
    assert!(!status.success(), "exit {status:?}:\n{}", worker.output());
    (worker.output(), ran)
}

/// A MongoDB environment that is complete except where it points.
fn mongo_env(uri: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = env_pairs(&[
        ("STORE", "mongodb"),
        ("MONGODB_URI", uri),
        ("REDIS_URL", "redis://127.0.0.1:1"),
    ]);
    env.extend(env_pairs(extra));
    env
}

#[tokio::test]
async fn invalid_settings_exit_non_zero_naming_the_variable() {
    let uri = "mongodb://127.0.0.1:1/?directConnection=true";
    for (var, value) in [
        ("PARTITIONS", "0"),
        ("PARTITIONS", "many"),
        ("LEASE_TTL_MS", "5"),
        ("WORKER_ID", "a|b"),
        ("WORKER_BATCH_SIZE", "0"),
        ("MERGE_POLL_MS", "1"),
    ] {
        let (output, ran) =
            refused(&mongo_env(uri, &[(var, value)]), Duration::from_secs(20)).await;
        assert!(
            output.contains(var),
            "{var}={value}: the message does not name {var}:\n{output}"
        );
        assert!(ran < Duration::from_secs(10), "{var}={value}: took {ran:?}");
    }
}

#[tokio::test]
async fn mongo_an_unreachable_store_exits_after_the_connect_timeout_naming_the_variable() {
    let uri = format!("mongodb://127.0.0.1:{}/?directConnection=true", free_port());
    let env = mongo_env(&uri, &[("STORE_CONNECT_TIMEOUT_SECS", "2")]);
    let (output, ran) = refused(&env, Duration::from_secs(30)).await;
    assert!(ran >= Duration::from_secs(2), "gave up after {ran:?}");
    assert!(ran < Duration::from_secs(15), "took {ran:?}");
    for named in ["MONGODB_URI", "STORE_CONNECT_TIMEOUT_SECS"] {
        assert!(output.contains(named), "{named} not named:\n{output}");
    }
}

#[tokio::test]
async fn dynamodb_an_unreachable_store_exits_after_the_connect_timeout_naming_the_variable() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let env = env_pairs(&[
        ("STORE", "dynamodb"),
        ("DYNAMODB_TABLE", "scoreboard-test"),
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testkit"),
        ("AWS_SECRET_ACCESS_KEY", "testkit-secret"),
        ("REDIS_URL", "redis://127.0.0.1:1"),
        ("STORE_CONNECT_TIMEOUT_SECS", "2"),
    ]);
    let (output, ran) = refused(&env, Duration::from_secs(30)).await;
    assert!(ran >= Duration::from_secs(2), "gave up after {ran:?}");
    assert!(ran < Duration::from_secs(15), "took {ran:?}");
    for named in ["AWS_ENDPOINT_URL", "STORE_CONNECT_TIMEOUT_SECS"] {
        assert!(output.contains(named), "{named} not named:\n{output}");
    }
}

// The Redis check does not depend on the store: MongoDB only.
#[tokio::test]
async fn a_redis_that_may_evict_keys_is_refused_naming_maxmemory_policy() {
    let store = StoreUnderTest::mongo();
    let server = RedisServer::start_with(&["--save", "", "--maxmemory-policy", "allkeys-lru"]);
    let env = worker_env(&store, &server.url(), "evicting", 4, &[]);
    let (output, ran) = refused(&env, Duration::from_secs(30)).await;
    assert!(
        output.contains("maxmemory-policy") && output.contains("allkeys-lru"),
        "{output}"
    );
    eprintln!("refused after {ran:?}");
}
