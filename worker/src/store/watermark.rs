//! The v2 store port (`docs/design.md` §5.3): exactly-once by a per-user watermark. Each user's record is
//! `{score, name, wm, p, updatedAt}`, where `wm` is the [`Watermark`] of the last applied event. A batch is
//! applied in at most two round trips (the read is skipped for users the owner remembers, see
//! `partition::read_cache`): [`WatermarkStore::read`] (strongly consistent) returns the users' `wm` and
//! score, the worker drops events at or below `wm`, and [`WatermarkStore::write`] writes each remaining
//! user with a compare-and-set on the `wm` it read (equality only: the store never orders watermarks), so a
//! stale or concurrent writer misses instead of counting twice. Space per user is O(1) and correctness does
//! not depend on how far behind a worker is.
//!
//! Each partition also has a high-water mark `hw` (largest watermark applied), raised with each batch: an
//! owner that finds its stream's last id below `hw` knows Redis lost entries and moves the stream's id
//! past it, so no new event can get an id at or below a watermark.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use futures::stream::BoxStream;
use scoreboard_shared::partition::StreamId;

use super::{StoreError, UserTotal};

/// The position of an applied event: (partition generation, entry ms, entry seq), ordered in that order.
/// Stored as the text `<generation>-<ms>-<seq>` and only ever compared for equality inside a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Watermark {
    pub generation: u32,
    pub entry: StreamId,
}

impl Watermark {
    pub fn new(generation: u32, entry: StreamId) -> Self {
        Self { generation, entry }
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.generation, self.entry)
    }
}

impl FromStr for Watermark {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || StoreError::unexpected(format!("not a watermark: {s:?}"));
        let (generation, entry) = s.split_once('-').ok_or_else(invalid)?;
        if generation.is_empty() || !generation.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        Ok(Self {
            generation: generation.parse().map_err(|_| invalid())?,
            entry: entry.parse().map_err(|_| invalid())?,
        })
    }
}

/// One user's record as read (strongly consistent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub user_id: String,
    pub score: u64,
    pub display_name: Option<String>,
    /// `None` for a user written before watermarks (a migrated v1 record) or never written.
    pub wm: Option<Watermark>,
}

/// What [`WatermarkStore::read`] found: the users that exist (absent users have no record) and the
/// partition's high-water mark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionRead {
    pub users: Vec<UserRecord>,
    pub hw: Option<Watermark>,
}

/// One user's conditional write: applies only if the stored `wm` still equals `expected_wm` (`None`: the
/// record is absent or has no `wm`), adding `increment`, setting `new_wm`, the name (when given), the
/// partition and `updatedAt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserWrite {
    pub user_id: String,
    pub expected_wm: Option<Watermark>,
    /// The score [`WatermarkStore::read`] returned with `expected_wm` (0 for an absent user). Every write
    /// that changes a score also changes `wm`, so a hit on `expected_wm` proves the score is still this
    /// one: an adapter whose write cannot return the new total in the same round trip (MongoDB's bulk
    /// `update`) answers `expected_score + increment`.
    pub expected_score: u64,
    pub increment: u64,
    pub display_name: Option<String>,
    pub new_wm: Watermark,
}

/// One partition's [`WatermarkStore::write`], for [`WatermarkStore::write_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionWrite {
    pub partition: u16,
    pub writes: Vec<UserWrite>,
    pub hw_read: Option<Watermark>,
    pub hw: Watermark,
}

/// How one user's write ended.
#[derive(Debug)]
pub enum WriteOutcome {
    /// Applied; the new absolute total.
    Applied { score: u64 },
    /// The stored `wm` was not the one read (another writer got there first): nothing changed; re-read.
    Conflict,
    /// The store refused this user's write (e.g. the record holds a value this code cannot add to); the
    /// other users of the batch are unaffected. Transient refusals come back as `Err` from `write`.
    Refused(StoreError),
}

/// The system of record, v2 (see the module docs).
#[async_trait]
pub trait WatermarkStore: Send + Sync + fmt::Debug {
    /// One round trip: the records of `users` that exist and partition `partition`'s `hw`, strongly
    /// consistent (a write acknowledged before this call is seen).
    ///
    /// # Errors
    /// When the store cannot be reached or answers unexpectedly.
    async fn read(&self, partition: u16, users: &[&str]) -> Result<PartitionRead, StoreError>;

    /// One round trip in the common case: every user's conditional write (see [`UserWrite`]), in
    /// parallel or as one unordered bulk command, plus raising `partition`'s `hw` to at least `hw` (a
    /// compare-and-set on `hw_read`, the value [`Self::read`] returned; on a miss it re-reads and retries
    /// while the stored value is lower). Returns one outcome per write, in order.
    ///
    /// # Errors
    /// When the store cannot be reached or refuses the whole call; any subset of the users may have been
    /// applied (each user's write is atomic), so the caller re-reads before retrying.
    async fn write(
        &self,
        partition: u16,
        writes: &[UserWrite],
        hw_read: Option<Watermark>,
        hw: Watermark,
    ) -> Result<Vec<WriteOutcome>, StoreError>;

    /// The writes of several partitions (each as [`Self::write`]), in one round trip where the store can
    /// (MongoDB: one unordered `update`); the partitions share no users or `hw`, so their statements are
    /// independent. One result per partition write, in order; a failure of a shared call fails each of
    /// the writes it carried. The default makes one [`Self::write`] per partition.
    async fn write_many(
        &self,
        batches: &[PartitionWrite],
    ) -> Vec<Result<Vec<WriteOutcome>, StoreError>> {
        let mut results = Vec::with_capacity(batches.len());
        for batch in batches {
            results.push(
                self.write(batch.partition, &batch.writes, batch.hw_read, batch.hw)
                    .await,
            );
        }
        results
    }

    /// Every user of `partition` with their total, in no particular order (rebuilding the Redis cache).
    fn partition_totals(&self, partition: u16) -> BoxStream<'_, Result<UserTotal, StoreError>>;

    /// Whether the store is reachable (start-up and health checks).
    ///
    /// # Errors
    /// When it is not.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Migrates v1 records in place (idempotent): sets each user's partition `p` for `partitions`
    /// partitions and drops v1 leftovers (MongoDB's `applied` id arrays, DynamoDB's event marker items).
    /// Run with intake stopped and the v1 stream drained. Returns how many records it changed.
    ///
    /// # Errors
    /// When the store fails; running it again resumes.
    async fn migrate(&self, partitions: u16) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_order_by_generation_then_entry_and_round_trip() {
        let a: Watermark = "1-10-2".parse().unwrap();
        let b: Watermark = "1-10-11".parse().unwrap();
        let c: Watermark = "2-1-0".parse().unwrap();
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "1-10-11");
        for bad in ["", "1", "1-2", "x-1-2", "1-2-y", "-1-2"] {
            assert!(bad.parse::<Watermark>().is_err(), "{bad}");
        }
    }
}
