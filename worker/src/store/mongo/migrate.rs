//! Migrating v1 user documents in place (`docs/design.md` §5.3, issue 9): each document without a
//! partition `p` gets it, and v1's `applied` id array is dropped. Pages of documents still matching
//! the v1 filter are updated with one unordered `update` each until none is left, so the migration is
//! idempotent and resumes where an interrupted run stopped.

use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use scoreboard_shared::partition::Partitioner;

use super::MongoStore;
use super::bulk::{Statement, durable};
use super::errors::store_error;
use crate::store::StoreError;

/// Documents per page (one `find` and one `update`).
const PAGE: i64 = 500;

/// User documents (not `hw` documents) that still have a v1 shape.
fn v1_shaped() -> Document {
    doc! {
        "hw": {"$exists": false},
        "$or": [{"p": {"$exists": false}}, {"applied": {"$exists": true}}],
    }
}

impl MongoStore {
    /// See [`crate::store::WatermarkStore::migrate`].
    pub(super) async fn migrate_v1(&self, partitions: u16) -> Result<u64, StoreError> {
        let partitioner = Partitioner::new(partitions);
        let mut changed = 0;
        loop {
            let page: Vec<Document> = self
                .collection
                .find(v1_shaped())
                .projection(doc! {"_id": 1})
                .limit(PAGE)
                .await
                .map_err(store_error)?
                .try_collect()
                .await
                .map_err(store_error)?;
            if page.is_empty() {
                return Ok(changed);
            }
            let mut statements = Vec::with_capacity(page.len());
            for doc in &page {
                let id = doc.get_str("_id").map_err(|_| {
                    StoreError::unexpected(format!(
                        "migrate: a document without a string _id: {:?}",
                        doc.get("_id")
                    ))
                })?;
                let mut q = v1_shaped();
                q.insert("_id", id);
                statements.push(doc! {
                    "q": q,
                    "u": {
                        "$set": {"p": i32::from(partitioner.partition_of(id))},
                        "$unset": {"applied": ""},
                    },
                });
            }
            let reply = self.bulk_update(statements, Some(durable())).await?;
            match reply.statements.iter().find(|s| **s != Statement::Done) {
                None => {}
                Some(Statement::Failed { message, .. }) => {
                    return Err(StoreError::unexpected(format!("migrate: {message}")));
                }
                Some(other) => {
                    return Err(StoreError::unexpected(format!("migrate: {other:?}")));
                }
            }
            changed += reply.modified;
            tracing::info!(changed, "migrated v1 documents");
        }
    }
}
