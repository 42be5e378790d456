//! The DynamoDB adapter of the score store (`STORE=dynamodb`, official `aws-sdk-dynamodb`).
//!
//! v1: exactly once per event id: every event is a marker item `event#<id>` put with
//! `attribute_not_exists(pk)` (and a TTL) in the same `TransactWriteItems` as the `ADD score` on the user
//! item, so an event's marker exists if and only if its increment was applied. A batch is packed into
//! transactions of at most 100 items ([`plan`]). A transaction cancelled because a marker exists (a
//! redelivered event) takes the per-event path: the events whose markers were reported present are
//! skipped, every other one is applied in its own two-item transaction, which again skips it if its
//! marker appeared meanwhile.
//!
//! Round trips per batch: `ceil(items / 100)` `TransactWriteItems` (items = events + one per user and
//! chunk) plus `ceil(users / 100)` strongly consistent `BatchGetItem` for the new totals (transactions
//! return no values); up to four transactions of a batch are in flight at once. A cancelled transaction
//! adds one two-item transaction per event not known to be applied (users in parallel, each user's
//! events in order). Throttling, conflicts, 5xx and network errors are retried with capped, jittered exponential
//! backoff ([`RetryPolicy`]); the SDK's own retries are off. What is left after the attempts is
//! [`StoreError::Unavailable`]; a missing table, denied access or an invalid request is
//! [`StoreError::Unexpected`] at once (not transient: the worker stops rather than retry it).
//!
//! Markers must outlive any redelivery of their event (claim idle time × max deliveries, plus the
//! worker's store-outage retries): `DYNAMODB_MARKER_TTL_SECS`, default 7 days. DynamoDB deletes expired
//! items lazily (typically within days), so a marker lives at least that long.
//!
//! v2 ([`WatermarkStore`](crate::store::WatermarkStore), [`watermark`]): no markers, no transactions, no
//! TTL: one conditional `UpdateItem` per user on its `wm` ([`cas`]), strongly consistent
//! `BatchGetItem`s for the batch's reads, an `hw#<p>` item per partition, and [`migrate`] from v1 (sets
//! `p`, deletes the markers).
//!
//! Files by concern: [`config`] (settings, one type), [`connect`] (client and table setup), [`write`]
//! (the v1 batch write path), [`cas`] (the v2 write path), [`read`] (batch gets and scans),
//! [`watermark`] (the v2 port), [`migrate`] (v1 to v2), [`plan`] (packing a batch into transactions),
//! [`retry`] (which failures are transient), [`table`] (item layout and table creation).

mod cas;
mod config;
mod connect;
mod migrate;
mod plan;
mod read;
mod retry;
mod table;
mod watermark;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use tracing::instrument;

pub use self::config::{DEFAULT_MARKER_TTL, DynamoConfig, StaticCredentials};
pub use self::retry::RetryPolicy;
use self::retry::store_error;
use self::table::USER_PREFIX;
use super::{ScoreStore, StoreError, UserDelta, UserTotal};

/// Items the service accepts in one `TransactWriteItems`.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// Transactions of one batch in flight at once.
const CONCURRENT_TRANSACTIONS: usize = 4;

/// Counters of the calls the store made (tests and benchmarks read them to check the round trips).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DynamoStats {
    /// `TransactWriteItems` calls of whole chunks of a batch (the fast path), retries included.
    pub batch_transactions: u64,
    /// Fast-path transactions cancelled because an event's marker already existed.
    pub cancelled_transactions: u64,
    /// Two-item transactions of the per-event path, retries included.
    pub per_event_transactions: u64,
    /// Events skipped because their marker already existed.
    pub duplicate_events: u64,
    /// `BatchGetItem` calls, retries of unprocessed keys included.
    pub batch_gets: u64,
    /// Attempts repeated after a transient failure (all operations).
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batch_transactions: AtomicU64,
    cancelled_transactions: AtomicU64,
    per_event_transactions: AtomicU64,
    duplicate_events: AtomicU64,
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
            batch_transactions: get(&c.batch_transactions),
            cancelled_transactions: get(&c.cancelled_transactions),
            per_event_transactions: get(&c.per_event_transactions),
            duplicate_events: get(&c.duplicate_events),
            batch_gets: get(&c.batch_gets),
            retries: get(&c.retries),
        }
    }

    fn user_key(user_id: &str) -> AttributeValue {
        AttributeValue::S(format!("{USER_PREFIX}{user_id}"))
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[async_trait]
impl ScoreStore for DynamoStore {
    #[instrument(skip_all, fields(table = %self.config.table, users = batch.len()))]
    async fn apply_batch(&self, batch: &[UserDelta]) -> Result<Vec<UserTotal>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let plan = plan::plan(batch, self.config.max_transaction_items);
        // Transactions of one batch touch different users (except a user split across transactions,
        // whose conflict is retried), so a few run at once.
        let mut writes = Vec::with_capacity(plan.len());
        for tx in &plan {
            writes.push(self.apply_transaction(tx));
        }
        stream::iter(writes)
            .buffer_unordered(CONCURRENT_TRANSACTIONS)
            .try_collect::<()>()
            .await?;
        self.read_totals(&plan::users(batch)).await
    }

    fn all_totals(&self) -> BoxStream<'_, Result<UserTotal, StoreError>> {
        self.scan_totals(read::ScanFilter::Users)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.config.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("DescribeTable", e))
    }
}
