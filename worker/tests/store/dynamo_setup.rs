//! DynamoDB table setup against a real DynamoDB Local: the worker's own idempotent setup, the LocalStack
//! init script (run with the AWS CLI from the project venv) creating what the store expects, and the
//! store factory building the adapter from the environment.

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use scoreboard_testkit::DynamoLocal;
use scoreboard_worker::store::ScoreStore;

use crate::dynamo::{TABLE, delta, store, store_with};

#[tokio::test]
async fn table_setup_is_idempotent_and_enables_ttl_on_markers() {
    let server = DynamoLocal::start();
    let store = store(&server).await;
    store.ensure_table().await.unwrap();
    store.ensure_table().await.unwrap();
    store
        .apply_batch(&[delta("alice", &[("5-0", 3)])])
        .await
        .unwrap();

    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    let desc = ttl.time_to_live_description().unwrap();
    assert_eq!(desc.attribute_name(), Some("expiresAt"));
    assert_eq!(desc.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));

    let marker = store
        .client()
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S("event#5-0".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let item = marker.item().expect("marker item written");
    let expires: u64 = item["expiresAt"].as_n().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expires > now + 6 * 24 * 3600, "marker TTL about 7 days out");
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
    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name("scoreboard")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some("expiresAt")
    );
    // The store works on the table the script made, and agrees with its own setup step.
    let totals = store
        .apply_batch(&[delta("alice", &[("1-0", 4)])])
        .await
        .unwrap();
    assert_eq!(totals[0].score, 4);
    store.ensure_table().await.unwrap();
}

#[tokio::test]
async fn the_store_factory_builds_the_dynamodb_adapter_from_the_environment() {
    use scoreboard_worker::config::{Env, StoreConfig};

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
    let totals = store
        .apply_batch(&[delta("alice", &[("1-0", 2)])])
        .await
        .unwrap();
    assert_eq!(totals[0].score, 2);
}
