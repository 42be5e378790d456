//! The read path: strongly consistent totals of a batch's users (`BatchGetItem`, unprocessed keys
//! retried) and the paged scan of every user item for rebuilds.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::retry::{describe, is_transient, store_error};
use super::table::{NAME, PK, SCORE, USER_ID, USER_PREFIX};
use super::{DynamoStore, bump};
use crate::store::{StoreError, UserTotal};

/// Keys the service accepts in one `BatchGetItem`.
const MAX_BATCH_GET_KEYS: usize = 100;

impl DynamoStore {
    /// Strongly consistent totals of `users`, in that order.
    pub(super) async fn read_totals(&self, users: &[&str]) -> Result<Vec<UserTotal>, StoreError> {
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
                    .map_err(|e| StoreError::unexpected(e.to_string()).with_source(e))?;
                let result = self
                    .client
                    .batch_get_item()
                    .request_items(&self.config.table, request)
                    .send()
                    .await;
                let retry_reason = match result {
                    Ok(out) => {
                        for item in out
                            .responses()
                            .and_then(|r| r.get(&self.config.table))
                            .into_iter()
                            .flatten()
                        {
                            let total = parse_total(item)?;
                            found.insert(total.user_id.clone(), total);
                        }
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
        users
            .iter()
            .map(|u| {
                found.remove(*u).ok_or_else(|| {
                    StoreError::unexpected(format!("user item for {u:?} missing after its write"))
                })
            })
            .collect()
    }

    /// One page of the user items from `start`; returns the totals and where to continue.
    pub(super) async fn scan_page(
        &self,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<(Vec<UserTotal>, Option<HashMap<String, AttributeValue>>), StoreError> {
        let policy = &self.config.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .scan()
                .table_name(&self.config.table)
                .consistent_read(true)
                .limit(self.config.scan_page_size)
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
                Err(e) => return Err(store_error("Scan", e)),
            }
        }
    }
}

fn parse_total(item: &HashMap<String, AttributeValue>) -> Result<UserTotal, StoreError> {
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
