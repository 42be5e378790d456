//! The DynamoDB adapter of the score store (`STORE=dynamodb`, official `aws-sdk-dynamodb`).
//!
//! Exactly once per event id: every event is a marker item `event#<id>` put with
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
//! backoff ([`RetryPolicy`]); the SDK's own retries are off.
//!
//! Markers must outlive any redelivery of their event (claim idle time × max deliveries, plus the
//! worker's store-outage retries): `DYNAMODB_MARKER_TTL_SECS`, default 7 days. DynamoDB deletes expired
//! items lazily (typically within days), so a marker lives at least that long.

mod plan;
mod retry;
mod table;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use secrecy::ExposeSecret;
use tracing::instrument;

pub use retry::RetryPolicy;

use self::plan::{Chunk, Transaction};
use self::retry::{describe, is_transient, is_transient_cancellation};
use self::table::{
    EVENT_PREFIX, EXPIRES_AT, INCREMENT, NAME, PK, SCORE, UPDATED_AT, USER_ID, USER_PREFIX,
};
use super::{ScoreStore, StoreError, StoreEvent, UserDelta, UserTotal};
pub use crate::config::DEFAULT_MARKER_TTL;
use crate::config::DynamoConfig;

/// Items the service accepts in one `TransactWriteItems`.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// Transactions of one batch in flight at once.
const CONCURRENT_TRANSACTIONS: usize = 4;
/// Users written at once on the per-event path (each user's events stay sequential).
const CONCURRENT_USERS_PER_EVENT: usize = 8;
/// Keys the service accepts in one `BatchGetItem`.
const MAX_BATCH_GET_KEYS: usize = 100;

/// How to reach and use the table.
#[derive(Debug, Clone)]
pub struct DynamoOptions {
    /// `DYNAMODB_TABLE`.
    pub table: String,
    /// `AWS_ENDPOINT_URL` (DynamoDB Local, LocalStack); `None` uses the regional AWS endpoint.
    pub endpoint_url: Option<String>,
    /// `AWS_REGION`; `None` uses the SDK's default region chain.
    pub region: Option<String>,
    /// Fixed credentials (tests); `None` uses the SDK's default chain (env, profile, ECS, IMDS).
    pub credentials: Option<Credentials>,
    /// `DYNAMODB_MARKER_TTL_SECS`: how long an event's marker is kept.
    pub marker_ttl: Duration,
    /// `DYNAMODB_SCAN_PAGE_SIZE`: items per `Scan` page when reading all totals.
    pub scan_page_size: i32,
    /// Items per transaction (the service's limit, 100; smaller only in tests).
    pub max_transaction_items: usize,
    /// `DYNAMODB_ENSURE_TABLE`: create the table (and TTL) in [`DynamoStore::connect`] if missing.
    pub ensure_table: bool,
    /// Bound on one HTTP attempt.
    pub attempt_timeout: Duration,
    /// Retries of throttled and transient failures.
    pub retry: RetryPolicy,
}

impl DynamoOptions {
    /// Defaults for `table`.
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            endpoint_url: None,
            region: None,
            credentials: None,
            marker_ttl: DEFAULT_MARKER_TTL,
            scan_page_size: 1000,
            max_transaction_items: MAX_TRANSACTION_ITEMS,
            ensure_table: false,
            attempt_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }

    /// The options for a validated [`DynamoConfig`] (static keys, if any, become the credentials).
    pub fn from_config(config: &DynamoConfig) -> Self {
        let mut options = Self::new(config.table.clone());
        options.endpoint_url = config.endpoint_url.clone();
        options.region = config.region.clone();
        options.credentials = config.credentials.as_ref().map(|keys| {
            Credentials::new(
                keys.access_key_id.clone(),
                keys.secret_access_key.expose_secret().to_owned(),
                keys.session_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
                None,
                "scoreboard-config",
            )
        });
        options.marker_ttl = config.marker_ttl;
        options.scan_page_size = config.scan_page_size;
        options.ensure_table = config.ensure_table;
        options
    }
}

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
    options: Arc<DynamoOptions>,
    counters: Arc<Counters>,
}

/// How a transaction ended.
enum TxOutcome {
    Committed,
    /// Cancelled because some markers exist; the event ids reported as already applied.
    AlreadyApplied(HashSet<String>),
}

impl DynamoStore {
    /// Builds the client (region, endpoint and credentials from `options`, else the SDK's default
    /// chains) and, when `options.ensure_table` is set, creates the table. Makes no call otherwise.
    ///
    /// # Errors
    /// When no region is configured, or the table setup fails.
    pub async fn connect(options: DynamoOptions) -> Result<Self, StoreError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(options.attempt_timeout)
                    .build(),
            );
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(credentials) = &options.credentials {
            loader = loader.credentials_provider(credentials.clone());
        }
        let sdk_config = loader.load().await;
        if sdk_config.region().is_none() {
            return Err(StoreError::Unavailable(
                "no AWS region configured: set AWS_REGION".to_owned(),
            ));
        }
        let store = Self {
            client: Client::new(&sdk_config),
            options: Arc::new(options),
            counters: Arc::default(),
        };
        if store.options.ensure_table {
            store.ensure_table().await?;
        }
        Ok(store)
    }

    /// Creates the table (on-demand, `pk` string key) if missing, waits until it is active and enables
    /// TTL on `expiresAt`. Idempotent.
    ///
    /// # Errors
    /// When the service cannot be reached or refuses.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        table::ensure_table(&self.client, &self.options.table, &self.options.retry).await
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.options.table
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

    fn marker_item(
        &self,
        user_id: &str,
        event: &StoreEvent,
    ) -> Result<TransactWriteItem, StoreError> {
        let expires_at = now().saturating_add(self.options.marker_ttl).as_secs();
        let put = Put::builder()
            .table_name(&self.options.table)
            .item(
                PK,
                AttributeValue::S(format!("{EVENT_PREFIX}{}", event.event_id)),
            )
            .item(USER_ID, AttributeValue::S(user_id.to_owned()))
            .item(INCREMENT, AttributeValue::N(event.increment.to_string()))
            .item(EXPIRES_AT, AttributeValue::N(expires_at.to_string()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|e| StoreError::Unexpected(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn user_update(
        &self,
        user_id: &str,
        display_name: Option<&str>,
        increment: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut expression = "ADD #score :inc SET #uid = :uid, #upd = :now".to_owned();
        let mut builder = Update::builder()
            .table_name(&self.options.table)
            .key(PK, Self::user_key(user_id))
            .expression_attribute_names("#score", SCORE)
            .expression_attribute_names("#uid", USER_ID)
            .expression_attribute_names("#upd", UPDATED_AT)
            .expression_attribute_values(":inc", AttributeValue::N(increment.to_string()))
            .expression_attribute_values(":uid", AttributeValue::S(user_id.to_owned()))
            .expression_attribute_values(":now", AttributeValue::N(now().as_millis().to_string()));
        if let Some(name) = display_name {
            expression.push_str(", #name = :name");
            builder = builder
                .expression_attribute_names("#name", NAME)
                .expression_attribute_values(":name", AttributeValue::S(name.to_owned()));
        }
        let update = builder
            .update_expression(expression)
            .build()
            .map_err(|e| StoreError::Unexpected(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Sends one transaction, retrying transient failures. `markers[i]` is the event id of item `i` when
    /// item `i` is a marker.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        markers: &[Option<&str>],
        counter: &AtomicU64,
    ) -> Result<TxOutcome, StoreError> {
        let policy = &self.options.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            bump(counter, 1);
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(TxOutcome::Committed),
                Err(err) => err,
            };
            let transient = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                    let reasons = cancel.cancellation_reasons();
                    let applied: HashSet<String> = reasons
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                        .filter_map(|(i, _)| markers.get(i).copied().flatten())
                        .map(str::to_owned)
                        .collect();
                    if !applied.is_empty() {
                        return Ok(TxOutcome::AlreadyApplied(applied));
                    }
                    reasons.iter().any(|r| is_transient_cancellation(r.code()))
                }
                _ => is_transient(&err),
            };
            if !transient {
                return Err(StoreError::Unexpected(format!(
                    "TransactWriteItems: {}",
                    describe(&err)
                )));
            }
            if attempt >= policy.max_attempts {
                return Err(StoreError::Unavailable(format!(
                    "TransactWriteItems failed {attempt} times: {}",
                    describe(&err)
                )));
            }
            tracing::debug!(attempt, error = %describe(&err), "retrying TransactWriteItems");
            bump(&self.counters.retries, 1);
            tokio::time::sleep(policy.delay(attempt)).await;
        }
    }

    /// Applies one transaction of the plan; on a cancellation for existing markers, the per-event path.
    async fn apply_transaction(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let mut items = Vec::new();
        let mut markers = Vec::new();
        for chunk in tx {
            for event in &chunk.events {
                items.push(self.marker_item(chunk.user_id, event)?);
                markers.push(Some(event.event_id.as_str()));
            }
            items.push(self.user_update(chunk.user_id, chunk.display_name, chunk.increment())?);
            markers.push(None);
        }
        match self
            .transact(items, &markers, &self.counters.batch_transactions)
            .await?
        {
            TxOutcome::Committed => Ok(()),
            TxOutcome::AlreadyApplied(applied) => {
                bump(&self.counters.cancelled_transactions, 1);
                tracing::info!(
                    already_applied = applied.len(),
                    "transaction cancelled by existing markers; applying per event"
                );
                // A transaction names each user once: users go in parallel, a user's events in order.
                let mut writes = Vec::with_capacity(tx.len());
                for chunk in tx {
                    writes.push(self.apply_per_event(chunk, &applied));
                }
                stream::iter(writes)
                    .buffer_unordered(CONCURRENT_USERS_PER_EVENT)
                    .try_collect::<()>()
                    .await
            }
        }
    }

    /// The per-event path: each event not known to be applied in its own marker + `ADD` transaction.
    async fn apply_per_event(
        &self,
        chunk: &Chunk<'_>,
        applied: &HashSet<String>,
    ) -> Result<(), StoreError> {
        for event in &chunk.events {
            if applied.contains(&event.event_id) {
                bump(&self.counters.duplicate_events, 1);
                continue;
            }
            let items = vec![
                self.marker_item(chunk.user_id, event)?,
                self.user_update(chunk.user_id, chunk.display_name, event.increment)?,
            ];
            let outcome = self
                .transact(
                    items,
                    &[Some(event.event_id.as_str()), None],
                    &self.counters.per_event_transactions,
                )
                .await?;
            if let TxOutcome::AlreadyApplied(_) = outcome {
                bump(&self.counters.duplicate_events, 1);
            }
        }
        Ok(())
    }

    /// Strongly consistent totals of `users`, in that order.
    async fn read_totals(&self, users: &[&str]) -> Result<Vec<UserTotal>, StoreError> {
        let mut found: HashMap<String, UserTotal> = HashMap::with_capacity(users.len());
        for keys in users.chunks(MAX_BATCH_GET_KEYS) {
            let mut pending: Vec<HashMap<String, AttributeValue>> = keys
                .iter()
                .map(|u| HashMap::from([(PK.to_owned(), Self::user_key(u))]))
                .collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                bump(&self.counters.batch_gets, 1);
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending.clone()))
                    .consistent_read(true)
                    .projection_expression("#uid, #score, #name")
                    .expression_attribute_names("#uid", USER_ID)
                    .expression_attribute_names("#score", SCORE)
                    .expression_attribute_names("#name", NAME)
                    .build()
                    .map_err(|e| StoreError::Unexpected(e.to_string()))?;
                let result = self
                    .client
                    .batch_get_item()
                    .request_items(&self.options.table, request)
                    .send()
                    .await;
                let retry_reason = match result {
                    Ok(out) => {
                        for item in out
                            .responses()
                            .and_then(|r| r.get(&self.options.table))
                            .into_iter()
                            .flatten()
                        {
                            let total = parse_total(item)?;
                            found.insert(total.user_id.clone(), total);
                        }
                        pending = out
                            .unprocessed_keys()
                            .and_then(|u| u.get(&self.options.table))
                            .map(|k| k.keys().to_vec())
                            .unwrap_or_default();
                        if pending.is_empty() {
                            break;
                        }
                        format!("{} unprocessed keys", pending.len())
                    }
                    Err(e) if is_transient(&e) => describe(&e),
                    Err(e) => {
                        return Err(StoreError::Unexpected(format!(
                            "BatchGetItem: {}",
                            describe(&e)
                        )));
                    }
                };
                if attempt >= self.options.retry.max_attempts {
                    return Err(StoreError::Unavailable(format!(
                        "BatchGetItem failed {attempt} times: {retry_reason}"
                    )));
                }
                bump(&self.counters.retries, 1);
                tokio::time::sleep(self.options.retry.delay(attempt)).await;
            }
        }
        users
            .iter()
            .map(|u| {
                found.remove(*u).ok_or_else(|| {
                    StoreError::Unexpected(format!("user item for {u:?} missing after its write"))
                })
            })
            .collect()
    }

    /// One page of the user items from `start`; returns the totals and where to continue.
    async fn scan_page(
        &self,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<(Vec<UserTotal>, Option<HashMap<String, AttributeValue>>), StoreError> {
        let policy = &self.options.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .scan()
                .table_name(&self.options.table)
                .consistent_read(true)
                .limit(self.options.scan_page_size)
                .set_exclusive_start_key(start.clone())
                .filter_expression("begins_with(#pk, :users)")
                .projection_expression("#uid, #score, #name")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#uid", USER_ID)
                .expression_attribute_names("#score", SCORE)
                .expression_attribute_names("#name", NAME)
                .expression_attribute_values(":users", AttributeValue::S(USER_PREFIX.to_owned()))
                .send()
                .await;
            match result {
                Ok(out) => {
                    let totals = out
                        .items()
                        .iter()
                        .map(parse_total)
                        .collect::<Result<_, _>>()?;
                    let next = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
                    return Ok((totals, next));
                }
                Err(e) if is_transient(&e) && attempt < policy.max_attempts => {
                    bump(&self.counters.retries, 1);
                    tokio::time::sleep(policy.delay(attempt)).await;
                }
                Err(e) => {
                    return Err(StoreError::Unavailable(format!("Scan: {}", describe(&e))));
                }
            }
        }
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn parse_total(item: &HashMap<String, AttributeValue>) -> Result<UserTotal, StoreError> {
    let user_id = match item.get(USER_ID) {
        Some(AttributeValue::S(s)) => s.clone(),
        other => {
            return Err(StoreError::Unexpected(format!(
                "user item without a string {USER_ID}: {other:?}"
            )));
        }
    };
    let score = match item.get(SCORE) {
        Some(AttributeValue::N(n)) => n.parse::<u64>().map_err(|e| {
            StoreError::Unexpected(format!("score {n:?} of {user_id:?} is not a u64: {e}"))
        })?,
        None => 0,
        Some(other) => {
            return Err(StoreError::Unexpected(format!(
                "score of {user_id:?} is not a number: {other:?}"
            )));
        }
    };
    let display_name = match item.get(NAME) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    Ok(UserTotal {
        user_id,
        display_name,
        score,
    })
}

#[async_trait]
impl ScoreStore for DynamoStore {
    #[instrument(skip_all, fields(table = %self.options.table, users = batch.len()))]
    async fn apply_batch(&self, batch: &[UserDelta]) -> Result<Vec<UserTotal>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let plan = plan::plan(batch, self.options.max_transaction_items);
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
        enum Page {
            First,
            After(HashMap<String, AttributeValue>),
            Done,
        }
        stream::try_unfold(Page::First, move |page| async move {
            let start = match page {
                Page::Done => return Ok(None),
                Page::First => None,
                Page::After(key) => Some(key),
            };
            let (totals, next) = self.scan_page(start).await?;
            let next = next.map_or(Page::Done, Page::After);
            Ok(Some((stream::iter(totals.into_iter().map(Ok)), next)))
        })
        .try_flatten()
        .boxed()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.options.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Unavailable(format!("DescribeTable: {}", describe(&e))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    #[test]
    fn options_from_config_carry_static_keys_as_credentials() {
        let env = Env::from_pairs([
            ("DYNAMODB_TABLE", "scoreboard"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:8000"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "not-printed"),
        ]);
        let options = DynamoOptions::from_config(&DynamoConfig::from_env(&env).unwrap());
        assert_eq!(options.table, "scoreboard");
        assert_eq!(options.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            options.credentials.as_ref().unwrap().access_key_id(),
            "AKID"
        );
        assert!(!format!("{options:?}").contains("not-printed"));
        assert_eq!(options.max_transaction_items, MAX_TRANSACTION_ITEMS);
    }

    #[test]
    fn parse_total_reads_numbers_and_optional_name() {
        let item = HashMap::from([
            (USER_ID.to_owned(), AttributeValue::S("u1".into())),
            (SCORE.to_owned(), AttributeValue::N("42".into())),
        ]);
        let total = parse_total(&item).unwrap();
        assert_eq!(total.score, 42);
        assert_eq!(total.display_name, None);
    }
}
