//! A zombie owner (`docs/design.md` §5.2–§5.5), on every store: owner A holds a batch and stalls; its
//! lease expires; B takes over and applies that batch and later events of the same users; A wakes and
//! writes the store and commits. The store is unchanged by A (its compare-and-set misses and the re-read
//! filters its events), A's commit is refused by the fence and A steps down; totals stay exact. Two
//! stalls: before A's store read (it holds only stream entries) and between its store read and write.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use redis::AsyncCommands;
use scoreboard_shared::redis::keys::PartitionKeys;
use scoreboard_shared::shutdown::Shutdown;
use scoreboard_testkit::RedisServer;
use scoreboard_worker::partition::owner::OwnerError;
use scoreboard_worker::store::memory::MemoryStore;
use scoreboard_worker::store::{
    PartitionRead, StoreError, UserTotal, UserWrite, Watermark, WatermarkStore, WriteOutcome,
};
use tokio::sync::{Mutex, Notify};

use crate::helpers::*;

const P: u16 = 2;

/// Where the wrapped store stalls its first call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    BeforeRead,
    BeforeWrite,
}

/// A store that stalls one call until released, then behaves as the store it wraps.
#[derive(Debug)]
struct StallingStore {
    inner: Arc<dyn WatermarkStore>,
    stall: Stall,
    armed: Mutex<bool>,
    reached: Notify,
    release: Notify,
}

impl StallingStore {
    async fn pause_if(&self, at: Stall) {
        let mut armed = self.armed.lock().await;
        if *armed && at == self.stall {
            *armed = false;
            drop(armed);
            self.reached.notify_one();
            self.release.notified().await;
        }
    }
}

#[async_trait]
impl WatermarkStore for StallingStore {
    async fn read(&self, partition: u16, users: &[&str]) -> Result<PartitionRead, StoreError> {
        self.pause_if(Stall::BeforeRead).await;
        self.inner.read(partition, users).await
    }

    async fn write(
        &self,
        partition: u16,
        writes: &[UserWrite],
        hw_read: Option<Watermark>,
        hw: Watermark,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        self.pause_if(Stall::BeforeWrite).await;
        self.inner.write(partition, writes, hw_read, hw).await
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

async fn zombie_scenario(store: Arc<dyn WatermarkStore>, stall: Stall) {
    let server = RedisServer::start();
    let mut redis = redis_manager(&server.url());
    let config = worker_config("a", P, &[]);
    let users = users_in(1, P, "z", 3);
    let stalling = Arc::new(StallingStore {
        inner: store.clone(),
        stall,
        armed: Mutex::new(false),
        reached: Notify::new(),
        release: Notify::new(),
    });
    let stalling_dyn: Arc<dyn WatermarkStore> = stalling.clone();
    let mut a = owner(&server.url(), &stalling_dyn, &config, 1)
        .await
        .unwrap();

    let mut expected = std::collections::BTreeMap::new();
    for (i, user) in users.iter().enumerate() {
        xadd_event(&mut redis, P, user, None, i as u64 + 1).await;
        *expected.entry(user.clone()).or_insert(0) += i as u64 + 1;
    }
    *stalling.armed.lock().await = true;
    let zombie = tokio::spawn(async move {
        let outcome = a.step(&Shutdown::never()).await;
        (a, outcome)
    });
    tokio::time::timeout(Duration::from_secs(20), stalling.reached.notified())
        .await
        .expect("A reached its stall");

    // A's lease expires; B takes over, applies A's batch and later events of the same users.
    let _: () = redis.del(PartitionKeys::new(1).lease()).await.unwrap();
    let config_b = worker_config("b", P, &[]);
    let mut b = owner(&server.url(), &store, &config_b, 1).await.unwrap();
    for user in &users {
        xadd_event(&mut redis, P, user, None, 10).await;
        *expected.get_mut(user).unwrap() += 10;
    }
    drain(&mut b, Duration::from_secs(20)).await;
    assert_eq!(store_totals(store.as_ref(), P).await, expected);

    stalling.release.notify_one();
    let (_a, outcome) = tokio::time::timeout(Duration::from_secs(30), zombie)
        .await
        .expect("A finishes its step")
        .unwrap();
    assert!(
        matches!(outcome, Err(OwnerError::Fenced)),
        "A's commit is refused: {outcome:?}"
    );
    assert_eq!(
        store_totals(store.as_ref(), P).await,
        expected,
        "the store is unchanged by A"
    );
    assert_eq!(board(&mut redis, P).await, expected, "the set is B's");
    let cursor: String = redis.get(PartitionKeys::new(1).cursor()).await.unwrap();
    assert_eq!(cursor, b.cursor().to_string(), "A did not move the cursor");

    // B goes on.
    xadd_event(&mut redis, P, &users[0], None, 1).await;
    *expected.get_mut(&users[0]).unwrap() += 1;
    drain(&mut b, Duration::from_secs(20)).await;
    assert_eq!(store_totals(store.as_ref(), P).await, expected);
}

#[tokio::test]
async fn memory_a_zombie_stalled_before_its_store_read_changes_nothing() {
    zombie_scenario(Arc::new(MemoryStore::new()), Stall::BeforeRead).await;
}

#[tokio::test]
async fn memory_a_zombie_stalled_between_its_store_read_and_write_changes_nothing() {
    zombie_scenario(Arc::new(MemoryStore::new()), Stall::BeforeWrite).await;
}

#[tokio::test]
async fn mongo_a_zombie_stalled_before_its_store_read_changes_nothing() {
    let server = StoreUnderTest::mongo();
    zombie_scenario(server.connect().await, Stall::BeforeRead).await;
}

#[tokio::test]
async fn mongo_a_zombie_stalled_between_its_store_read_and_write_changes_nothing() {
    let server = StoreUnderTest::mongo();
    zombie_scenario(server.connect().await, Stall::BeforeWrite).await;
}

#[tokio::test]
async fn dynamodb_a_zombie_stalled_before_its_store_read_changes_nothing() {
    let server = StoreUnderTest::dynamodb();
    zombie_scenario(server.connect().await, Stall::BeforeRead).await;
}

#[tokio::test]
async fn dynamodb_a_zombie_stalled_between_its_store_read_and_write_changes_nothing() {
    let server = StoreUnderTest::dynamodb();
    zombie_scenario(server.connect().await, Stall::BeforeWrite).await;
}
