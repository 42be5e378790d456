//! The in-memory [`WatermarkStore`]: per user `{score, name, wm, p}` and per partition `hw`, with the
//! same compare-and-set as the real adapters (equality on `wm`), injected failures
//! ([`MemoryStore::fail_next`], [`MemoryStore::refuse_next`]) and poisoned users
//! ([`MemoryStore::poison_user`]). `migrate` has nothing to do: a memory store never holds v1 records.

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use super::{MemoryStore, Record};
use crate::store::{
    PartitionRead, StoreError, UserRecord, UserTotal, UserWrite, Watermark, WatermarkStore,
    WriteOutcome,
};

#[async_trait]
impl WatermarkStore for MemoryStore {
    async fn read(&self, partition: u16, users: &[&str]) -> Result<PartitionRead, StoreError> {
        let mut state = self.lock();
        state.begin_call()?;
        let mut seen = std::collections::HashSet::new();
        let users = users
            .iter()
            .filter(|u| seen.insert(**u))
            .filter_map(|u| {
                state.records.get(*u).map(|r| UserRecord {
                    user_id: (*u).to_owned(),
                    score: r.score,
                    display_name: r.name.clone(),
                    wm: r.wm,
                })
            })
            .collect();
        Ok(PartitionRead {
            users,
            hw: state.hw.get(&partition).copied(),
        })
    }

    async fn write(
        &self,
        partition: u16,
        writes: &[UserWrite],
        _hw_read: Option<Watermark>,
        hw: Watermark,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let mut state = self.lock();
        state.begin_call()?;
        let mut outcomes = Vec::with_capacity(writes.len());
        for write in writes {
            if state.poisoned.contains(&write.user_id) {
                outcomes.push(WriteOutcome::Refused(StoreError::unexpected(format!(
                    "memory store: the record of {:?} is poisoned",
                    write.user_id
                ))));
                continue;
            }
            let record = state.records.get_mut(&write.user_id);
            let stored_wm = record.as_ref().and_then(|r| r.wm);
            if stored_wm != write.expected_wm {
                outcomes.push(WriteOutcome::Conflict);
                continue;
            }
            let record = match record {
                Some(record) => record,
                None => state
                    .records
                    .entry(write.user_id.clone())
                    .or_insert(Record {
                        score: 0,
                        name: None,
                        wm: None,
                        partition,
                    }),
            };
            record.score += write.increment;
            record.wm = Some(write.new_wm);
            record.partition = partition;
            if write.display_name.is_some() {
                record.name.clone_from(&write.display_name);
            }
            outcomes.push(WriteOutcome::Applied {
                score: record.score,
            });
        }
        // Raised, never lowered: the end state of the adapters' compare-and-set loop.
        let stored = state.hw.entry(partition).or_insert(hw);
        *stored = (*stored).max(hw);
        Ok(outcomes)
    }

    fn partition_totals(&self, partition: u16) -> BoxStream<'_, Result<UserTotal, StoreError>> {
        let mut state = self.lock();
        let totals: Vec<_> = match state.begin_call() {
            Err(error) => vec![Err(error)],
            Ok(()) => state
                .records
                .iter()
                .filter(|(_, r)| r.partition == partition)
                .map(|(user_id, r)| {
                    Ok(UserTotal {
                        user_id: user_id.clone(),
                        display_name: r.name.clone(),
                        score: r.score,
                    })
                })
                .collect(),
        };
        stream::iter(totals).boxed()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.lock().take_failure()
    }

    async fn migrate(&self, _partitions: u16) -> Result<u64, StoreError> {
        self.lock().begin_call()?;
        Ok(0)
    }
}
