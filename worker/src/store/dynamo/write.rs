//! The batch write path: each event's marker (`attribute_not_exists`) and the user's `ADD score` in one
//! transaction, chunks of a batch in parallel, and the per-event fallback when a marker already exists.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::plan::{Chunk, Transaction};
use super::retry::{describe, is_transient, is_transient_cancellation, store_error};
use super::table::{EVENT_PREFIX, EXPIRES_AT, INCREMENT, NAME, PK, SCORE, UPDATED_AT, USER_ID};
use super::{DynamoStore, bump, now};
use crate::store::{StoreError, StoreEvent};

/// Users written at once on the per-event path (each user's events stay sequential).
const CONCURRENT_USERS_PER_EVENT: usize = 8;

/// How a transaction ended.
enum TxOutcome {
    Committed,
    /// Cancelled because some markers exist; the event ids reported as already applied.
    AlreadyApplied(HashSet<String>),
}

impl DynamoStore {
    fn marker_item(
        &self,
        user_id: &str,
        event: &StoreEvent,
    ) -> Result<TransactWriteItem, StoreError> {
        let expires_at = now().saturating_add(self.config.marker_ttl).as_secs();
        let put = Put::builder()
            .table_name(&self.config.table)
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
            .map_err(|e| StoreError::unexpected(e.to_string()).with_source(e))?;
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
            .table_name(&self.config.table)
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
            .map_err(|e| StoreError::unexpected(e.to_string()).with_source(e))?;
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
        let policy = &self.config.retry;
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
                return Err(store_error("TransactWriteItems", err));
            }
            if attempt >= policy.max_attempts {
                return Err(StoreError::unavailable(format!(
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
    pub(super) async fn apply_transaction(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
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
}
