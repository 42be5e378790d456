//! Which partitions this worker owns (`docs/design.md` §5.2). Every quarter lease TTL the balancer
//! heartbeats into `{sb}:workers`, counts the live workers N, reads every partition's lease and aims at
//! a fair share of ⌈P / N⌉: it takes free partitions while below its share, takes a partition left free
//! for a whole scan whatever its share (a dead worker's partitions resume within one lease TTL plus a
//! scan), and above its share hands one partition back per scan so a new worker gets its share within a
//! few scans. Each owned partition runs in its own task on its own Redis connection (its own cluster
//! connection on a cluster), so a slow partition, or an owner blocked in `XREAD BLOCK`, never delays
//! the others. Reads across partitions go one command per partition, never one pipeline: on a cluster
//! the partitions live in different slots.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use scoreboard_shared::backoff::Backoff;
use scoreboard_shared::config::RedisConfig;
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::keys::{self, PartitionKeys};
use scoreboard_shared::shutdown::{Shutdown, ShutdownTrigger};
use tokio::task::JoinHandle;

use super::fan_out;
use super::owner::{OwnerConfig, OwnerError, PartitionOwner};
use super::scripts::PartitionScripts;
use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::lease::{Lease, LeaseScripts};
use crate::metrics;
use crate::store::WatermarkStore;

/// One running owner task and how to stop it.
#[derive(Debug)]
struct OwnedPartition {
    stop: ShutdownTrigger,
    task: JoinHandle<Result<(), WorkerError>>,
}

/// The partition leases of one worker process.
#[derive(Debug)]
pub struct Balancer {
    config: WorkerConfig,
    redis_config: RedisConfig,
    redis: RedisConn,
    store: Arc<dyn WatermarkStore>,
    scripts: PartitionScripts,
    leases: LeaseScripts,
    owned: BTreeMap<u16, OwnedPartition>,
    free_last_scan: HashSet<u16>,
}

impl Balancer {
    pub fn new(
        config: WorkerConfig,
        redis_config: RedisConfig,
        redis: RedisConn,
        store: Arc<dyn WatermarkStore>,
    ) -> Self {
        Self {
            scripts: PartitionScripts::new(config.leaderboard_size),
            leases: LeaseScripts::new(config.lease_ttl),
            config,
            redis_config,
            redis,
            store,
            owned: BTreeMap::new(),
            free_last_scan: HashSet::new(),
        }
    }

    /// How often leases are scanned: a quarter of the lease TTL.
    pub fn scan_interval(&self) -> Duration {
        self.config.lease_ttl / 4
    }

    /// The partitions this worker runs now.
    pub fn owned(&self) -> Vec<u16> {
        self.owned.keys().copied().collect()
    }

    /// Scans and rebalances until `shutdown`, then stops every owner (each finishes its batch in hand
    /// and releases its lease) and leaves the worker set.
    ///
    /// # Errors
    /// The first owner error that is not transient (a store refusal that is not per user): the caller
    /// exits non-zero.
    pub async fn run(mut self, mut shutdown: Shutdown) -> Result<(), WorkerError> {
        let mut backoff = Backoff::default();
        let result = loop {
            if shutdown.is_triggered() {
                break Ok(());
            }
            match self.scan().await {
                Ok(()) => backoff.reset(),
                Err(WorkerError::Redis(error)) => {
                    tracing::warn!(error = %error, "lease scan failed");
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next_delay()) => {},
                        () = shutdown.wait() => {},
                    }
                    continue;
                }
                Err(error) => break Err(error),
            }
            tokio::select! {
                () = tokio::time::sleep(self.scan_interval()) => {},
                () = shutdown.wait() => {},
            }
        };
        self.stop_all().await;
        result
    }

    /// One scan: reap finished owners, heartbeat, count live workers, take and hand back partitions.
    ///
    /// # Errors
    /// Redis failures (retried by [`Self::run`]); an owner that stopped on an error that is not transient.
    pub async fn scan(&mut self) -> Result<(), WorkerError> {
        self.reap().await?;
        let live = self.heartbeat().await?;
        let count = self.config.partitions.count;
        // One GET per partition: on a cluster the leases live in different slots.
        let holders: Vec<Option<String>> =
            fan_out::query_each(&self.redis, 0..count, |keys| fan_out::get(keys.lease())).await?;
        let share = usize::from(count).div_ceil(live.max(1));
        let mut free_now = HashSet::new();
        for (partition, holder) in (0..count).zip(holders) {
            if holder.is_some() || self.owned.contains_key(&partition) {
                continue;
            }
            let take = self.owned.len() < share || self.free_last_scan.contains(&partition);
            if !take {
                free_now.insert(partition);
                continue;
            }
            let keys = PartitionKeys::new(partition);
            let lease = self
                .leases
                .acquire(
                    &mut self.redis,
                    &keys.lease(),
                    &keys.epoch(),
                    &self.config.worker_id,
                )
                .await?;
            if let Some(lease) = lease {
                tracing::info!(partition, epoch = lease.epoch(), "partition acquired");
                self.spawn(keys, lease)?;
            }
        }
        self.free_last_scan = free_now;
        self.report_backlogs().await?;
        if self.owned.len() > share
            && let Some((&partition, owner)) = self.owned.iter().next_back()
        {
            tracing::info!(
                partition,
                share,
                live,
                "handing a partition back to balance the workers"
            );
            owner.stop.trigger();
        }
        Ok(())
    }

    /// Sets the backlog gauge of every owned partition (entries after the cursor: streams are trimmed to
    /// it), so a partition whose owner is stuck shows a growing backlog.
    async fn report_backlogs(&mut self) -> Result<(), WorkerError> {
        if self.owned.is_empty() {
            return Ok(());
        }
        let lengths: Vec<u64> =
            fan_out::query_each(&self.redis, self.owned.keys().copied(), |keys| {
                let mut xlen = redis::cmd("XLEN");
                xlen.arg(keys.updates());
                xlen
            })
            .await?;
        for (&partition, length) in self.owned.keys().zip(lengths) {
            metrics::partition_backlog(partition, length);
        }
        Ok(())
    }

    /// Registers this worker as live and returns how many workers are.
    async fn heartbeat(&mut self) -> Result<usize, WorkerError> {
        let now = unix_millis();
        let expired = now.saturating_sub(self.config.lease_ttl.as_millis() as u64);
        let (_, _, live): ((), (), usize) = redis::pipe()
            .zadd(keys::WORKERS, &self.config.worker_id, now)
            .zrembyscore(keys::WORKERS, "-inf", expired)
            .zcard(keys::WORKERS)
            .query_async(&mut self.redis)
            .await?;
        Ok(live)
    }

    fn spawn(&mut self, keys: PartitionKeys, lease: Lease) -> Result<(), WorkerError> {
        let partition = keys.partition();
        let redis = scoreboard_shared::redis::connect_lazy(&self.redis_config)?;
        let (stop, stopped) = Shutdown::new();
        let task = tokio::spawn(own(
            keys,
            lease,
            redis,
            self.store.clone(),
            self.scripts.clone(),
            self.leases.clone(),
            self.owner_config(),
            stopped,
        ));
        self.owned.insert(partition, OwnedPartition { stop, task });
        Ok(())
    }

    fn owner_config(&self) -> OwnerConfig {
        OwnerConfig {
            batch_size: self.config.batch_size,
            block: self.config.block,
            generation: self.config.generation,
            partitioner: self.config.partitions.partitioner(),
            min_replicas: self.config.min_replicas,
            wait_timeout: self.config.wait_timeout,
        }
    }

    /// Removes owners whose task ended; returns the first error that is not transient.
    async fn reap(&mut self) -> Result<(), WorkerError> {
        let finished: Vec<u16> = self
            .owned
            .iter()
            .filter(|(_, owner)| owner.task.is_finished())
            .map(|(&p, _)| p)
            .collect();
        for partition in finished {
            let Some(owner) = self.owned.remove(&partition) else {
                continue;
            };
            match owner.task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error),
                Err(join) => tracing::error!(partition, error = %join, "partition task panicked"),
            }
        }
        Ok(())
    }

    async fn stop_all(&mut self) {
        for owner in self.owned.values() {
            owner.stop.trigger();
        }
        for (partition, owner) in std::mem::take(&mut self.owned) {
            if let Ok(Err(error)) = owner.task.await {
                tracing::warn!(partition, error = %error, "partition owner stopped with an error");
            }
        }
        let _: redis::RedisResult<()> = redis::cmd("ZREM")
            .arg(keys::WORKERS)
            .arg(&self.config.worker_id)
            .query_async(&mut self.redis)
            .await;
    }
}

/// One owner task: start, step until stopped or fenced, release on a requested stop.
#[allow(clippy::too_many_arguments)]
async fn own(
    keys: PartitionKeys,
    lease: Lease,
    redis: RedisConn,
    store: Arc<dyn WatermarkStore>,
    scripts: PartitionScripts,
    leases: LeaseScripts,
    config: OwnerConfig,
    mut stop: Shutdown,
) -> Result<(), WorkerError> {
    let partition = keys.partition();
    metrics::partition_owned(partition, true);
    let result = own_until_stopped(
        keys, lease, redis, store, scripts, leases, config, &mut stop,
    )
    .await;
    metrics::partition_owned(partition, false);
    result
}

#[allow(clippy::too_many_arguments)]
async fn own_until_stopped(
    keys: PartitionKeys,
    lease: Lease,
    redis: RedisConn,
    store: Arc<dyn WatermarkStore>,
    scripts: PartitionScripts,
    leases: LeaseScripts,
    config: OwnerConfig,
    stop: &mut Shutdown,
) -> Result<(), WorkerError> {
    let partition = keys.partition();
    let mut backoff = Backoff::default();
    let mut owner = loop {
        let attempt = PartitionOwner::start(
            keys.clone(),
            lease.clone(),
            redis.clone(),
            store.clone(),
            scripts.clone(),
            leases.clone(),
            config.clone(),
        )
        .await;
        match attempt {
            Ok(owner) => break owner,
            Err(OwnerError::Fenced) => return Ok(()),
            Err(error) if error.is_transient() && !stop.is_triggered() => {
                tracing::warn!(partition, error = %error, "partition start failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff.next_delay()) => {},
                    () = stop.wait() => {},
                }
            }
            Err(OwnerError::Worker(error)) if !error.is_transient() => return Err(error),
            Err(_) => {
                let _ = leases.release(&mut redis.clone(), &lease).await;
                return Ok(());
            }
        }
    };
    backoff.reset();
    while !stop.is_triggered() {
        match owner.step(stop).await {
            Ok(_) => backoff.reset(),
            Err(OwnerError::Fenced) => {
                tracing::warn!(partition, "partition lease lost: stepping down");
                return Ok(());
            }
            Err(OwnerError::Worker(WorkerError::Abandoned)) => break,
            Err(OwnerError::Worker(error)) if !error.is_transient() => {
                tracing::error!(partition, error = %error,
                    "a store error that retrying cannot fix: the worker stops; the batch stays after the cursor");
                return Err(error);
            }
            Err(error) => {
                metrics::retry("read");
                let delay = backoff.next_delay();
                tracing::warn!(partition, error = %error, delay_ms = delay.as_millis() as u64, "step failed");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {},
                    () = stop.wait() => {},
                }
            }
        }
    }
    owner.release().await;
    Ok(())
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
