//! The table layout and its idempotent setup: one table keyed by a string `pk`, holding user items
//! (`user#<id>`: `userId`, `score`, `name`, `updatedAt`, `wm`, `p`) and high-water mark items
//! (`hw#<p>`: `hw`), on-demand billing, nothing expiring. A table written by v1 may still hold event
//! marker items (`event#<id>`) until `migrate` deletes them.
//! [`check_table`] is the start-up check of a table the worker did not create: it exists and has that
//! key schema.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};

use super::retry::{RetryPolicy, is_transient, store_error};
use crate::store::StoreError;

/// The partition key attribute (string).
pub(crate) const PK: &str = "pk";
/// Prefix of user item keys.
pub(crate) const USER_PREFIX: &str = "user#";
/// Prefix of v1 event marker item keys (only `migrate` still looks for them, to delete them).
pub(crate) const EVENT_PREFIX: &str = "event#";
pub(crate) const USER_ID: &str = "userId";
pub(crate) const SCORE: &str = "score";
pub(crate) const NAME: &str = "name";
pub(crate) const UPDATED_AT: &str = "updatedAt";
/// The watermark of the user's last applied event (`<gen>-<ms>-<seq>`, string).
pub(crate) const WM: &str = "wm";
/// The user's partition (number).
pub(crate) const PARTITION: &str = "p";
/// Prefix of a partition's high-water mark item key (`hw#<p>`), which no user key can have.
pub(crate) const HW_PREFIX: &str = "hw#";
/// The high-water mark attribute of an `hw#<p>` item (string, like `wm`).
pub(crate) const HW: &str = "hw";

/// How long `ensure_table` waits for a new table to become `ACTIVE`.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Creates the table if it does not exist and waits until it is `ACTIVE`. Safe to run any number of
/// times, also concurrently.
///
/// # Errors
/// When the service cannot be reached, refuses, or the table does not become active in time.
pub(crate) async fn ensure_table(
    client: &Client,
    table: &str,
    retry: &RetryPolicy,
) -> Result<(), StoreError> {
    create_if_missing(client, table, retry).await?;
    wait_active(client, table, retry).await
}

async fn create_if_missing(
    client: &Client,
    table: &str,
    retry: &RetryPolicy,
) -> Result<(), StoreError> {
    let key = KeySchemaElement::builder()
        .attribute_name(PK)
        .key_type(KeyType::Hash)
        .build()
        .map_err(|e| StoreError::unexpected(e.to_string()).with_source(e))?;
    let attr = AttributeDefinition::builder()
        .attribute_name(PK)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| StoreError::unexpected(e.to_string()).with_source(e))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = client
            .create_table()
            .table_name(table)
            .key_schema(key.clone())
            .attribute_definitions(attr.clone())
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::info!(table, "created DynamoDB table");
                return Ok(());
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                return Ok(());
            }
            Err(e) if is_transient(&e) && attempt < retry.max_attempts => {
                tokio::time::sleep(retry.delay(attempt)).await;
            }
            Err(e) => return Err(store_error("CreateTable", e)),
        }
    }
}

async fn wait_active(client: &Client, table: &str, retry: &RetryPolicy) -> Result<(), StoreError> {
    let deadline = Instant::now() + ACTIVE_TIMEOUT;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match client.describe_table().table_name(table).send().await {
            Ok(out) => {
                let status = out.table().and_then(|t| t.table_status());
                if status == Some(&TableStatus::Active) {
                    return Ok(());
                }
                tracing::debug!(table, ?status, "waiting for table to become active");
            }
            Err(e) if is_transient(&e) && attempt < retry.max_attempts => {}
            Err(e) => return Err(store_error("DescribeTable", e)),
        }
        if Instant::now() >= deadline {
            return Err(StoreError::unavailable(format!(
                "table {table} not ACTIVE within {ACTIVE_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks, with one `DescribeTable` (the only control-plane call the worker's IAM role allows), that
/// `table` exists and is keyed by a string HASH key `pk` alone. `location` names the region (and
/// endpoint) for the message.
///
/// # Errors
/// [`StoreError::Unexpected`] naming `DYNAMODB_TABLE` when the table is missing, being deleted or keyed
/// otherwise, or naming the credentials when access is denied; [`StoreError::Unavailable`] when the
/// service does not answer.
pub(crate) async fn check_table(
    client: &Client,
    table: &str,
    location: &str,
    retry: &RetryPolicy,
) -> Result<(), StoreError> {
    let missing = || {
        format!(
            "DYNAMODB_TABLE: table {table:?} does not exist in {location} \
             (set DYNAMODB_ENSURE_TABLE=true to create it)"
        )
    };
    let mut attempt = 0;
    let described = loop {
        attempt += 1;
        match client.describe_table().table_name(table).send().await {
            Ok(out) => break out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Err(StoreError::unexpected(missing()).with_source(e));
            }
            Err(e) if is_transient(&e) && attempt < retry.max_attempts => {
                tokio::time::sleep(retry.delay(attempt)).await;
            }
            Err(e) => return Err(store_error("DescribeTable", e)),
        }
    };
    let Some(description) = described.table() else {
        return Err(StoreError::unexpected(missing()));
    };
    if description.table_status() == Some(&TableStatus::Deleting) {
        return Err(StoreError::unexpected(format!(
            "DYNAMODB_TABLE: table {table:?} in {location} is being deleted"
        )));
    }
    let keys: Vec<String> = description
        .key_schema()
        .iter()
        .map(|k| {
            let kind = description
                .attribute_definitions()
                .iter()
                .find(|a| a.attribute_name() == k.attribute_name())
                .map_or("?", |a| a.attribute_type().as_str());
            format!("{} ({}, {kind})", k.attribute_name(), k.key_type().as_str())
        })
        .collect();
    let expected = format!("{PK} (HASH, S)");
    if keys != [expected.as_str()] {
        return Err(StoreError::unexpected(format!(
            "DYNAMODB_TABLE: table {table:?} in {location} has the key schema [{}]; the worker needs \
             a string HASH key {PK:?} alone (as template.yaml creates it)",
            keys.join(", ")
        )));
    }
    Ok(())
}
