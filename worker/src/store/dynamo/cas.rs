//! The v2 write path: one conditional `UpdateItem` per user, in parallel (users are independent, so no
//! transactions and no marker items), `ADD score` and `SET wm, p, updatedAt[, name]` on the condition
//! that `wm` is still the one read (`attribute_not_exists(wm)` when none was), returning the new score
//! (`UPDATED_NEW`). A failed condition is [`WriteOutcome::Conflict`]; a `ValidationException` (the item
//! holds a value the expression cannot add to) is [`WriteOutcome::Refused`] for that user alone;
//! throttling, 5xx and network errors are retried ([`retrying`]) and fail the whole call when the
//! attempts run out. A partition's `hw` item is raised with its own compare-and-set, re-read and retried
//! while the stored value is lower.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use futures::stream::{self, StreamExt};

use super::read::{Item, Projection};
use super::retry::{retrying, store_error};
use super::table::{HW, HW_PREFIX, NAME, PARTITION, PK, SCORE, UPDATED_AT, USER_ID, WM};
use super::{DynamoStore, now};
use crate::store::{StoreError, UserWrite, Watermark, WriteOutcome};

/// User updates of one write in flight at once.
const CONCURRENT_UPDATES: usize = 32;
/// Compare-and-set attempts at raising `hw` (each after a miss re-reads it).
const HW_ATTEMPTS: u32 = 10;

/// The key of `partition`'s high-water mark item.
pub(super) fn hw_key(partition: u16) -> Item {
    HashMap::from([(
        PK.to_owned(),
        AttributeValue::S(format!("{HW_PREFIX}{partition}")),
    )])
}

/// A stored watermark attribute: absent is `None`; anything but a watermark string is an error.
pub(super) fn parse_wm(value: Option<&AttributeValue>) -> Result<Option<Watermark>, StoreError> {
    match value {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(s)) => s.parse().map(Some),
        Some(other) => Err(StoreError::unexpected(format!(
            "not a watermark string: {other:?}"
        ))),
    }
}

fn is_condition_failure<E: ProvideErrorMetadata>(error: &E) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

impl DynamoStore {
    /// Every user's conditional update (in parallel, outcomes in order) and raising `hw`.
    pub(super) async fn write_watermarked(
        &self,
        partition: u16,
        writes: &[UserWrite],
        hw_read: Option<Watermark>,
        hw: Watermark,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        // Collected first: a lazily mapped iterator trips the `Send` check of the async trait.
        let mut updates = Vec::with_capacity(writes.len());
        for write in writes {
            updates.push(self.update_user(partition, write));
        }
        let users = stream::iter(updates)
            .buffered(CONCURRENT_UPDATES)
            .collect::<Vec<_>>();
        let (outcomes, raised) = futures::join!(users, self.raise_hw(partition, hw_read, hw));
        raised?;
        outcomes.into_iter().collect()
    }

    async fn update_user(
        &self,
        partition: u16,
        write: &UserWrite,
    ) -> Result<WriteOutcome, StoreError> {
        let mut expression =
            "ADD #score :inc SET #wm = :new, #p = :p, #upd = :now, #uid = :uid".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.config.table)
            .key(PK, Self::user_key(&write.user_id))
            .expression_attribute_names("#score", SCORE)
            .expression_attribute_names("#wm", WM)
            .expression_attribute_names("#p", PARTITION)
            .expression_attribute_names("#upd", UPDATED_AT)
            .expression_attribute_names("#uid", USER_ID)
            .expression_attribute_values(":inc", AttributeValue::N(write.increment.to_string()))
            .expression_attribute_values(":new", AttributeValue::S(write.new_wm.to_string()))
            .expression_attribute_values(":p", AttributeValue::N(partition.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now().as_millis().to_string()))
            .expression_attribute_values(":uid", AttributeValue::S(write.user_id.clone()))
            .return_values(ReturnValue::UpdatedNew);
        if let Some(name) = &write.display_name {
            expression.push_str(", #name = :name");
            request = request
                .expression_attribute_names("#name", NAME)
                .expression_attribute_values(":name", AttributeValue::S(name.clone()));
        }
        request = match write.expected_wm {
            Some(expected) => request
                .condition_expression("#wm = :expected")
                .expression_attribute_values(":expected", AttributeValue::S(expected.to_string())),
            None => request.condition_expression("attribute_not_exists(#wm)"),
        };
        let request = request.update_expression(expression);
        let result = retrying(
            &self.config.retry,
            &self.counters.retries,
            "UpdateItem",
            || request.clone().send(),
        )
        .await?;
        match result {
            Ok(out) => {
                let score = match out.attributes().and_then(|a| a.get(SCORE)) {
                    Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
                    _ => None,
                };
                score
                    .map(|score| WriteOutcome::Applied { score })
                    .ok_or_else(|| {
                        StoreError::unexpected(format!(
                            "UpdateItem of {:?} returned no numeric score",
                            write.user_id
                        ))
                    })
            }
            Err(e) => match e.as_service_error() {
                Some(service) if is_condition_failure(service) => Ok(WriteOutcome::Conflict),
                Some(service) if service.code() == Some("ValidationException") => {
                    Ok(WriteOutcome::Refused(store_error("UpdateItem", e)))
                }
                _ => Err(store_error("UpdateItem", e)),
            },
        }
    }

    /// The stored `hw` of `partition` (strongly consistent).
    pub(super) async fn read_hw(&self, partition: u16) -> Result<Option<Watermark>, StoreError> {
        const HW_ONLY: Projection = Projection {
            expression: "#hw",
            names: &[("#hw", HW)],
        };
        let items = self.batch_get(vec![hw_key(partition)], &HW_ONLY).await?;
        parse_wm(items.first().and_then(|item| item.get(HW)))
    }

    /// Raises `partition`'s `hw` to at least `hw` with a compare-and-set on `read`; on a miss re-reads
    /// and retries while the stored value is lower. Never lowers it.
    async fn raise_hw(
        &self,
        partition: u16,
        read: Option<Watermark>,
        hw: Watermark,
    ) -> Result<(), StoreError> {
        let mut expected = read;
        for attempt in 1..=HW_ATTEMPTS {
            if attempt > 1 {
                expected = self.read_hw(partition).await?;
            }
            if expected >= Some(hw) {
                return Ok(());
            }
            let mut request = self
                .client
                .update_item()
                .table_name(&self.config.table)
                .set_key(Some(hw_key(partition)))
                .update_expression("SET #hw = :new")
                .expression_attribute_names("#hw", HW)
                .expression_attribute_values(":new", AttributeValue::S(hw.to_string()));
            request = match expected {
                Some(stored) => request
                    .condition_expression("#hw = :read")
                    .expression_attribute_values(":read", AttributeValue::S(stored.to_string())),
                None => request.condition_expression("attribute_not_exists(#hw)"),
            };
            let result = retrying(
                &self.config.retry,
                &self.counters.retries,
                "UpdateItem",
                || request.clone().send(),
            )
            .await?;
            match result {
                Ok(_) => return Ok(()),
                Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {}
                Err(e) => return Err(store_error("UpdateItem", e)),
            }
        }
        Err(StoreError::unavailable(format!(
            "hw of partition {partition} kept changing: {HW_ATTEMPTS} attempts"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_attributes_parse_or_fail() {
        assert_eq!(parse_wm(None).unwrap(), None);
        assert_eq!(
            parse_wm(Some(&AttributeValue::S("1-2-3".into()))).unwrap(),
            Some("1-2-3".parse().unwrap())
        );
        assert!(parse_wm(Some(&AttributeValue::N("1".into()))).is_err());
        assert_eq!(
            hw_key(4)[PK],
            AttributeValue::S("hw#4".into()),
            "no user key starts with hw#"
        );
    }
}
