//! The MongoDB [`WatermarkStore`]: user documents `{_id, score, name, wm: "<gen>-<ms>-<seq>", p,
//! updatedAt}` and, in the same collection, one document per partition `{_id: "\u{1}hw:<p>", hw}` (user
//! ids never contain control characters, so the id cannot be a user's; it has no `p`, so partition scans
//! skip it).
//!
//! A batch is two round trips: one `find` with `_id: {$in: [users…, hw id]}`, and one unordered
//! `update` (write concern majority + journal) with one statement per user, `upsert: true`, filtered on
//! `{_id, wm: <read value or null>}` — a miss on an existing document is E11000 at its index
//! ([`WriteOutcome::Conflict`]) — plus one compare-and-set statement raising `hw`. The reply carries no
//! totals: a hit proves the score was the one read, so the new total is `expected_score + increment`.

use std::collections::HashMap;

use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use mongodb::bson::{Bson, DateTime, Document, doc};

use super::bulk::{Statement, durable};
use super::errors::store_error;
use super::{MongoStore, lenient_u64, to_total};
use crate::store::{
    PartitionRead, PartitionWrite, StoreError, UserRecord, UserTotal, UserWrite, Watermark,
    WatermarkStore, WriteOutcome,
};

/// Prefix of the `_id` of a partition's high-water mark document.
pub(super) const HW_PREFIX: &str = "\u{1}hw:";
/// Compare-and-set attempts at raising `hw` after the batch's own statement missed.
const HW_ATTEMPTS: u32 = 10;

/// The `_id` of `partition`'s high-water mark document.
pub(super) fn hw_id(partition: u16) -> String {
    format!("{HW_PREFIX}{partition}")
}

fn wm_filter(wm: Option<Watermark>) -> Bson {
    wm.map_or(Bson::Null, |wm| Bson::String(wm.to_string()))
}

/// A stored watermark: absent or null is `None`; anything but a watermark string is an error.
fn parse_wm(value: Option<&Bson>, what: &str) -> Result<Option<Watermark>, StoreError> {
    match value {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => s.parse().map(Some),
        Some(other) => Err(StoreError::unexpected(format!(
            "{what} is not a watermark string: {other}"
        ))),
    }
}

/// A user document as read. A score this code cannot read (a hand-edited or poisoned document) is read
/// as 0 rather than failing the partition's whole read: that user's write is then refused by the
/// server and only its events are dead-lettered.
fn to_record(doc: &Document) -> Result<UserRecord, StoreError> {
    let user_id = doc
        .get_str("_id")
        .map_err(|_| StoreError::unexpected("a document without a string _id"))?
        .to_owned();
    let score = match doc.get("score") {
        None | Some(Bson::Null) => 0,
        Some(value) => lenient_u64(value).unwrap_or_else(|| {
            tracing::warn!(user = %user_id, score = %value, "unreadable score, read as 0");
            0
        }),
    };
    Ok(UserRecord {
        wm: parse_wm(doc.get("wm"), &format!("wm of {user_id:?}"))?,
        display_name: doc.get_str("name").ok().map(str::to_owned),
        user_id,
        score,
    })
}

fn user_statement(partition: u16, write: &UserWrite, increment: i64) -> Document {
    let mut set = doc! {
        "wm": write.new_wm.to_string(),
        "p": i32::from(partition),
        "updatedAt": DateTime::now(),
    };
    if let Some(name) = &write.display_name {
        set.insert("name", name.as_str());
    }
    doc! {
        "q": {"_id": write.user_id.as_str(), "wm": wm_filter(write.expected_wm)},
        "u": {"$inc": {"score": increment}, "$set": set},
        "upsert": true,
    }
}

fn hw_statement(partition: u16, read: Option<Watermark>, hw: Watermark) -> Document {
    doc! {
        "q": {"_id": hw_id(partition), "hw": wm_filter(read)},
        "u": {"$set": {"hw": hw.to_string()}},
        "upsert": true,
    }
}

/// What one statement of a combined `update` is for.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Write `write` of batch `batch`.
    User { batch: usize, write: usize },
    /// The `hw` raise of batch `batch`.
    Hw { batch: usize },
}

/// A user's outcome from its statement's: a hit proves the score was the one read.
fn user_outcome(write: &UserWrite, statement: Statement) -> WriteOutcome {
    match statement {
        Statement::Done => WriteOutcome::Applied {
            score: write.expected_score + write.increment,
        },
        Statement::DuplicateKey => WriteOutcome::Conflict,
        Statement::Failed { code, message } => {
            WriteOutcome::Refused(StoreError::unexpected(format!(
                "MongoDB refused the write of {:?} (code {}): {message}",
                write.user_id,
                code.map_or_else(|| "none".to_owned(), |c| c.to_string())
            )))
        }
    }
}

impl MongoStore {
    /// The stored `hw` of `partition` (a strongly consistent read on the primary).
    async fn read_hw(&self, partition: u16) -> Result<Option<Watermark>, StoreError> {
        let found = self
            .collection
            .find_one(doc! {"_id": hw_id(partition)})
            .projection(doc! {"hw": 1})
            .await
            .map_err(store_error)?;
        parse_wm(found.as_ref().and_then(|d| d.get("hw")), "hw")
    }

    /// Raises `partition`'s `hw` to at least `hw` after a compare-and-set missed: re-reads and retries
    /// while the stored value is lower. Never lowers it.
    async fn raise_hw(&self, partition: u16, hw: Watermark) -> Result<(), StoreError> {
        for _ in 0..HW_ATTEMPTS {
            let stored = self.read_hw(partition).await?;
            if stored >= Some(hw) {
                return Ok(());
            }
            let reply = self
                .bulk_update(vec![hw_statement(partition, stored, hw)], Some(durable()))
                .await?;
            match &reply.statements[0] {
                Statement::Done => return Ok(()),
                Statement::DuplicateKey => {}
                Statement::Failed { message, .. } => {
                    return Err(StoreError::unexpected(format!(
                        "MongoDB refused raising hw of partition {partition}: {message}"
                    )));
                }
            }
        }
        Err(StoreError::unavailable(format!(
            "hw of partition {partition} kept changing: {HW_ATTEMPTS} attempts"
        )))
    }

    /// The writes of `batches` (each user's compare-and-set, each partition's `hw` raise) as one
    /// unordered `update`; a partition whose `hw` statement missed raises it with [`Self::raise_hw`].
    async fn write_partitions(
        &self,
        batches: &[PartitionWrite],
    ) -> Vec<Result<Vec<WriteOutcome>, StoreError>> {
        let mut outcomes: Vec<Vec<Option<WriteOutcome>>> = batches
            .iter()
            .map(|b| b.writes.iter().map(|_| None).collect())
            .collect();
        let mut statements = Vec::new();
        let mut slots = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            for (i, write) in batch.writes.iter().enumerate() {
                match i64::try_from(write.increment) {
                    Ok(increment) => {
                        statements.push(user_statement(batch.partition, write, increment));
                        slots.push(Slot::User { batch: b, write: i });
                    }
                    Err(_) => {
                        outcomes[b][i] =
                            Some(WriteOutcome::Refused(StoreError::unexpected(format!(
                                "increment {} of {:?} does not fit a 64-bit integer",
                                write.increment, write.user_id
                            ))));
                    }
                }
            }
            if batch.hw_read < Some(batch.hw) {
                statements.push(hw_statement(batch.partition, batch.hw_read, batch.hw));
                slots.push(Slot::Hw { batch: b });
            }
        }
        let mut failed: Vec<Option<StoreError>> = batches.iter().map(|_| None).collect();
        let mut hw_missed = vec![false; batches.len()];
        if !statements.is_empty() {
            let reply = match self.bulk_update(statements, Some(durable())).await {
                Ok(reply) => reply,
                Err(error) => return batches.iter().map(|_| Err(error.duplicate())).collect(),
            };
            for (statement, slot) in reply.statements.into_iter().zip(&slots) {
                match (*slot, statement) {
                    (Slot::Hw { .. }, Statement::Done) => {}
                    (Slot::Hw { batch }, Statement::DuplicateKey) => hw_missed[batch] = true,
                    (Slot::Hw { batch }, Statement::Failed { message, .. }) => {
                        failed[batch] = Some(StoreError::unexpected(format!(
                            "MongoDB refused raising hw of partition {}: {message}",
                            batches[batch].partition
                        )));
                    }
                    (Slot::User { batch, write: i }, statement) => {
                        let write = &batches[batch].writes[i];
                        outcomes[batch][i] = Some(user_outcome(write, statement));
                    }
                }
            }
        }
        let mut results = Vec::with_capacity(batches.len());
        for (b, batch) in batches.iter().enumerate() {
            if let Some(error) = failed[b].take() {
                results.push(Err(error));
                continue;
            }
            if hw_missed[b]
                && let Err(error) = self.raise_hw(batch.partition, batch.hw).await
            {
                results.push(Err(error));
                continue;
            }
            results.push(
                std::mem::take(&mut outcomes[b])
                    .into_iter()
                    .map(|o| {
                        o.ok_or_else(|| StoreError::unexpected("MongoDB: a statement went missing"))
                    })
                    .collect(),
            );
        }
        results
    }
}

#[async_trait::async_trait]
impl WatermarkStore for MongoStore {
    async fn read(&self, partition: u16, users: &[&str]) -> Result<PartitionRead, StoreError> {
        let hw_key = hw_id(partition);
        let mut ids: Vec<&str> = users.to_vec();
        ids.push(&hw_key);
        let docs: Vec<Document> = self
            .collection
            .find(doc! {"_id": {"$in": &ids}})
            .projection(doc! {"score": 1, "name": 1, "wm": 1, "hw": 1})
            // Every document in the first reply: one round trip, not a find plus getMores.
            .batch_size(u32::try_from(ids.len()).unwrap_or(u32::MAX))
            .await
            .map_err(store_error)?
            .try_collect()
            .await
            .map_err(store_error)?;
        let mut hw = None;
        let mut found: HashMap<String, UserRecord> = HashMap::with_capacity(docs.len());
        for doc in &docs {
            if doc.get_str("_id") == Ok(hw_key.as_str()) {
                hw = parse_wm(doc.get("hw"), "hw")?;
            } else {
                let record = to_record(doc)?;
                found.insert(record.user_id.clone(), record);
            }
        }
        let users = users.iter().filter_map(|u| found.remove(*u)).collect();
        Ok(PartitionRead { users, hw })
    }

    async fn write(
        &self,
        partition: u16,
        writes: &[UserWrite],
        hw_read: Option<Watermark>,
        hw: Watermark,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let batch = PartitionWrite {
            partition,
            writes: writes.to_vec(),
            hw_read,
            hw,
        };
        self.write_partitions(std::slice::from_ref(&batch))
            .await
            .pop()
            .unwrap_or_else(|| Err(StoreError::unexpected("MongoDB: a write went missing")))
    }

    async fn write_many(
        &self,
        batches: &[PartitionWrite],
    ) -> Vec<Result<Vec<WriteOutcome>, StoreError>> {
        self.write_partitions(batches).await
    }

    fn partition_totals(&self, partition: u16) -> BoxStream<'_, Result<UserTotal, StoreError>> {
        let find = self
            .collection
            .find(doc! {"p": i32::from(partition)})
            .projection(doc! {"score": 1, "name": 1});
        futures::stream::once(async move { find.await.map_err(store_error) })
            .map_ok(|cursor| cursor.map_err(store_error))
            .try_flatten()
            // A document this code cannot read (e.g. a score edited into a string) is left out with a
            // warning: one poisoned user must not stop a whole partition's rebuild.
            .try_filter_map(|d| async move {
                Ok(to_total(&d)
                    .inspect_err(|error| {
                        tracing::warn!(error = %error, "unreadable document left out of the rebuild");
                    })
                    .ok())
            })
            .boxed()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.ping_server().await
    }

    async fn migrate(&self, partitions: u16) -> Result<u64, StoreError> {
        self.migrate_v1(partitions).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hw_ids_cannot_be_user_ids_and_statements_filter_on_the_wm_read() {
        assert!(hw_id(3).starts_with('\u{1}'));
        let write = UserWrite {
            user_id: "ann".to_owned(),
            expected_wm: None,
            expected_score: 0,
            increment: 5,
            display_name: Some("Ann".to_owned()),
            new_wm: "1-10-0".parse().unwrap(),
        };
        let statement = user_statement(7, &write, 5);
        let q = statement.get_document("q").unwrap();
        assert_eq!(q.get("wm"), Some(&Bson::Null));
        let set = statement
            .get_document("u")
            .unwrap()
            .get_document("$set")
            .unwrap();
        assert_eq!(set.get_str("wm").unwrap(), "1-10-0");
        assert_eq!(set.get_i32("p").unwrap(), 7);
        assert_eq!(set.get_str("name").unwrap(), "Ann");
    }

    #[test]
    fn documents_become_records_and_an_unreadable_score_reads_as_zero() {
        let record = to_record(&doc! {"_id": "u", "score": 4i64, "wm": "1-2-3"}).unwrap();
        assert_eq!(
            (record.score, record.wm),
            (4, Some("1-2-3".parse().unwrap()))
        );
        let poisoned = to_record(&doc! {"_id": "u", "score": "lots", "wm": "1-2-3"}).unwrap();
        assert_eq!(poisoned.score, 0);
        assert!(to_record(&doc! {"_id": "u", "wm": 5}).is_err());
        assert_eq!(to_record(&doc! {"_id": "v1", "score": 3}).unwrap().wm, None);
    }
}
