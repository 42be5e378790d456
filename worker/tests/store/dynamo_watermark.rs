//! What only the DynamoDB adapter of the port has, against DynamoDB Local: reads chunked into
//! `BatchGetItem`s of 100 keys (users plus the `hw` item), a table deleted at run time failing the whole
//! write as not transient, and the migration leaving v2 and `hw` items alone.

use aws_sdk_dynamodb::types::AttributeValue;
use scoreboard_shared::partition::StreamId;
use scoreboard_testkit::DynamoLocal;
use scoreboard_worker::store::{StoreError, UserWrite, Watermark, WatermarkStore, WriteOutcome};

use crate::dynamo::{TABLE, store};

fn wm(ms: u64) -> Watermark {
    Watermark::new(1, StreamId { ms, seq: 0 })
}

fn first_write(user: &str, increment: u64, at: u64) -> UserWrite {
    UserWrite {
        user_id: user.to_owned(),
        expected_wm: None,
        expected_score: 0,
        increment,
        display_name: None,
        new_wm: wm(at),
    }
}

#[tokio::test]
async fn a_read_of_150_users_is_two_batch_gets() {
    let server = DynamoLocal::start();
    let store = store(&server).await;
    let users: Vec<String> = (0..150).map(|u| format!("user{u:03}")).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let writes: Vec<UserWrite> = users.iter().map(|u| first_write(u, 3, 10)).collect();
    let before = store.stats();

    let outcomes = store.write(5, &writes, None, wm(10)).await.unwrap();
    let read = store.read(5, &refs).await.unwrap();

    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, WriteOutcome::Applied { score: 3 }))
    );
    assert_eq!(read.users.len(), 150);
    assert_eq!(read.hw, Some(wm(10)));
    let after = store.stats();
    assert_eq!(
        after.batch_gets - before.batch_gets,
        2,
        "151 keys: two calls"
    );
}

#[tokio::test]
async fn a_deleted_table_fails_the_whole_write_as_not_transient() {
    let server = DynamoLocal::start();
    let store = store(&server).await;
    store
        .client()
        .delete_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();

    let error = store
        .write(5, &[first_write("ann", 1, 10)], None, wm(10))
        .await
        .unwrap_err();

    assert!(matches!(error, StoreError::Unexpected { .. }), "{error:?}");
    assert!(error.message().starts_with("DYNAMODB_TABLE: "), "{error}");
}

#[tokio::test]
async fn migrate_leaves_v2_and_hw_items_alone() {
    let server = DynamoLocal::start();
    let store = store(&server).await;
    store
        .write(5, &[first_write("ann", 1, 10)], None, wm(10))
        .await
        .unwrap();

    assert_eq!(store.migrate(16).await.unwrap(), 0);

    let item = store
        .client()
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S("user#ann".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    assert_eq!(
        item["p"],
        AttributeValue::N("5".into()),
        "p as written, not recomputed"
    );
    assert_eq!(item["wm"], AttributeValue::S("1-10-0".into()));
    assert_eq!(store.read(5, &[]).await.unwrap().hw, Some(wm(10)));
}
