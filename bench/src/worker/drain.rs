//! The batched drain: worker "processes" run in this process as tokio tasks, each one [`Balancer`] with
//! its own `WORKER_ID` and one [`Merger`] (what `scoreboard-worker run` starts, minus the HTTP port),
//! on a pre-filled set of partition streams, until every partition's committed cursor reaches its last
//! entry. Progress and lag come from polling the cursors (`{sb:p}:cursor`, which only a fenced commit
//! moves): an entry counts as done at the first poll that sees the cursor at or past it.
//!
//! Both workers are registered in `{sb}:workers` before they start, so each takes its fair share on its
//! first scan instead of one taking every partition and handing them back one per scan.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use scoreboard_shared::config::RedisConfig;
use scoreboard_shared::partition::StreamId;
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::connect_lazy;
use scoreboard_shared::redis::keys::{self, PartitionKeys};
use scoreboard_shared::shutdown::Shutdown;
use scoreboard_worker::config::{Env, WorkerConfig};
use scoreboard_worker::merger::{Merger, MergerConfig};
use scoreboard_worker::partition::balancer::Balancer;
use scoreboard_worker::store::WatermarkStore;

use super::load::{Prefilled, now_ms};
use super::split::{CpuClock, RedisStats};

/// How often the cursors are polled (the resolution of the lag and of the end of the drain).
const POLL: Duration = Duration::from_millis(5);
/// How long the workers get to hand their partitions back after the drain.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// One batched drain's shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub partitions: u16,
    pub workers: usize,
    pub batch: usize,
}

/// What one batched drain measured.
#[derive(Debug)]
pub struct Drained {
    pub elapsed: Duration,
    /// Per event: commit time − max(entry ts, drain start), in ms.
    pub lag: Histogram<u64>,
    pub redis: RedisStats,
    /// CPU time of this process (workers, drivers, the poller) during the drain.
    pub bench_cpu: Option<Duration>,
}

/// Drains `filled` with `shape.workers` in-process workers over `store`.
///
/// # Errors
/// When Redis fails, a worker stops on an error, or the drain outlasts `timeout`.
pub async fn drain(
    redis_config: &RedisConfig,
    store: Arc<dyn WatermarkStore>,
    filled: &Prefilled,
    shape: Shape,
    timeout: Duration,
) -> anyhow::Result<Drained> {
    let mut control = connect_lazy(redis_config)?;
    let ids: Vec<String> = (0..shape.workers).map(|i| format!("bench-w{i}")).collect();
    let mut register = redis::pipe();
    for id in &ids {
        register.zadd(keys::WORKERS, id, now_ms()).ignore();
    }
    let () = register.query_async(&mut control).await?;
    let stats_before = RedisStats::read(&mut control).await?;
    let cpu = CpuClock::start();

    let (stop, shutdown) = Shutdown::new();
    let started = Instant::now();
    let start_ms = now_ms();
    let mut balancers = Vec::new();
    let mut mergers = Vec::new();
    for id in &ids {
        let config = worker_config(id, shape)?;
        let balancer = Balancer::new(
            config.clone(),
            redis_config.clone(),
            connect_lazy(redis_config)?,
            store.clone(),
        );
        balancers.push(tokio::spawn(balancer.run(shutdown.clone())));
        let merger = Merger::new(
            MergerConfig {
                partitions: shape.partitions,
                board_size: config.leaderboard_size,
                worker_id: config.worker_id.clone(),
                lease_ttl: config.lease_ttl,
                merge_interval: config.merge_interval,
                merge_poll: config.merge_poll,
            },
            connect_lazy(redis_config)?,
            redis_config.clone(),
        );
        mergers.push(tokio::spawn(merger.run(shutdown.clone())));
    }

    let progress = poll_until_drained(
        &mut control,
        filled,
        shape,
        start_ms,
        started,
        timeout,
        &balancers,
    )
    .await;
    let elapsed = started.elapsed();
    let bench_cpu = cpu.elapsed();
    let stats = RedisStats::read(&mut control).await?.since(&stats_before);
    stop.trigger();
    let stopped = tokio::time::timeout(STOP_WAIT, async {
        for balancer in balancers {
            balancer.await??;
        }
        for merger in mergers {
            merger.await?;
        }
        anyhow::Ok(())
    })
    .await;
    let lag = progress?;
    stopped
        .context("the workers did not stop within 30 s")?
        .context("a worker stopped on an error")?;
    Ok(Drained {
        elapsed,
        lag,
        redis: stats,
        bench_cpu,
    })
}

fn worker_config(id: &str, shape: Shape) -> anyhow::Result<WorkerConfig> {
    let env = Env::from_pairs([
        ("WORKER_ID", id.to_owned()),
        ("PARTITIONS", shape.partitions.to_string()),
        ("WORKER_BATCH_SIZE", shape.batch.to_string()),
        ("WORKER_BLOCK_MS", "100".to_owned()),
        ("METRICS_ADDR", "127.0.0.1:0".to_owned()),
    ]);
    Ok(WorkerConfig::from_env(&env)?)
}

/// Polls every partition's cursor until all reach their last entry; returns the lag histogram.
async fn poll_until_drained(
    control: &mut RedisConn,
    filled: &Prefilled,
    shape: Shape,
    start_ms: u64,
    started: Instant,
    timeout: Duration,
    balancers: &[tokio::task::JoinHandle<Result<(), scoreboard_worker::WorkerError>>],
) -> anyhow::Result<Histogram<u64>> {
    let mut lag = Histogram::<u64>::new(3)?;
    let mut next = vec![0usize; usize::from(shape.partitions)];
    let mut done = 0;
    while done < filled.events {
        anyhow::ensure!(
            started.elapsed() < timeout,
            "drain not finished after {}s: {done} of {} events committed",
            timeout.as_secs(),
            filled.events
        );
        anyhow::ensure!(
            balancers.iter().all(|b| !b.is_finished()),
            "a worker stopped during the drain"
        );
        let mut pipe = redis::pipe();
        for partition in 0..shape.partitions {
            pipe.get(PartitionKeys::new(partition).cursor());
        }
        let cursors: Vec<Option<String>> = pipe.query_async(control).await?;
        let now = now_ms();
        for (p, cursor) in cursors.into_iter().enumerate() {
            let Some(cursor) = cursor.and_then(|c| c.parse::<StreamId>().ok()) else {
                continue;
            };
            let entries = &filled.partitions[p];
            while let Some(&(id, ts)) = entries.get(next[p]) {
                if id > cursor {
                    break;
                }
                lag.record(now.saturating_sub(ts.max(start_ms)))?;
                next[p] += 1;
                done += 1;
            }
        }
        if done < filled.events {
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(lag)
}
