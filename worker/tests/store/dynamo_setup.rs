//! DynamoDB table setup against a real DynamoDB Local: the worker's own idempotent setup, the LocalStack
//! init script (run with the AWS CLI from the project venv) creating what the store expects, the store
//! factory building the adapter from the environment, its start-up check refusing a missing or
//! differently keyed table, and a table deleted at run time being a refusal rather than an outage.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveStatus,
};
use futures::StreamExt;
use scoreboard_testkit::DynamoLocal;
use scoreboard_worker::config::{Env, StoreConfig};
use scoreboard_worker::store::dynamo::DynamoStore;
use scoreboard_worker::store::{StoreError, WatermarkStore, WriteOutcome};

use crate::dynamo::{TABLE, first_write, store, store_with, wm};

/// Whether `table` has TTL enabled (or being enabled) on any attribute.
async fn ttl_enabled(store: &DynamoStore, table: &str) -> bool {
    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .unwrap();
    matches!(
        ttl.time_to_live_description()
            .and_then(|d| d.time_to_live_status()),
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    )
}

/// One first write of `user` to partition 1; its new score.
async fn write_once(store: &dyn WatermarkStore, user: &str, increment: u64) -> u64 {
    let outcomes = store
        .write(1, &[first_write(user, increment, 10)], None, wm(10))
        .await
        .unwrap();
    match outcomes[..] {
        [WriteOutcome::Applied { score }] => score,
        _ => panic!("not applied: {outcomes:?}"),
    }
}

#[tokio::test]
async fn table_setup_is_idempotent_and_enables_no_ttl() {
    let server = DynamoLocal::start();
    let store = store(&server).await;
    store.ensure_table().await.unwrap();
    store.ensure_table().await.unwrap();

    assert_eq!(write_once(&store, "alice", 3).await, 3);
    assert!(!ttl_enabled(&store, TABLE).await, "nothing expires");
}

fn aws_cli() -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/aws");
    if venv.is_file() {
        return venv;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("aws"))
        .find(|p| p.is_file())
        .expect("the AWS CLI is missing: run `make setup` (installs awscli into .tools/venv)")
}

fn run_init_script(server: &DynamoLocal, table: &str) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../localstack/init/ready.d/01-scoreboard-table.sh");
    let cli = aws_cli();
    let path = format!(
        "{}:{}",
        cli.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = std::process::Command::new("bash")
        .arg(&script)
        .envs(server.child_env())
        .env("DYNAMODB_TABLE", table)
        .env("PATH", path)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("run the localstack init script");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "init script failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn localstack_init_script_creates_the_table_the_store_expects() {
    let server = DynamoLocal::start();

    let first = run_init_script(&server, "scoreboard");
    let second = run_init_script(&server, "scoreboard");

    assert!(first.contains("created"), "{first}");
    assert!(second.contains("exists"), "script is idempotent: {second}");
    let store = store_with(&server, |o| {
        o.table = "scoreboard".to_owned();
        o.ensure_table = false;
    })
    .await;
    store.ping().await.unwrap();
    let table = store
        .client()
        .describe_table()
        .table_name("scoreboard")
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    assert_eq!(table.key_schema()[0].attribute_name(), "pk");
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );
    assert!(!ttl_enabled(&store, "scoreboard").await, "nothing expires");
    // The store works on the table the script made, and agrees with its own setup step.
    assert_eq!(write_once(&store, "alice", 4).await, 4);
    store.ensure_table().await.unwrap();
}

#[tokio::test]
async fn the_store_factory_builds_the_dynamodb_adapter_from_the_environment() {
    let server = DynamoLocal::start();
    let mut pairs = server.child_env();
    pairs.extend([
        ("STORE".to_owned(), "dynamodb".to_owned()),
        ("DYNAMODB_TABLE".to_owned(), "from-env".to_owned()),
        ("DYNAMODB_ENSURE_TABLE".to_owned(), "true".to_owned()),
    ]);
    let config = StoreConfig::from_env(&Env::from_pairs(pairs)).unwrap();

    let store = scoreboard_worker::store::connect(&config)
        .await
        .expect("factory connects and creates the table");

    store.ping().await.unwrap();
    assert_eq!(write_once(store.as_ref(), "alice", 2).await, 2);
}

/// The store's configuration for `table` on `server`, as the worker reads it from the environment.
fn store_config(server: &DynamoLocal, table: &str, ensure: bool) -> StoreConfig {
    let mut pairs = server.child_env();
    pairs.extend([
        ("STORE".to_owned(), "dynamodb".to_owned()),
        ("DYNAMODB_TABLE".to_owned(), table.to_owned()),
        ("DYNAMODB_ENSURE_TABLE".to_owned(), ensure.to_string()),
    ]);
    StoreConfig::from_env(&Env::from_pairs(pairs)).unwrap()
}

#[tokio::test]
async fn the_start_up_check_refuses_a_missing_table_or_other_keys_naming_dynamodb_table() {
    let server = DynamoLocal::start();
    let connect = async |table: &str, ensure: bool| {
        scoreboard_worker::store::connect(&store_config(&server, table, ensure))
            .await
            .map(|_| ())
    };

    let missing = connect("nope", false).await.unwrap_err();
    assert!(!missing.is_transient(), "{missing:?}");
    assert!(
        missing.message().starts_with(
            "DYNAMODB_TABLE: table \"nope\" does not exist in us-east-1 at http://127.0.0.1:"
        ),
        "{missing}"
    );
    assert!(missing.message().contains("DYNAMODB_ENSURE_TABLE=true"));

    // A table keyed otherwise (a numeric `id`) is refused, also when the worker may create tables: it
    // exists, so nothing is created, and writing to it would fail on every batch.
    let admin = store_with(&server, |o| o.ensure_table = false).await;
    admin
        .client()
        .create_table()
        .table_name("other-keys")
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    for ensure in [false, true] {
        let other = connect("other-keys", ensure).await.unwrap_err();
        assert!(!other.is_transient(), "{other:?}");
        assert!(
            other
                .message()
                .starts_with("DYNAMODB_TABLE: table \"other-keys\""),
            "{other}"
        );
        assert!(other.message().contains("[id (HASH, N)]"), "{other}");
    }

    connect("created-at-start", true)
        .await
        .expect("DYNAMODB_ENSURE_TABLE=true creates a missing table");
    connect("created-at-start", false)
        .await
        .expect("the table it made passes the check");
}

#[tokio::test]
async fn a_table_deleted_at_run_time_is_a_refusal_not_an_outage() {
    let server = DynamoLocal::start();
    let store = store(&server).await;
    write_once(&store, "alice", 1).await;

    store
        .client()
        .delete_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = store.read(1, &["alice"]).await.unwrap_err();

    assert!(matches!(err, StoreError::Unexpected { .. }), "{err:?}");
    assert!(err.message().starts_with("DYNAMODB_TABLE: "), "{err}");
    assert!(err.message().contains("ResourceNotFoundException"), "{err}");
    assert_eq!(store.stats().retries, 0, "not retried");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let scan = store.partition_totals(1).next().await.unwrap().unwrap_err();
    assert!(matches!(scan, StoreError::Unexpected { .. }), "{scan:?}");
}
