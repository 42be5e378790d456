//! The DynamoDB adapter of the score store (`STORE=dynamodb`, official `aws-sdk-dynamodb`): the
//! [`WatermarkStore`](crate::store::WatermarkStore) ([`watermark`]). No transactions and no TTL: one
//! conditional `UpdateItem` per user on its `wm` ([`cas`]), strongly consistent `BatchGetItem`s for the
//! batch's reads, an `hw#<p>` item per partition, and [`migrate`] from v1 (sets `p`, deletes v1's event
//! marker items).
//!
//! Throttling, conflicts, 5xx and network errors are retried with capped, jittered exponential backoff
//! ([`RetryPolicy`]); the SDK's own retries are off. What is left after the attempts is
//! [`StoreError::Unavailable`]; a missing table, denied access or an invalid request is
//! [`StoreError::Unexpected`] at once (not transient: the worker stops rather than retry it).
//!
//! Files by concern: [`config`] (settings, one type), [`connect`] (client and table setup), [`cas`] (the
//! write path), [`read`] (batch gets and scans), [`watermark`] (the port), [`migrate`] (v1 to v2),
//! [`retry`] (which failures are transient), [`table`] (item layout and table creation).

mod cas;
mod config;
mod connect;
mod migrate;
mod read;
mod retry;
mod table;
mod watermark;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

pub use self::config::{DynamoConfig, StaticCredentials};
pub use self::retry::RetryPolicy;
use self::retry::store_error;
use self::table::USER_PREFIX;
use super::StoreError;

/// Counters of the calls the store made (tests and benchmarks read them to check the round trips).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DynamoStats {
    /// `BatchGetItem` calls, retries of unprocessed keys included.
    pub batch_gets: u64,
    /// Attempts repeated after a transient failure (all operations).
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batch_gets: AtomicU64,
    retries: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// The DynamoDB score store. Cheap to clone (the SDK client is shared).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    config: Arc<DynamoConfig>,
    counters: Arc<Counters>,
}

impl DynamoStore {
    /// The table name.
    pub fn table(&self) -> &str {
        &self.config.table
    }

    /// The SDK client (tests inspect items through it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The calls made so far.
    pub fn stats(&self) -> DynamoStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DynamoStats {
            batch_gets: get(&c.batch_gets),
            retries: get(&c.retries),
        }
    }

    fn user_key(user_id: &str) -> AttributeValue {
        AttributeValue::S(format!("{USER_PREFIX}{user_id}"))
    }

    /// One `DescribeTable`: whether the table is reachable.
    async fn describe(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.config.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("DescribeTable", e))
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
