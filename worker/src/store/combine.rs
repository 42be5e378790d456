//! Group commit across partitions: a [`WatermarkStore`] that sends the writes of the owners of one
//! worker process to its inner store together. An owner's write goes out at once while fewer than
//! `in_flight` combined calls are out; otherwise it waits, and every write that queued meanwhile goes
//! out in the next call ([`WatermarkStore::write_many`]: for MongoDB one unordered `update`). A quiet
//! worker adds no delay; a busy one sends one command for many partitions' batches instead of one each,
//! which saves the store its per-command cost (the write concern wait, and on nx-27017 about 2 ms of
//! Python per command). Each partition's statements stay its own compare-and-sets, so a refused user
//! or a missed `hw` is still per partition; reads, rebuild scans and the rest pass through. The price is
//! bounded: a partition's write waits for at most the one call out (other partitions' batches), and a
//! partition in retry backoff holds no call slot while it waits.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{
    PartitionRead, PartitionWrite, StoreError, UserTotal, UserWrite, Watermark, WatermarkStore,
    WriteOutcome,
};

/// Combined MongoDB calls out at once per worker process: one, since a batch that waits for it goes out
/// with all the others queued meanwhile (nx-27017 runs commands one at a time anyway).
pub const MONGODB_WRITES_IN_FLIGHT: usize = 1;

/// A combined call takes no more batches once it carries this many user writes (so, with batches of at
/// most `WORKER_BATCH_SIZE` ≤ 10,000 entries, a command stays below MongoDB's 100,000 statements).
const MAX_COMBINED_WRITES: usize = 5_000;

type Reply = oneshot::Sender<Result<Vec<WriteOutcome>, StoreError>>;

/// Combines concurrent partition writes (see the module docs).
#[derive(Debug)]
pub struct CombiningStore {
    inner: Arc<dyn WatermarkStore>,
    queue: mpsc::UnboundedSender<(PartitionWrite, Reply)>,
}

impl CombiningStore {
    /// Wraps `inner`, with at most `in_flight` combined calls out at once. Spawns the task that
    /// combines; it ends when the store is dropped.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn new(inner: Arc<dyn WatermarkStore>, in_flight: usize) -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        tokio::spawn(combine(inner.clone(), queued, in_flight.max(1)));
        Self { inner, queue }
    }
}

/// Takes the first queued write, waits for a free call slot, adds every write queued meanwhile and
/// sends them as one call; replies to each owner with its own result.
async fn combine(
    inner: Arc<dyn WatermarkStore>,
    mut queued: mpsc::UnboundedReceiver<(PartitionWrite, Reply)>,
    in_flight: usize,
) {
    let slots = Arc::new(Semaphore::new(in_flight));
    while let Some(first) = queued.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut writes = first.0.writes.len();
        let mut group = vec![first];
        while writes < MAX_COMBINED_WRITES
            && let Ok(next) = queued.try_recv()
        {
            writes += next.0.writes.len();
            group.push(next);
        }
        crate::metrics::write_group(group.len());
        let inner = inner.clone();
        tokio::spawn(async move {
            let (batches, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
            let results = inner.write_many(&batches).await;
            for (reply, result) in replies.into_iter().zip(results) {
                // An owner that stopped waiting (shut down) no longer needs its answer.
                let _ = reply.send(result);
            }
            drop(slot);
        });
    }
}

#[async_trait]
impl WatermarkStore for CombiningStore {
    async fn read(&self, partition: u16, users: &[&str]) -> Result<PartitionRead, StoreError> {
        self.inner.read(partition, users).await
    }

    async fn write(
        &self,
        partition: u16,
        writes: &[UserWrite],
        hw_read: Option<Watermark>,
        hw: Watermark,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let batch = PartitionWrite {
            partition,
            writes: writes.to_vec(),
            hw_read,
            hw,
        };
        let lost = || StoreError::unavailable("the store's write combiner stopped");
        self.queue.send((batch, reply)).map_err(|_| lost())?;
        // A combined call that failed, or one whose reply went missing, leaves each user's write atomic
        // either way: the owner re-reads and retries.
        answer.await.map_err(|_| lost())?
    }

    async fn write_many(
        &self,
        batches: &[PartitionWrite],
    ) -> Vec<Result<Vec<WriteOutcome>, StoreError>> {
        self.inner.write_many(batches).await
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::store::memory::MemoryStore;

    /// Records the partitions of each `write_many` call and holds every call until released.
    #[derive(Debug)]
    struct Recording {
        inner: MemoryStore,
        calls: Mutex<Vec<Vec<u16>>>,
        gate: Semaphore,
        fail: bool,
    }

    #[async_trait]
    impl WatermarkStore for Recording {
        async fn read(&self, partition: u16, users: &[&str]) -> Result<PartitionRead, StoreError> {
            self.inner.read(partition, users).await
        }

        async fn write(
            &self,
            _: u16,
            _: &[UserWrite],
            _: Option<Watermark>,
            _: Watermark,
        ) -> Result<Vec<WriteOutcome>, StoreError> {
            unreachable!("the combiner only calls write_many")
        }

        async fn write_many(
            &self,
            batches: &[PartitionWrite],
        ) -> Vec<Result<Vec<WriteOutcome>, StoreError>> {
            self.calls
                .lock()
                .unwrap()
                .push(batches.iter().map(|b| b.partition).collect());
            self.gate.acquire().await.unwrap().forget();
            if self.fail {
                let error = StoreError::unavailable("down");
                return batches.iter().map(|_| Err(error.duplicate())).collect();
            }
            self.inner.write_many(batches).await
        }

        fn partition_totals(&self, p: u16) -> BoxStream<'_, Result<UserTotal, StoreError>> {
            self.inner.partition_totals(p)
        }

        async fn ping(&self) -> Result<(), StoreError> {
            Ok(())
        }

        async fn migrate(&self, _: u16) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    fn recording(fail: bool) -> Arc<Recording> {
        Arc::new(Recording {
            inner: MemoryStore::new(),
            calls: Mutex::new(Vec::new()),
            gate: Semaphore::new(0),
            fail,
        })
    }

    fn one_write(user: &str, increment: u64) -> Vec<UserWrite> {
        vec![UserWrite {
            user_id: user.to_owned(),
            expected_wm: None,
            expected_score: 0,
            increment,
            display_name: None,
            new_wm: "1-5-0".parse().unwrap(),
        }]
    }

    async fn calls_seen(store: &Recording, count: usize) -> Vec<Vec<u16>> {
        for _ in 0..500 {
            let calls = store.calls.lock().unwrap().clone();
            if calls.len() >= count {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("{count} combined calls never came");
    }

    #[tokio::test]
    async fn writes_queued_behind_a_call_in_flight_go_out_together_and_each_gets_its_own_outcome() {
        let inner = recording(false);
        let store = Arc::new(CombiningStore::new(inner.clone(), 1));
        let hw: Watermark = "1-5-0".parse().unwrap();
        let write = |partition: u16, user: &'static str, increment: u64| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(partition, &one_write(user, increment), None, hw)
                    .await
            })
        };
        let first = write(0, "a", 1);
        assert_eq!(calls_seen(&inner, 1).await, [vec![0]]);
        // The one call slot is taken: these queue, then leave as one call.
        let second = write(1, "b", 2);
        let third = write(2, "c", 3);
        tokio::time::sleep(Duration::from_millis(20)).await;
        inner.gate.add_permits(2);
        let calls = calls_seen(&inner, 2).await;
        assert_eq!(calls, [vec![0], vec![1, 2]]);
        for (task, score) in [(first, 1), (second, 2), (third, 3)] {
            let outcomes = task.await.unwrap().unwrap();
            assert!(
                matches!(outcomes[..], [WriteOutcome::Applied { score: s }] if s == score),
                "{outcomes:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_failed_combined_call_fails_every_write_it_carried_with_the_same_kind() {
        let inner = recording(true);
        let store = CombiningStore::new(inner.clone(), 2);
        inner.gate.add_permits(1);
        let error = store
            .write(3, &one_write("a", 1), None, "1-5-0".parse().unwrap())
            .await
            .unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert_eq!(error.message(), "down");
    }
}
