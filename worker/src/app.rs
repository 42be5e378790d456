//! Wiring for the binary: configuration from the environment, the store connection and its start-up
//! check (fail fast: a store that refuses stops the binary at once, an unreachable one after
//! `STORE_CONNECT_TIMEOUT_SECS`, both with a message naming the variable to fix), the Redis checks
//! (`maxmemory-policy noeviction`), the HTTP port, the partition balancer and the merger until
//! SIGTERM/Ctrl-C or a store error that retrying cannot fix, and the subcommands `rebuild`, `migrate`
//! and `dlq list|replay`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use scoreboard_shared::backoff::Backoff;
use scoreboard_shared::config::RedisConfig;
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::keys::PartitionKeys;
use scoreboard_shared::shutdown::Shutdown;

use crate::config::{Env, StoreConfig, WorkerConfig};
use crate::merger::{Merger, MergerConfig};
use crate::partition::balancer::Balancer;
use crate::store::{self, StoreError, WatermarkStore};
use crate::{dlq, http};

/// Everything built from the environment.
#[derive(Debug)]
pub struct Settings {
    pub redis: RedisConfig,
    pub store: StoreConfig,
    pub worker: WorkerConfig,
}

impl Settings {
    /// Reads the configuration.
    ///
    /// # Errors
    /// The first invalid or missing value.
    pub fn from_env(env: &Env) -> anyhow::Result<Self> {
        let worker = WorkerConfig::from_env(env)?;
        let store = StoreConfig::from_env(env)?;
        let mut redis = RedisConfig::from_env(env)?;
        // A blocking XREAD must not hit the response timeout.
        redis.response_timeout = redis
            .response_timeout
            .max(worker.block + Duration::from_secs(2));
        Ok(Self {
            redis,
            store,
            worker,
        })
    }
}

/// What the binary was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Own partitions and merge until SIGTERM / Ctrl-C (the default).
    Run,
    /// Mark every partition's cache for rebuilding from the store, and wait for the owners to do it.
    Rebuild,
    /// Migrate v1 store records in place (see `docs/operations.md`).
    Migrate,
    /// Print every dead letter as one JSON object per line.
    DlqList,
    /// Replay every replayable dead letter through the update path.
    DlqReplay,
}

const USAGE: &str = "usage: scoreboard-worker [run|rebuild|migrate|dlq list|dlq replay]";

impl Command {
    /// Parses `[run|rebuild|migrate|dlq list|dlq replay]`.
    ///
    /// # Errors
    /// On anything else.
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Self> {
        let command = match args.next().as_deref() {
            None | Some("run") => Self::Run,
            Some("rebuild") => Self::Rebuild,
            Some("migrate") => Self::Migrate,
            Some("dlq") => match args.next().as_deref() {
                Some("list") => Self::DlqList,
                Some("replay") => Self::DlqReplay,
                _ => anyhow::bail!("{USAGE}"),
            },
            Some(other) => anyhow::bail!("unknown subcommand {other:?}; {USAGE}"),
        };
        anyhow::ensure!(args.next().is_none(), "{USAGE}");
        Ok(command)
    }
}

/// How long `rebuild` waits for the owners to rebuild every partition.
const REBUILD_WAIT: Duration = Duration::from_secs(60);

/// `scoreboard-worker rebuild`: removes every partition's top (marking it unbuilt); each owner notices
/// within a second and rebuilds its partition from the store (a worker starting later rebuilds at lease
/// acquisition). Waits until every partition is built again.
///
/// # Errors
/// When Redis fails or the partitions are not all rebuilt within a minute (no worker running?).
pub async fn rebuild(settings: &Settings, mut redis: RedisConn) -> anyhow::Result<()> {
    let partitions = settings.worker.partitions.partitioner();
    for partition in partitions.all() {
        redis::cmd("DEL")
            .arg(PartitionKeys::new(partition).top())
            .query_async::<()>(&mut redis)
            .await?;
    }
    println!(
        "marked {} partitions for rebuilding; waiting for their owners",
        partitions.count()
    );
    let deadline = Instant::now() + REBUILD_WAIT;
    loop {
        let mut missing = Vec::new();
        for partition in partitions.all() {
            let built: bool = redis::cmd("EXISTS")
                .arg(PartitionKeys::new(partition).top())
                .query_async(&mut redis)
                .await?;
            if !built {
                missing.push(partition);
            }
        }
        if missing.is_empty() {
            println!("rebuilt {} partitions from the store", partitions.count());
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "partitions {missing:?} are not rebuilt yet: is a worker running? (they are rebuilt when one starts)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `scoreboard-worker migrate`: v1 records to v2 in place (idempotent).
///
/// # Errors
/// When the store fails (running it again resumes).
pub async fn migrate(settings: &Settings, store: Arc<dyn WatermarkStore>) -> anyhow::Result<()> {
    let changed = store
        .migrate(settings.worker.partitions.count)
        .await
        .context("migrating the store")?;
    println!("migrated {changed} records");
    Ok(())
}

/// `scoreboard-worker dlq list`: one JSON object per dead letter.
///
/// # Errors
/// When Redis fails.
pub async fn dlq_list(settings: &Settings, mut redis: RedisConn) -> anyhow::Result<()> {
    let letters = dlq::list(&mut redis, settings.worker.partitions.partitioner().all()).await?;
    for letter in &letters {
        println!("{}", letter.to_json());
    }
    eprintln!("{} dead letters", letters.len());
    Ok(())
}

/// `scoreboard-worker dlq replay`: every replayable dead letter through the update path, each under its
/// event id as idempotency key.
///
/// # Errors
/// When Redis fails or a partition is at its backlog bound.
pub async fn dlq_replay(
    settings: &Settings,
    env: &Env,
    mut redis: RedisConn,
) -> anyhow::Result<()> {
    let idempotency_ttl =
        Duration::from_secs(env.parse_in("IDEMPOTENCY_TTL_SECS", 86_400, 60..=7 * 86_400)?);
    let max_backlog = env.parse_in("STREAM_MAX_BACKLOG", 1_000_000, 1..=1_000_000_000)?;
    let partitioner = settings.worker.partitions.partitioner();
    let report = dlq::replay(
        &mut redis,
        partitioner,
        partitioner.all(),
        idempotency_ttl,
        max_backlog,
    )
    .await?;
    println!(
        "replayed {} dead letters ({} had been replayed before); {} skipped",
        report.enqueued,
        report.already,
        report.skipped.len()
    );
    for (event, reason) in &report.skipped {
        println!("skipped {event}: {reason}");
    }
    Ok(())
}

/// Connects to the configured store and checks that it is usable: an unreachable store is retried with
/// backoff until `timeout` (`STORE_CONNECT_TIMEOUT_SECS`) has passed, each attempt bounded by the time
/// left; a store that refuses (not transient) fails at once.
///
/// # Errors
/// The refusal, or after `timeout` the last transient error, each naming the variable to fix.
pub async fn connect_store(
    config: &StoreConfig,
    timeout: Duration,
) -> anyhow::Result<Arc<dyn WatermarkStore>> {
    let deadline = Instant::now() + timeout;
    let mut backoff = Backoff::default();
    let mut last: Option<StoreError> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, store::connect(config)).await {
            Ok(Ok(store)) => return Ok(store),
            Ok(Err(error)) if !error.is_transient() => {
                return Err(error).context("the store is not usable");
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "store not reachable yet");
                last = Some(error);
            }
            Err(_elapsed) => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let var = config.address_var();
            let cause = last.map_or_else(|| "still connecting".to_owned(), |e| e.to_string());
            anyhow::bail!(
                "{var}: the store did not answer within {}s (STORE_CONNECT_TIMEOUT_SECS): {cause}",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(backoff.next_delay().min(left)).await;
    }
}

/// Refuses a Redis that may evict keys: an evicted lease, cursor or epoch breaks fencing (§4). On a
/// cluster every master is checked. A server that hides `INFO` (some managed services) is let through
/// with a warning.
///
/// # Errors
/// When `maxmemory_policy` is anything but `noeviction` on any master, or Redis cannot be reached.
pub async fn check_redis(redis: &mut RedisConn) -> anyhow::Result<()> {
    let infos: Vec<String> = match redis
        .query_every_master(redis::cmd("INFO").arg("memory"))
        .await
    {
        Ok(infos) => infos,
        Err(error) if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm) => {
            tracing::warn!("INFO is not allowed: cannot check maxmemory-policy is noeviction");
            return Ok(());
        }
        Err(error) => return Err(error).context("REDIS_URL: Redis did not answer INFO"),
    };
    for info in &infos {
        let policy = info
            .lines()
            .find_map(|line| line.trim().strip_prefix("maxmemory_policy:"))
            .unwrap_or("unknown");
        anyhow::ensure!(
            policy == "noeviction",
            "REDIS_URL: the server's maxmemory-policy is {policy}; it must be noeviction (an evicted \
             lease, cursor or epoch breaks fencing)"
        );
    }
    Ok(())
}

/// Serves `/healthz` and `/metrics`, runs the partition balancer and the merger until SIGTERM /
/// Ctrl-C, then hands every partition back.
///
/// # Errors
/// When the HTTP port cannot be bound, Redis may evict keys, or an owner stopped on a store error that
/// retrying cannot fix (its batch stays after the cursor; the caller exits non-zero so the orchestrator
/// restarts it and alerts).
pub async fn run(
    settings: Settings,
    mut redis: RedisConn,
    store: Arc<dyn WatermarkStore>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::default();
    loop {
        match check_redis(&mut redis).await {
            Ok(()) => break,
            Err(error) if error.to_string().contains("maxmemory-policy") => return Err(error),
            Err(error) if shutdown.is_triggered() => return Err(error),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "Redis not reachable yet");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(settings.worker.metrics_addr)
        .await
        .with_context(|| format!("binding {}", settings.worker.metrics_addr))?;
    tracing::info!(addr = %settings.worker.metrics_addr, "healthz and metrics listening");
    let health = http::app(http::HealthState {
        redis: redis.clone(),
        store: store.clone(),
        metrics: scoreboard_shared::telemetry::prometheus(),
    });
    let mut announce = shutdown.clone();
    tokio::spawn(async move {
        announce.wait().await;
        tracing::info!(
            "shutdown requested: finishing the batches in hand and releasing partitions"
        );
    });
    let mut http_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, health)
            .with_graceful_shutdown(async move { http_shutdown.wait().await })
            .await
    });

    let worker = &settings.worker;
    let merger = Merger::new(
        MergerConfig {
            partitions: worker.partitions.count,
            board_size: worker.leaderboard_size,
            worker_id: worker.worker_id.clone(),
            lease_ttl: worker.lease_ttl,
            merge_interval: worker.merge_interval,
            merge_poll: worker.merge_poll,
        },
        redis.clone(),
        settings.redis.clone(),
    );
    let merger = tokio::spawn(merger.run(shutdown.clone()));
    tracing::info!(worker_id = %worker.worker_id, partitions = worker.partitions.count, "worker started");
    let balancer = Balancer::new(worker.clone(), settings.redis.clone(), redis, store);
    if let Err(error) = balancer.run(shutdown.clone()).await {
        server.abort();
        merger.abort();
        return Err(error).context(
            "the worker stopped on a store error that retrying cannot fix; the batch in hand stays after \
             the partition's cursor for the next owner",
        );
    }
    let _ = merger.await;
    let _ = server.await;
    tracing::info!("worker stopped");
    Ok(())
}
