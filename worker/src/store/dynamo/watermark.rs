//! The DynamoDB [`WatermarkStore`]: user items `user#<id>` with `score` (N), `name`, `wm` (S), `p` (N),
//! `updatedAt`, and one item per partition `hw#<p>` with `hw` (S). A batch is one strongly consistent
//! `BatchGetItem` per 100 keys (the users and the `hw` item) and one conditional `UpdateItem` per user,
//! in parallel ([`cas`](super::cas)). Rebuilds scan with a filter on `p`.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::BoxStream;

use super::DynamoStore;
use super::cas::{hw_key, parse_wm};
use super::read::{Item, Projection, ScanFilter};
use super::table::{HW, HW_PREFIX, NAME, PK, SCORE, USER_ID, USER_PREFIX, WM};
use crate::store::{
    PartitionRead, StoreError, UserRecord, UserTotal, UserWrite, Watermark, WatermarkStore,
    WriteOutcome,
};

/// What a v2 read needs of user and `hw` items.
const RECORDS: Projection = Projection {
    expression: "#pk, #uid, #score, #name, #wm, #hw",
    names: &[
        ("#pk", PK),
        ("#uid", USER_ID),
        ("#score", SCORE),
        ("#name", NAME),
        ("#wm", WM),
        ("#hw", HW),
    ],
};

/// A user item as read. A score this code cannot read (a poisoned item) is read as 0 rather than
/// failing the partition's whole read: that user's update is then refused and only its events are
/// dead-lettered.
fn to_record(user_id: &str, item: &Item) -> Result<UserRecord, StoreError> {
    let score = match item.get(SCORE) {
        None => 0,
        Some(AttributeValue::N(n)) if n.parse::<u64>().is_ok() => n.parse().unwrap_or(0),
        Some(other) => {
            tracing::warn!(user = %user_id, score = ?other, "unreadable score, read as 0");
            0
        }
    };
    let wm = parse_wm(item.get(WM))
        .map_err(|e| StoreError::unexpected(format!("wm of {user_id:?}: {}", e.message())))?;
    Ok(UserRecord {
        user_id: user_id.to_owned(),
        score,
        display_name: match item.get(NAME) {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        },
        wm,
    })
}

#[async_trait]
impl WatermarkStore for DynamoStore {
    async fn read(&self, partition: u16, users: &[&str]) -> Result<PartitionRead, StoreError> {
        let mut distinct = HashSet::with_capacity(users.len());
        let mut keys: Vec<Item> = users
            .iter()
            .filter(|u| distinct.insert(**u))
            .map(|u| HashMap::from([(PK.to_owned(), Self::user_key(u))]))
            .collect();
        keys.push(hw_key(partition));
        let hw_pk = format!("{HW_PREFIX}{partition}");
        let mut hw = None;
        let mut found: HashMap<String, UserRecord> = HashMap::with_capacity(users.len());
        for item in self.batch_get(keys, &RECORDS).await? {
            match item.get(PK) {
                Some(AttributeValue::S(pk)) if *pk == hw_pk => hw = parse_wm(item.get(HW))?,
                Some(AttributeValue::S(pk)) if pk.starts_with(USER_PREFIX) => {
                    let user_id = &pk[USER_PREFIX.len()..];
                    found.insert(user_id.to_owned(), to_record(user_id, &item)?);
                }
                other => {
                    return Err(StoreError::unexpected(format!(
                        "BatchGetItem returned an item keyed {other:?}"
                    )));
                }
            }
        }
        let mut seen = HashSet::with_capacity(users.len());
        let users = users
            .iter()
            .filter(|u| seen.insert(**u))
            .filter_map(|u| found.remove(*u))
            .collect();
        Ok(PartitionRead { users, hw })
    }

    async fn write(
        &self,
        partition: u16,
        writes: &[UserWrite],
        hw_read: Option<Watermark>,
        hw: Watermark,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        self.write_watermarked(partition, writes, hw_read, hw).await
    }

    fn partition_totals(&self, partition: u16) -> BoxStream<'_, Result<UserTotal, StoreError>> {
        self.scan_totals(ScanFilter::Partition(partition))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.describe().await
    }

    async fn migrate(&self, partitions: u16) -> Result<u64, StoreError> {
        self.migrate_v1(partitions).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_score_reads_as_zero_but_an_unreadable_wm_fails() {
        let item = HashMap::from([
            (SCORE.to_owned(), AttributeValue::S("lots".into())),
            (WM.to_owned(), AttributeValue::S("1-2-3".into())),
        ]);
        let record = to_record("u", &item).unwrap();
        assert_eq!(
            (record.score, record.wm),
            (0, Some("1-2-3".parse().unwrap()))
        );
        let item = HashMap::from([(WM.to_owned(), AttributeValue::S("later".into()))]);
        assert!(to_record("u", &item).is_err());
    }
}
