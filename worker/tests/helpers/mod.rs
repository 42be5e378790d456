//! Shared arrangements: the store under test, a Redis per test (standalone or a cluster), partition owners built step by step
//! (in process) or whole workers (the real binary as a child process), raw stream producers and the
//! real update handler as producer, and readers of the store, the partition sets and the global top.

#![allow(dead_code)]

mod fleet;
mod load;
mod producer;
mod redis_under_test;
mod store_under_test;
mod subcommand;
mod worker_process;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use redis::AsyncCommands;
use scoreboard_shared::config::{Env, RedisConfig};
use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::keys::{self, PartitionKeys};
use scoreboard_shared::shutdown::Shutdown;
use scoreboard_shared::snapshot::Snapshot;
use scoreboard_worker::config::WorkerConfig;
use scoreboard_worker::lease::LeaseScripts;
use scoreboard_worker::partition::owner::{OwnerConfig, PartitionOwner, StepOutcome};
use scoreboard_worker::partition::scripts::PartitionScripts;
use scoreboard_worker::store::{UserTotal, WatermarkStore};

pub use fleet::{
    cursor, durable_redis, fill, held_by, lease_holders, lease_values, merger_holder, worker_env,
};
pub use load::{Producers, assert_exact_and_in_order, seeded, zipf_workload};
pub use producer::{Accepted, UpdateProducer, xadd_event, xadd_raw};
pub use redis_under_test::{RedisUnderTest, assert_partitions_on_every_master, partition_masters};
pub use store_under_test::StoreUnderTest;
pub use subcommand::{SubcommandRun, run_subcommand};
pub use worker_process::{WorkerProcess, env_pairs};

/// A self-reconnecting Redis connection with timeouts that tolerate blocking reads.
pub fn redis_manager(url: &str) -> RedisConn {
    redis_manager_for(url, false)
}

/// As [`redis_manager`], to standalone Redis or (with `cluster`) to the cluster whose seeds `url` lists.
pub fn redis_manager_for(url: &str, cluster: bool) -> RedisConn {
    scoreboard_shared::redis::connect_lazy(&redis_config_for(url, cluster)).unwrap()
}

/// The Redis settings tests connect with: standalone `url`, generous response timeout.
pub fn redis_config(url: &str) -> RedisConfig {
    redis_config_for(url, false)
}

/// As [`redis_config`], with `REDIS_CLUSTER` set to `cluster`.
pub fn redis_config_for(url: &str, cluster: bool) -> RedisConfig {
    let env = Env::from_pairs([
        ("REDIS_URL", url),
        ("REDIS_CLUSTER", if cluster { "true" } else { "false" }),
        ("REDIS_RESPONSE_TIMEOUT_MS", "10000"),
        ("REDIS_CONNECT_TIMEOUT_MS", "2000"),
    ]);
    RedisConfig::from_env(&env).unwrap()
}

/// Worker settings for tests: short block, a 10 s lease (a step on a loaded machine, DynamoDB Local
/// above all, can outlast a short one; tests of expiry pass their own), `partitions` partitions, plus
/// `extra` overrides.
pub fn worker_config(worker_id: &str, partitions: u16, extra: &[(&str, &str)]) -> WorkerConfig {
    let partitions = partitions.to_string();
    let mut pairs: Vec<(String, String)> = [
        ("WORKER_ID", worker_id),
        ("PARTITIONS", partitions.as_str()),
        ("WORKER_BATCH_SIZE", "500"),
        ("WORKER_BLOCK_MS", "50"),
        ("LEASE_TTL_MS", "10000"),
        ("LEADERBOARD_SIZE", "10"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    WorkerConfig::from_env(&Env::from_pairs(pairs)).unwrap()
}

/// Acquires partition `partition`'s lease as `config.worker_id` and starts its owner (fencing the
/// stream and building the cache); `None` when another holder has the lease.
pub async fn owner(
    redis_url: &str,
    store: &Arc<dyn WatermarkStore>,
    config: &WorkerConfig,
    partition: u16,
) -> Option<PartitionOwner> {
    let mut redis = redis_manager(redis_url);
    let keys = PartitionKeys::new(partition);
    let leases = LeaseScripts::new(config.lease_ttl);
    let lease = leases
        .acquire(&mut redis, &keys.lease(), &keys.epoch(), &config.worker_id)
        .await
        .expect("acquire")?;
    let owner = PartitionOwner::start(
        keys,
        lease,
        redis,
        store.clone(),
        PartitionScripts::new(config.leaderboard_size),
        leases,
        owner_config(config),
    )
    .await
    .expect("owner starts");
    Some(owner)
}

pub fn owner_config(config: &WorkerConfig) -> OwnerConfig {
    OwnerConfig {
        batch_size: config.batch_size,
        block: config.block,
        generation: config.generation,
        partitioner: config.partitions.partitioner(),
        min_replicas: config.min_replicas,
        wait_timeout: config.wait_timeout,
    }
}

/// Steps until two consecutive idle steps (bounded by `deadline`); returns the events applied.
pub async fn drain(owner: &mut PartitionOwner, deadline: Duration) -> usize {
    let until = Instant::now() + deadline;
    let (mut applied, mut idle) = (0, 0);
    while idle < 2 {
        assert!(
            Instant::now() < until,
            "partition {} did not drain within {deadline:?}",
            owner.partition()
        );
        match owner.step(&Shutdown::never()).await.expect("step") {
            StepOutcome::Idle => idle += 1,
            StepOutcome::Processed { applied: n, .. } => {
                applied += n;
                idle = 0;
            }
        }
    }
    applied
}

/// Every total in the store over `partitions` partitions, by user.
pub async fn store_totals(store: &dyn WatermarkStore, partitions: u16) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for partition in Partitioner::new(partitions).all() {
        let totals: Vec<UserTotal> = store
            .partition_totals(partition)
            .try_collect()
            .await
            .expect("read store");
        for total in totals {
            assert_eq!(
                Partitioner::new(partitions).partition_of(&total.user_id),
                partition,
                "{} listed in the wrong partition",
                total.user_id
            );
            all.insert(total.user_id, total.score);
        }
    }
    all
}

/// The top `n` of `totals` by the ties rule (score descending, then user id ascending).
pub fn top_of(totals: &BTreeMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = totals.iter().map(|(u, s)| (u.clone(), *s)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(n);
    all
}

/// Every member of every partition's `{sb:p}:lb` with its score.
pub async fn board(redis: &mut RedisConn, partitions: u16) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for partition in Partitioner::new(partitions).all() {
        let rows: Vec<(String, f64)> = redis
            .zrange_withscores(PartitionKeys::new(partition).leaderboard(), 0, -1)
            .await
            .expect("read board");
        all.extend(rows.into_iter().map(|(u, s)| (u, s as u64)));
    }
    all
}

/// `{sb}:top`, parsed as the shared snapshot type.
pub async fn snapshot(redis: &mut RedisConn) -> Option<Snapshot> {
    let raw: Option<String> = redis.get(keys::TOP).await.expect("read top");
    raw.map(|json| serde_json::from_str(&json).expect("top is a Snapshot"))
}

/// A partition's `{sb:p}:top` as JSON.
pub async fn partition_top(redis: &mut RedisConn, partition: u16) -> Option<serde_json::Value> {
    let raw: Option<String> = redis
        .get(PartitionKeys::new(partition).top())
        .await
        .expect("read partition top");
    raw.map(|json| serde_json::from_str(&json).expect("partition top is JSON"))
}

/// The snapshot's rows as (user, score).
pub fn rows(snapshot: &Snapshot) -> Vec<(String, u64)> {
    snapshot
        .entries
        .iter()
        .map(|e| (e.user_id.clone(), e.score))
        .collect()
}

/// Entries not yet committed over every partition (streams are trimmed to their cursors).
pub async fn backlog(redis: &mut RedisConn, partitions: u16) -> usize {
    let mut total = 0;
    for partition in Partitioner::new(partitions).all() {
        let keys = PartitionKeys::new(partition);
        let cursor: Option<String> = redis.get(keys.cursor()).await.expect("cursor");
        let start = cursor.map_or_else(|| "-".to_owned(), |c| format!("({c}"));
        let entries: redis::streams::StreamRangeReply = redis
            .xrange(keys.updates(), start, "+")
            .await
            .expect("xrange");
        total += entries.ids.len();
    }
    total
}

/// `count` user ids that all belong to partition `partition` of `partitions`.
pub fn users_in(partition: u16, partitions: u16, prefix: &str, count: usize) -> Vec<String> {
    let partitioner = Partitioner::new(partitions);
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|u| partitioner.partition_of(u) == partition)
        .take(count)
        .collect()
}

/// Polls `check` every 50 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < until,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
