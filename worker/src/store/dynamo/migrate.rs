//! Migrating a v1 table in place (`docs/design.md` §5.3, issue 9): every user item without a partition
//! `p` gets it (conditional on `attribute_not_exists(p)`, so concurrent runs count each item once) and
//! every v1 event marker item is deleted. One paged scan; the items of a page are changed in parallel.
//! Idempotent: a second run finds nothing to change; an interrupted run resumes.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use futures::stream::{StreamExt, TryStreamExt};
use scoreboard_shared::partition::Partitioner;

use super::DynamoStore;
use super::read::{Item, Projection, ScanFilter};
use super::retry::{retrying, store_error};
use super::table::{EVENT_PREFIX, PARTITION, PK, USER_PREFIX};
use crate::store::StoreError;

/// Items changed at once.
const CONCURRENT_CHANGES: usize = 16;

/// The key and the partition of every item.
const KEYS: Projection = Projection {
    expression: "#pk, #p",
    names: &[("#pk", PK), ("#p", PARTITION)],
};

impl DynamoStore {
    /// See [`crate::store::WatermarkStore::migrate`].
    pub(super) async fn migrate_v1(&self, partitions: u16) -> Result<u64, StoreError> {
        let partitioner = Partitioner::new(partitions);
        let changed = self
            .scan(ScanFilter::All, KEYS)
            .map(|item| async move {
                let item = item?;
                match item.get(PK) {
                    Some(AttributeValue::S(pk)) if pk.starts_with(EVENT_PREFIX) => {
                        self.delete_marker(&item).await
                    }
                    Some(AttributeValue::S(pk))
                        if pk.starts_with(USER_PREFIX) && !item.contains_key(PARTITION) =>
                    {
                        let user_id = &pk[USER_PREFIX.len()..];
                        self.set_partition(&item, partitioner.partition_of(user_id))
                            .await
                    }
                    _ => Ok(false),
                }
            })
            .buffer_unordered(CONCURRENT_CHANGES)
            .try_fold(0u64, |n, changed| async move { Ok(n + u64::from(changed)) })
            .await?;
        tracing::info!(changed, "migrated v1 items");
        Ok(changed)
    }

    /// Deletes one marker item; whether it was still there.
    async fn delete_marker(&self, item: &Item) -> Result<bool, StoreError> {
        let request = self
            .client
            .delete_item()
            .table_name(&self.config.table)
            .key(PK, item[PK].clone())
            .return_values(ReturnValue::AllOld);
        let result = retrying(
            &self.config.retry,
            &self.counters.retries,
            "DeleteItem",
            || request.clone().send(),
        )
        .await?;
        match result {
            Ok(out) => Ok(out.attributes().is_some_and(|a| !a.is_empty())),
            Err(e) => Err(store_error("DeleteItem", e)),
        }
    }

    /// Sets `p` on one user item that has none; whether this call set it.
    async fn set_partition(&self, item: &Item, partition: u16) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.config.table)
            .key(PK, item[PK].clone())
            .update_expression("SET #p = :p")
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#p)")
            .expression_attribute_names("#p", PARTITION)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":p", AttributeValue::N(partition.to_string()));
        let result = retrying(
            &self.config.retry,
            &self.counters.retries,
            "UpdateItem",
            || request.clone().send(),
        )
        .await?;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error().and_then(ProvideErrorMetadata::code)
                    == Some("ConditionalCheckFailedException") =>
            {
                Ok(false)
            }
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }
}
