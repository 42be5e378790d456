//! An in-memory score store for unit tests of worker logic (batching, dead letters, shutdown grace): the
//! same contract as the real adapters — [`WatermarkStore`](super::WatermarkStore), a compare-and-set on
//! each user's `wm` (in `memory/watermark.rs`) — plus switches that make the next calls fail the way a
//! store outage (transient) or a refusal (not transient, e.g. a deleted table) does, and a switch that
//! makes one user's writes refused (a poisoned record).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::{StoreError, Watermark};

mod watermark;

/// Watermarked records and high-water marks, behind one lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// User records.
    records: HashMap<String, Record>,
    /// High-water marks per partition.
    hw: HashMap<u16, Watermark>,
    /// Users whose writes are refused.
    poisoned: HashSet<String>,
    /// Calls still to fail.
    failures_left: u32,
    /// Whether those failures are [`StoreError::Unexpected`] rather than [`StoreError::Unavailable`].
    refusing: bool,
    /// Data calls made, failed ones included.
    calls: u32,
}

/// One user's record.
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

    /// Makes the next `count` calls (any of `read`, `write`, `partition_totals`, `migrate`, `ping`) fail
    /// as unavailable, changing nothing.
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

    /// Data calls made so far (`read`, `write`, `partition_totals`, `migrate`; not `ping`), failed ones
    /// included.
    pub fn calls(&self) -> u32 {
        self.lock().calls
    }

    /// Makes every write of `user_id` come back as [`WriteOutcome::Refused`](super::WriteOutcome)
    /// (not transient) until [`Self::heal_user`], as a record the store cannot add to would; the other
    /// users of the same write are unaffected.
    pub fn poison_user(&self, user_id: &str) {
        self.lock().poisoned.insert(user_id.to_owned());
    }

    /// Undoes [`Self::poison_user`].
    pub fn heal_user(&self, user_id: &str) {
        self.lock().poisoned.remove(user_id);
    }

    /// One user's score, if the user has a record.
    pub fn score(&self, user_id: &str) -> Option<u64> {
        self.lock().records.get(user_id).map(|r| r.score)
    }

    /// One user's watermark, if the user has a record with one.
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
