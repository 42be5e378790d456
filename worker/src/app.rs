//! Wiring for the binary: configuration from the environment (cross-checked), the store connection and
//! its start-up check (fail fast: a store that refuses stops the binary at once, an unreachable one after
//! `STORE_CONNECT_TIMEOUT_SECS`, both with a message naming the variable to fix), the HTTP port, the
//! guarded start-up rebuild, the loop until SIGTERM/Ctrl-C or a store error that retrying cannot fix,
//! and the `rebuild` subcommand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::aio::ConnectionManager;
use scoreboard_shared::backoff::Backoff;
use scoreboard_shared::config::RedisConfig;
use scoreboard_shared::shutdown::Shutdown;

use crate::config::{Env, StoreConfig, WorkerConfig};
use crate::store::{self, ScoreStore, StoreError};

use crate::rebuild as cache;
use crate::{http, worker::Worker};

/// Everything built from the environment.
#[derive(Debug)]
pub struct Settings {
    pub redis: RedisConfig,
    pub store: StoreConfig,
    pub worker: WorkerConfig,
}

impl Settings {
    /// Reads and cross-checks the configuration (the store's dedupe window against the rate limit).
    ///
    /// # Errors
    /// The first invalid or missing value.
    pub fn from_env(env: &Env) -> anyhow::Result<Self> {
        let worker = WorkerConfig::from_env(env)?;
        let store = StoreConfig::from_env(env)?;
        if let Some(window) = store.dedupe_window() {
            worker.check_dedupe_window(window)?;
        }
        let mut redis = RedisConfig::from_env(env)?;
        // The loop's blocking XREADGROUP must not hit the response timeout.
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
    /// Drain the stream until SIGTERM / Ctrl-C (the default).
    Run,
    /// Refill the Redis cache from the store, then exit.
    Rebuild,
}

impl Command {
    /// Parses `[run|rebuild]`.
    ///
    /// # Errors
    /// On anything else.
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Self> {
        let command = match args.next().as_deref() {
            None | Some("run") => Self::Run,
            Some("rebuild") => Self::Rebuild,
            Some(other) => anyhow::bail!(
                "unknown subcommand {other:?}; usage: scoreboard-worker [run|rebuild]"
            ),
        };
        anyhow::ensure!(
            args.next().is_none(),
            "usage: scoreboard-worker [run|rebuild]"
        );
        Ok(command)
    }
}

/// `scoreboard-worker rebuild`: refills `{sb}:lb`, `{sb}:names` and `{sb}:top` from the store.
///
/// # Errors
/// When the store or Redis fails.
pub async fn rebuild(
    settings: Settings,
    mut redis: ConnectionManager,
    store: Arc<dyn ScoreStore>,
) -> anyhow::Result<()> {
    let outcome = cache::rebuild(&mut redis, store.as_ref(), settings.worker.leaderboard_size)
        .await
        .context("rebuilding the Redis cache from the store")?;
    println!(
        "rebuilt {} users; snapshot version {}",
        outcome.users, outcome.version
    );
    Ok(())
}

/// Connects to the configured store and checks that it is usable ([`store::connect`]): an unreachable
/// store is retried with backoff until `timeout` (`STORE_CONNECT_TIMEOUT_SECS`) has passed, each attempt
/// bounded by the time left; a store that refuses (not transient) fails at once.
///
/// # Errors
/// The refusal, or after `timeout` the last transient error, each naming the variable to fix.
pub async fn connect_store(
    config: &StoreConfig,
    timeout: Duration,
) -> anyhow::Result<Arc<dyn ScoreStore>> {
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

/// Serves `/healthz` and `/metrics`, rebuilds an empty cache once, and drains the stream until
/// SIGTERM / Ctrl-C.
///
/// # Errors
/// When the HTTP port cannot be bound, or the worker stopped on a store error that retrying cannot fix
/// (its batch left pending; the caller exits non-zero so the orchestrator restarts it and alerts).
pub async fn run(
    settings: Settings,
    mut redis: ConnectionManager,
    store: Arc<dyn ScoreStore>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
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
        tracing::info!("shutdown requested: finishing the batch in hand");
    });
    let mut http_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, health)
            .with_graceful_shutdown(async move { http_shutdown.wait().await })
            .await
    });

    if let Err(error) =
        cache::rebuild_if_empty(&mut redis, store.as_ref(), settings.worker.leaderboard_size).await
    {
        tracing::warn!(error = %error, "start-up rebuild failed; the board refills as events arrive");
    }
    let worker = loop {
        match Worker::new(redis.clone(), store.clone(), settings.worker.clone()).await {
            Ok(worker) => break worker,
            Err(error) if shutdown.is_triggered() => {
                return Err(error).context("creating the group");
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot create the consumer group yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    if let Err(error) = worker.run(shutdown).await {
        server.abort();
        return Err(error).context(
            "the worker stopped on a store error that retrying cannot fix; the batch in hand is left \
             pending (nothing acked) for the next worker",
        );
    }
    let _ = server.await;
    Ok(())
}
