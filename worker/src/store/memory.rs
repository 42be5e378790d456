//! An in-memory [`ScoreStore`] for unit tests of worker logic (batching, dead letters, shutdown grace):
//! the same contract as the real adapters (each event id counts once, absolute totals returned), plus
//! switches that make the next calls fail the way a store outage (transient) or a refusal (not
//! transient, e.g. a deleted table) does.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use super::{ScoreStore, StoreError, UserDelta, UserTotal};

/// Totals, names and applied event ids, behind one lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, UserTotal>,
    applied: HashSet<String>,
    /// Calls of `apply_batch` still to fail.
    failures_left: u32,
    /// Whether those failures are [`StoreError::Unexpected`] rather than [`StoreError::Unavailable`].
    refusing: bool,
    /// `apply_batch` calls made, failed ones included.
    calls: u32,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `count` calls of [`ScoreStore::apply_batch`] and [`ScoreStore::ping`] fail as
    /// unavailable, changing nothing.
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

    /// `apply_batch` calls made so far, failed ones included.
    pub fn calls(&self) -> u32 {
        self.lock().calls
    }

    /// One user's total, if the user has one.
    pub fn total(&self, user_id: &str) -> Option<u64> {
        self.lock().users.get(user_id).map(|t| t.score)
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
}

#[async_trait]
impl ScoreStore for MemoryStore {
    async fn apply_batch(&self, batch: &[UserDelta]) -> Result<Vec<UserTotal>, StoreError> {
        let mut state = self.lock();
        state.calls += 1;
        state.take_failure()?;
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
