//! The read path: strongly consistent `BatchGetItem`s (chunks of 100 keys, unprocessed keys retried) for
//! a batch's users and `hw` items, and paged, strongly consistent scans (every item for `migrate`, one
//! partition's users for rebuilds).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use super::retry::{describe, is_transient, store_error};
use super::table::{NAME, PARTITION, SCORE, USER_ID};
use super::{DynamoStore, bump};
use crate::store::{StoreError, UserTotal};

/// Keys the service accepts in one `BatchGetItem`.
const MAX_BATCH_GET_KEYS: usize = 100;

/// An item as the SDK returns it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// What to read: a projection and the names (`#x` → attribute) it and the filter use.
#[derive(Debug, Clone)]
pub(super) struct Projection {
    pub expression: &'static str,
    pub names: &'static [(&'static str, &'static str)],
}

/// The attributes of a [`UserTotal`].
pub(super) const TOTALS: Projection = Projection {
    expression: "#uid, #score, #name",
    names: &[("#uid", USER_ID), ("#score", SCORE), ("#name", NAME)],
};

/// Which items a scan keeps.
#[derive(Debug, Clone)]
pub(super) enum ScanFilter {
    /// Every item.
    All,
    /// The user items of one partition (rebuilds).
    Partition(u16),
}

impl DynamoStore {
    /// Strongly consistent reads of `keys` (distinct), in any order; absent items are left out.
    pub(super) async fn batch_get(
        &self,
        keys: Vec<Item>,
        projection: &Projection,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_BATCH_GET_KEYS) {
            let mut pending: Vec<Item> = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                bump(&self.counters.batch_gets, 1);
                let mut request = KeysAndAttributes::builder()
                    .set_keys(Some(pending.clone()))
                    .consistent_read(true)
                    .projection_expression(projection.expression);
                for (alias, name) in projection.names {
                    request = request.expression_attribute_names(*alias, *name);
                }
                let request = request
                    .build()
                    .map_err(|e| StoreError::unexpected(e.to_string()).with_source(e))?;
                let result = self
                    .client
                    .batch_get_item()
                    .request_items(&self.config.table, request)
                    .send()
                    .await;
                let retry_reason = match result {
                    Ok(out) => {
                        found.extend(
                            out.responses()
                                .and_then(|r| r.get(&self.config.table))
                                .into_iter()
                                .flatten()
                                .cloned(),
                        );
                        pending = out
                            .unprocessed_keys()
                            .and_then(|u| u.get(&self.config.table))
                            .map(|k| k.keys().to_vec())
                            .unwrap_or_default();
                        if pending.is_empty() {
                            break;
                        }
                        format!("{} unprocessed keys", pending.len())
                    }
                    Err(e) if is_transient(&e) => describe(&e),
                    Err(e) => return Err(store_error("BatchGetItem", e)),
                };
                if attempt >= self.config.retry.max_attempts {
                    return Err(StoreError::unavailable(format!(
                        "BatchGetItem failed {attempt} times: {retry_reason}"
                    )));
                }
                bump(&self.counters.retries, 1);
                tokio::time::sleep(self.config.retry.delay(attempt)).await;
            }
        }
        Ok(found)
    }

    /// One page of the items `filter` keeps, from `start`; returns them and where to continue.
    pub(super) async fn scan_page(
        &self,
        start: Option<Item>,
        filter: &ScanFilter,
        projection: &Projection,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let policy = &self.config.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .client
                .scan()
                .table_name(&self.config.table)
                .consistent_read(true)
                .limit(self.config.scan_page_size)
                .set_exclusive_start_key(start.clone())
                .projection_expression(projection.expression);
            for (alias, name) in projection.names {
                request = request.expression_attribute_names(*alias, *name);
            }
            request = match filter {
                ScanFilter::All => request,
                ScanFilter::Partition(p) => request
                    .filter_expression("#p = :p")
                    .expression_attribute_names("#p", PARTITION)
                    .expression_attribute_values(":p", AttributeValue::N(p.to_string())),
            };
            match request.send().await {
                Ok(out) => {
                    let next = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
                    return Ok((out.items().to_vec(), next));
                }
                Err(e) if is_transient(&e) && attempt < policy.max_attempts => {
                    bump(&self.counters.retries, 1);
                    tokio::time::sleep(policy.delay(attempt)).await;
                }
                Err(e) => return Err(store_error("Scan", e)),
            }
        }
    }

    /// Every item `filter` keeps, page by page.
    pub(super) fn scan(
        &self,
        filter: ScanFilter,
        projection: Projection,
    ) -> BoxStream<'_, Result<Item, StoreError>> {
        enum Page {
            First,
            After(Item),
            Done,
        }
        stream::try_unfold(Page::First, move |page| {
            let (filter, projection) = (filter.clone(), projection.clone());
            async move {
                let start = match page {
                    Page::Done => return Ok(None),
                    Page::First => None,
                    Page::After(key) => Some(key),
                };
                let (items, next) = self.scan_page(start, &filter, &projection).await?;
                let next = next.map_or(Page::Done, Page::After);
                Ok(Some((stream::iter(items.into_iter().map(Ok)), next)))
            }
        })
        .try_flatten()
        .boxed()
    }

    /// The totals of the user items `filter` keeps.
    pub(super) fn scan_totals(
        &self,
        filter: ScanFilter,
    ) -> BoxStream<'_, Result<UserTotal, StoreError>> {
        // A record this code cannot read (e.g. a score edited into a string) is left out with a warning:
        // one poisoned user must not stop a whole partition's rebuild (its events go to the DLQ).
        self.scan(filter, TOTALS)
            .try_filter_map(|item| async move {
                Ok(parse_total(&item)
                    .inspect_err(|error| {
                        tracing::warn!(error = %error, "unreadable user item left out of the rebuild");
                    })
                    .ok())
            })
            .boxed()
    }
}

pub(super) fn parse_total(item: &Item) -> Result<UserTotal, StoreError> {
    let user_id = match item.get(USER_ID) {
        Some(AttributeValue::S(s)) => s.clone(),
        other => {
            return Err(StoreError::unexpected(format!(
                "user item without a string {USER_ID}: {other:?}"
            )));
        }
    };
    let score = match item.get(SCORE) {
        Some(AttributeValue::N(n)) => n.parse::<u64>().map_err(|e| {
            StoreError::unexpected(format!("score {n:?} of {user_id:?} is not a u64: {e}"))
        })?,
        None => 0,
        Some(other) => {
            return Err(StoreError::unexpected(format!(
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

#[cfg(test)]
mod tests {
    use super::*;

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
