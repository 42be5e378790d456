//! A [`WatermarkStore`] wrapper that counts what the worker asks of its store: batch reads and writes
//! (the port's round trips), the start-up reads apart, batches (one new `(partition, hw)` per batch:
//! a retry after a compare-and-set miss writes the same `hw` again) and the time spent waiting on the
//! store. It changes nothing it forwards.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::BoxStream;
use scoreboard_worker::store::{
    PartitionRead, StoreError, UserTotal, UserWrite, Watermark, WatermarkStore, WriteOutcome,
};

/// The counters, shared with the benchmark.
#[derive(Debug, Default)]
pub struct StoreCounts {
    /// `read` calls with users (one per apply round).
    pub reads: AtomicU64,
    /// `read` calls without users (an owner's start-up `hw` check).
    pub startup_reads: AtomicU64,
    pub writes: AtomicU64,
    pub batches: AtomicU64,
    /// Time inside batch `read`s and inside `write`s, summed over concurrent owners.
    pub read_nanos: AtomicU64,
    pub write_nanos: AtomicU64,
    last_hw: Mutex<HashMap<u16, Watermark>>,
}

impl StoreCounts {
    /// Batch round trips (reads with users + writes).
    pub fn round_trips(&self) -> u64 {
        self.reads.load(Ordering::Relaxed) + self.writes.load(Ordering::Relaxed)
    }

    /// Time waiting on batch reads and on writes.
    pub fn busy(&self) -> (Duration, Duration) {
        (
            Duration::from_nanos(self.read_nanos.load(Ordering::Relaxed)),
            Duration::from_nanos(self.write_nanos.load(Ordering::Relaxed)),
        )
    }
}

/// Counts and forwards to `inner`.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn WatermarkStore>,
    counts: Arc<StoreCounts>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn WatermarkStore>) -> (Self, Arc<StoreCounts>) {
        let counts = Arc::new(StoreCounts::default());
        (
            Self {
                inner,
                counts: counts.clone(),
            },
            counts,
        )
    }
}

#[async_trait]
impl WatermarkStore for CountingStore {
    async fn read(&self, partition: u16, users: &[&str]) -> Result<PartitionRead, StoreError> {
        let started = Instant::now();
        let read = self.inner.read(partition, users).await;
        if users.is_empty() {
            self.counts.startup_reads.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts.reads.fetch_add(1, Ordering::Relaxed);
            add_since(&self.counts.read_nanos, started);
        }
        read
    }

    async fn write(
        &self,
        partition: u16,
        writes: &[UserWrite],
        hw_read: Option<Watermark>,
        hw: Watermark,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let started = Instant::now();
        let outcome = self.inner.write(partition, writes, hw_read, hw).await;
        add_since(&self.counts.write_nanos, started);
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
        let new_batch = {
            let mut last = self
                .counts
                .last_hw
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            last.insert(partition, hw) != Some(hw)
        };
        if new_batch {
            self.counts.batches.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    fn partition_totals(&self, partition: u16) -> BoxStream<'_, Result<UserTotal, StoreError>> {
        self.inner.partition_totals(partition)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn migrate(&self, partitions: u16) -> Result<u64, StoreError> {
        self.inner.migrate(partitions).await
    }
}

fn add_since(total: &AtomicU64, since: Instant) {
    total.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
}
