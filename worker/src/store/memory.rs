//! An in-memory score store for unit tests of worker logic (batching, dead letters, shutdown grace): the
//! same contracts as the real adapters — v1 [`ScoreStore`] (each event id counts once, absolute totals
//! returned) and v2 [`WatermarkStore`](super::WatermarkStore) (a compare-and-set on each user's `wm`, in
//! `memory/watermark.rs`), each with its own records — plus switches that make the next calls fail the
//! way a store outage (transient) or a refusal (not transient, e.g. a deleted table) does, and a switch
//! that makes one user's writes refused (a poisoned record).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use super::{ScoreStore, StoreError, UserDelta, UserTotal, Watermark};

mod watermark;

/// Totals, names and applied event ids (v1), watermarked records (v2), behind one lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// v1 records.
    users: HashMap<String, UserTotal>,
    /// v1 applied event ids.
    applied: HashSet<String>,
    /// v2 records.
    records: HashMap<String, Record>,
    /// v2 high-water marks per partition.
    hw: HashMap<u16, Watermark>,
    /// Users whose v2 writes are refused.
    poisoned: HashSet<String>,
    /// Calls still to fail.
    failures_left: u32,
    /// Whether those failures are [`StoreError::Unexpected`] rather than [`StoreError::Unavailable`].
    refusing: bool,
    /// Data calls made, failed ones included.
    calls: u32,
}

/// One user's v2 record.
#[derive(Debug, Clone)]
struct Record {
    score: u64,
    name: Option<String>,
    wm: Option<Watermark>,
    partition: u16,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `count` calls (any of `apply_batch`, `all_totals`, `read`, `write`,
    /// `partition_totals`, `migrate`, `ping`) fail as unavailable, changing nothing.
    pub fn fail_next(&self, count: u32) {
        let mut state = self.lock();
        state.failures_left = count;
        state.refusing = false;
    }

    /// Makes the next `count` calls fail as a refusal that retrying cannot fix
    /// ([`StoreError::Unexpected`]), changing nothing.
    pub fn refuse_next(&self, count: u32) {
        let mut state = self.lock();
        state.failures_left = count;
        state.refusing = true;
    }

    /// Data calls made so far (`apply_batch`, `read`, `write`, `partition_totals`, `migrate`; not
    /// `ping` or `all_totals`), failed ones included.
    pub fn calls(&self) -> u32 {
        self.lock().calls
    }

    /// Makes every v2 write of `user_id` come back as [`WriteOutcome::Refused`](super::WriteOutcome)
    /// (not transient) until [`Self::heal_user`], as a record the store cannot add to would; the other
    /// users of the same write are unaffected.
    pub fn poison_user(&self, user_id: &str) {
        self.lock().poisoned.insert(user_id.to_owned());
    }

    /// Undoes [`Self::poison_user`].
    pub fn heal_user(&self, user_id: &str) {
        self.lock().poisoned.remove(user_id);
    }

    /// One user's v1 total, if the user has one.
    pub fn total(&self, user_id: &str) -> Option<u64> {
        self.lock().users.get(user_id).map(|t| t.score)
    }

    /// One user's v2 score, if the user has a record.
    pub fn score(&self, user_id: &str) -> Option<u64> {
        self.lock().records.get(user_id).map(|r| r.score)
    }

    /// One user's v2 watermark, if the user has a record with one.
    pub fn watermark(&self, user_id: &str) -> Option<Watermark> {
        self.lock().records.get(user_id).and_then(|r| r.wm)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn take_failure(&mut self) -> Result<(), StoreError> {
        if self.failures_left > 0 {
            self.failures_left -= 1;
            return Err(if self.refusing {
                StoreError::unexpected("memory store: injected refusal")
            } else {
                StoreError::unavailable("memory store: injected outage")
            });
        }
        Ok(())
    }

    /// Counts a data call and takes an injected failure, if one is due.
    fn begin_call(&mut self) -> Result<(), StoreError> {
        self.calls += 1;
        self.take_failure()
    }
}

#[async_trait]
impl ScoreStore for MemoryStore {
    async fn apply_batch(&self, batch: &[UserDelta]) -> Result<Vec<UserTotal>, StoreError> {
        let mut state = self.lock();
        state.begin_call()?;
        let mut totals = Vec::with_capacity(batch.len());
        for delta in batch {
            let fresh: u64 = delta
                .events
                .iter()
                .filter(|event| state.applied.insert(event.event_id.clone()))
                .map(|event| event.increment)
                .sum();
            let entry = state
                .users
                .entry(delta.user_id.clone())
                .or_insert_with(|| UserTotal {
                    user_id: delta.user_id.clone(),
                    display_name: None,
                    score: 0,
                });
            entry.score += fresh;
            if delta.display_name.is_some() {
                entry.display_name.clone_from(&delta.display_name);
            }
            totals.push(entry.clone());
        }
        Ok(totals)
    }

    fn all_totals(&self) -> BoxStream<'_, Result<UserTotal, StoreError>> {
        let totals: Vec<_> = self.lock().users.values().cloned().map(Ok).collect();
        stream::iter(totals).boxed()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.lock().take_failure()
    }
}
