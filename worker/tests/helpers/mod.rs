//! Shared arrangements: the store under test, a Redis per test, workers built from env pairs (in process,
//! or the real binary as a child process), a raw stream producer and the real update handler as
//! producer, and readers of the store and the board.

#![allow(dead_code)]

mod producer;
mod store_under_test;
mod worker_process;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use scoreboard_shared::config::{Env, RedisConfig};
use scoreboard_shared::redis::keys;
use scoreboard_shared::shutdown::Shutdown;
use scoreboard_shared::snapshot::Snapshot;
use scoreboard_worker::config::WorkerConfig;
use scoreboard_worker::store::{ScoreStore, UserTotal};
use scoreboard_worker::{StepOutcome, Worker};

pub use producer::{Accepted, UpdateProducer, xadd_event, xadd_raw};
pub use store_under_test::StoreUnderTest;
pub use worker_process::{WorkerProcess, env_pairs};

/// A self-reconnecting Redis connection with timeouts that tolerate blocking reads.
pub fn redis_manager(url: &str) -> ConnectionManager {
    let env = Env::from_pairs([
        ("REDIS_URL", url),
        ("REDIS_RESPONSE_TIMEOUT_MS", "10000"),
        ("REDIS_CONNECT_TIMEOUT_MS", "2000"),
    ]);
    scoreboard_shared::redis::connect_lazy(&RedisConfig::from_env(&env).unwrap()).unwrap()
}

/// Worker settings for tests: short block and claim idle time, plus `extra` overrides.
pub fn worker_config(consumer: &str, extra: &[(&str, &str)]) -> WorkerConfig {
    let mut pairs: Vec<(String, String)> = [
        ("WORKER_CONSUMER", consumer),
        ("WORKER_BATCH_SIZE", "500"),
        ("WORKER_BLOCK_MS", "50"),
        ("CLAIM_IDLE_MS", "30000"),
        ("MAX_DELIVERIES", "5"),
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

pub async fn worker(
    redis: &ConnectionManager,
    store: &Arc<dyn ScoreStore>,
    config: WorkerConfig,
) -> Worker {
    Worker::new(redis.clone(), store.clone(), config)
        .await
        .expect("worker starts")
}

/// Steps until two consecutive idle steps (bounded by `deadline`); returns the events applied.
pub async fn drain(worker: &mut Worker, deadline: Duration) -> usize {
    let until = Instant::now() + deadline;
    let (mut applied, mut idle) = (0, 0);
    while idle < 2 {
        assert!(
            Instant::now() < until,
            "worker did not drain within {deadline:?}"
        );
        match worker.step(&Shutdown::never()).await.expect("step") {
            StepOutcome::Idle => idle += 1,
            StepOutcome::Processed { applied: n, .. } => {
                applied += n;
                idle = 0;
            }
        }
    }
    applied
}

/// Every total in the store, by user.
pub async fn store_totals(store: &dyn ScoreStore) -> BTreeMap<String, u64> {
    use futures::TryStreamExt;
    let totals: Vec<UserTotal> = store.all_totals().try_collect().await.expect("read store");
    totals.into_iter().map(|t| (t.user_id, t.score)).collect()
}

/// The store's top `n` by the ties rule (score descending, then user id ascending).
pub async fn store_top(store: &dyn ScoreStore, n: usize) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = store_totals(store).await.into_iter().collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(n);
    all
}

/// Every member of `{sb}:lb` with its score.
pub async fn board(redis: &mut ConnectionManager) -> BTreeMap<String, u64> {
    let rows: Vec<(String, f64)> = redis
        .zrange_withscores(keys::LEADERBOARD, 0, -1)
        .await
        .expect("read board");
    rows.into_iter().map(|(u, s)| (u, s as u64)).collect()
}

/// `{sb}:top`, parsed as the shared snapshot type.
pub async fn snapshot(redis: &mut ConnectionManager) -> Option<Snapshot> {
    let raw: Option<String> = redis.get(keys::TOP).await.expect("read top");
    raw.map(|json| serde_json::from_str(&json).expect("top is a Snapshot"))
}

/// The snapshot's rows as (user, score).
pub fn rows(snapshot: &Snapshot) -> Vec<(String, u64)> {
    snapshot
        .entries
        .iter()
        .map(|e| (e.user_id.clone(), e.score))
        .collect()
}

/// Entries delivered but not acked (0 before a worker has created the consumer group, which a slow
/// store connection at start-up can delay past the first chaos kill).
pub async fn pending(redis: &mut ConnectionManager) -> usize {
    match scoreboard_worker::pending_summary(redis).await {
        Ok((count, _)) => count,
        Err(e) if e.code() == Some("NOGROUP") => 0,
        Err(e) => panic!("xpending: {e}"),
    }
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
