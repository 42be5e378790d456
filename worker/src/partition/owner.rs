//! One owned partition, in steps a test can call one by one. [`PartitionOwner::start`] runs once after the
//! lease is acquired: it reads the cursor, moves the stream's id past the store's high-water mark if Redis
//! lost entries (§5.4), and rebuilds the partition's cache when it is missing or behind the store (§5.8).
//! [`PartitionOwner::step`] renews the lease when due, reads the entries after the cursor (`XREAD BLOCK`
//! on this owner's own connection: reads have no side effects), waits for replicas when configured,
//! applies the batch to the store by watermark ([`super::apply`]) and commits it in one fenced script.
//! Only that commit moves the cursor; a commit refused by the fence ends the ownership.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::streams::StreamReadReply;
use scoreboard_shared::backoff::Backoff;
use scoreboard_shared::partition::{EventId, Partitioner, StreamId};
use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::entry::{StreamEvent, fields_json, parse_entry};
use scoreboard_shared::redis::keys::PartitionKeys;
use scoreboard_shared::shutdown::Shutdown;

use super::apply::apply;
use super::read_cache::ReadCache;
use super::rebuild::{Rebuilt, rebuild};
use super::scripts::{CommitInput, CommitStatus, DeadLetter, PartitionScripts, now_rfc3339};
use crate::error::WorkerError;
use crate::lease::{Lease, LeaseScripts};
use crate::metrics;
use crate::store::{StoreError, Watermark, WatermarkStore};

/// After shutdown is requested, how long an outage may keep a batch in hand before it is left for the
/// next owner (nothing is lost: the cursor did not move).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often an idle owner checks that its partition's cache still exists.
const CACHE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// What an owner needs to know.
#[derive(Debug, Clone)]
pub struct OwnerConfig {
    pub batch_size: usize,
    pub block: Duration,
    pub generation: u32,
    pub partitioner: Partitioner,
    pub min_replicas: u32,
    pub wait_timeout: Duration,
}

/// Why an owner stopped stepping.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// The lease is not ours any more; nothing was written. The owner steps down.
    #[error("partition lease lost")]
    Fenced,
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

impl From<redis::RedisError> for OwnerError {
    fn from(error: redis::RedisError) -> Self {
        Self::Worker(error.into())
    }
}

impl From<StoreError> for OwnerError {
    fn from(error: StoreError) -> Self {
        Self::Worker(error.into())
    }
}

impl OwnerError {
    /// Whether stepping again may succeed (Redis outages, transient store errors).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Worker(e) if e.is_transient())
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Nothing after the cursor within the block time.
    Idle,
    Processed {
        /// Entries read (valid and malformed).
        entries: usize,
        /// Events applied to the store now (not applied before).
        applied: usize,
        dead: usize,
        /// Whether the partition's top changed.
        changed: bool,
        store_round_trips: u32,
    },
}

/// The owner of one partition while it holds the lease.
#[derive(Debug)]
pub struct PartitionOwner {
    keys: PartitionKeys,
    lease: Lease,
    redis: RedisConn,
    store: Arc<dyn WatermarkStore>,
    scripts: PartitionScripts,
    leases: LeaseScripts,
    config: OwnerConfig,
    cursor: StreamId,
    /// The users' records this owner read or wrote (a lock only so the retried store step can borrow it).
    read_cache: tokio::sync::Mutex<ReadCache>,
    last_renewal: Instant,
    last_cache_check: Instant,
}

impl PartitionOwner {
    /// Prepares partition `keys` under `lease` (see the module docs).
    ///
    /// # Errors
    /// [`OwnerError::Fenced`] when the lease was lost meanwhile; Redis or store failures.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        keys: PartitionKeys,
        lease: Lease,
        mut redis: RedisConn,
        store: Arc<dyn WatermarkStore>,
        scripts: PartitionScripts,
        leases: LeaseScripts,
        config: OwnerConfig,
    ) -> Result<Self, OwnerError> {
        let acquired = Instant::now();
        let cursor: Option<String> = redis::cmd("GET")
            .arg(keys.cursor())
            .query_async(&mut redis)
            .await?;
        let cursor = cursor
            .and_then(|c| c.parse().ok())
            .unwrap_or(StreamId::ZERO);
        let mut owner = Self {
            keys,
            lease,
            redis,
            store,
            scripts,
            leases,
            config,
            cursor,
            read_cache: tokio::sync::Mutex::new(ReadCache::default()),
            last_renewal: acquired,
            last_cache_check: acquired,
        };
        owner.heal().await?;
        Ok(owner)
    }

    pub fn partition(&self) -> u16 {
        self.keys.partition()
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The id of the last committed entry.
    pub fn cursor(&self) -> StreamId {
        self.cursor
    }

    /// Fences the stream against lost entries and rebuilds a missing or stale cache.
    async fn heal(&mut self) -> Result<(), OwnerError> {
        let partition = self.partition();
        let store_hw = self.store.read(partition, &[]).await?.hw;
        // The store read may have taken a while (a slow store at start-up): renew before the fenced steps.
        if !self.leases.renew(&mut self.redis, &self.lease).await? {
            return Err(OwnerError::Fenced);
        }
        self.last_renewal = Instant::now();
        let hw_entry = store_hw.map_or(StreamId::ZERO, |w| w.entry);
        let moved = self
            .scripts
            .prepare(&mut self.redis, &self.keys, &self.lease, hw_entry)
            .await?
            .ok_or(OwnerError::Fenced)?;
        metrics::stream_behind_store(partition, moved);
        if moved {
            tracing::error!(partition, hw = %hw_entry,
                "the stream is behind the store's high-water mark (Redis lost entries): its id was moved \
                 past it and the partition is rebuilt");
        }
        let top: Option<String> = redis::cmd("GET")
            .arg(self.keys.top())
            .query_async(&mut self.redis)
            .await?;
        let cached_hw = top.as_deref().and_then(top_hw);
        let stale = match (cached_hw, store_hw) {
            (None, _) => true,
            (Some(cached), Some(stored)) => Watermark::new(self.config.generation, cached) < stored,
            (Some(_), None) => false,
        };
        if moved || stale {
            self.rebuild().await?;
        }
        Ok(())
    }

    /// Rebuilds this partition's cache from the store.
    ///
    /// # Errors
    /// [`OwnerError::Fenced`], or Redis and store failures.
    pub async fn rebuild(&mut self) -> Result<usize, OwnerError> {
        match rebuild(
            &mut self.redis,
            self.store.as_ref(),
            &self.scripts,
            &self.keys,
            &self.lease,
            &self.leases,
        )
        .await?
        {
            Rebuilt::Done { users } => Ok(users),
            Rebuilt::Fenced => Err(OwnerError::Fenced),
        }
    }

    /// While idle, checks every [`CACHE_CHECK_EVERY`] that the partition's cache is still there (an
    /// evicted, flushed or `worker rebuild`-marked partition has no top) and rebuilds it if not.
    async fn check_built_if_due(&mut self) -> Result<(), OwnerError> {
        if self.last_cache_check.elapsed() < CACHE_CHECK_EVERY {
            return Ok(());
        }
        self.last_cache_check = Instant::now();
        let built: bool = redis::cmd("EXISTS")
            .arg(self.keys.top())
            .query_async(&mut self.redis)
            .await?;
        if !built {
            tracing::warn!(
                partition = self.partition(),
                "partition cache missing: rebuilding"
            );
            self.rebuild().await?;
        }
        Ok(())
    }

    /// Renews the lease if a third of its time has passed since the last renewal.
    async fn renew_if_due(&mut self) -> Result<(), OwnerError> {
        if self.last_renewal.elapsed() < self.leases.ttl() / 3 {
            return Ok(());
        }
        let started = Instant::now();
        if !self.leases.renew(&mut self.redis, &self.lease).await? {
            return Err(OwnerError::Fenced);
        }
        self.last_renewal = started;
        Ok(())
    }

    /// Gives the lease up (graceful shutdown, rebalancing).
    pub async fn release(mut self) {
        match self.leases.release(&mut self.redis, &self.lease).await {
            Ok(true) => tracing::info!(partition = self.partition(), "partition released"),
            Ok(false) => {}
            Err(error) => tracing::warn!(partition = self.partition(), error = %error,
                "could not release the partition; it frees itself when the lease expires"),
        }
    }

    /// Reads up to a batch after the cursor, blocking up to the configured time.
    async fn read(&mut self) -> redis::RedisResult<Vec<(String, HashMap<String, redis::Value>)>> {
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(self.config.batch_size)
            .arg("BLOCK")
            .arg(self.config.block.as_millis() as u64)
            .arg("STREAMS")
            .arg(self.keys.updates())
            .arg(self.cursor.to_string())
            .query_async(&mut self.redis)
            .await?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|entry| (entry.id, entry.map))
            .collect())
    }

    /// One batch: renew, read, (wait for replicas), apply, commit. Transient failures of the store write
    /// and the commit are retried here with backoff; the cursor moves only with a successful commit.
    ///
    /// # Errors
    /// [`OwnerError::Fenced`] (step down), a read failure, a store error that is not transient, or
    /// [`WorkerError::Abandoned`] after a shutdown outlasted the grace period.
    pub async fn step(&mut self, shutdown: &Shutdown) -> Result<StepOutcome, OwnerError> {
        self.renew_if_due().await?;
        let raw = self.read().await?;
        let Some(last) = raw.last().and_then(|(id, _)| id.parse::<StreamId>().ok()) else {
            self.check_built_if_due().await?;
            return Ok(StepOutcome::Idle);
        };
        let entries = raw.len();
        let (events, dead) = self.classify(raw);
        self.wait_for_replicas(shutdown).await?;

        let started = Instant::now();
        let partition = self.partition();
        let generation = self.config.generation;
        let store = self.store.clone();
        let read_cache = &self.read_cache;
        let mut applied = retrying("store", shutdown, || async {
            let mut read_cache = read_cache.lock().await;
            apply(
                store.as_ref(),
                &mut read_cache,
                partition,
                generation,
                &events,
            )
            .await
        })
        .await?;
        let store_time = started.elapsed();
        applied.dead.splice(0..0, dead);

        let started = Instant::now();
        let max_id = events.iter().map(|(id, _)| *id).max();
        let input = CommitInput {
            totals: &applied.totals,
            dead: &applied.dead,
            cursor: Some(last),
            hw: max_id,
            require_built: true,
            force: false,
        };
        let mut rebuilt = false;
        let status = loop {
            let updated_at = now_rfc3339();
            let status = retrying("commit", shutdown, || {
                let mut redis = self.redis.clone();
                let scripts = &self.scripts;
                let keys = &self.keys;
                let lease = &self.lease;
                let input = &input;
                let updated_at = &updated_at;
                async move {
                    scripts
                        .commit(&mut redis, keys, lease, input, updated_at)
                        .await
                }
            })
            .await?;
            match status {
                CommitStatus::Unbuilt if !rebuilt => {
                    tracing::warn!(
                        partition,
                        "partition cache missing: rebuilding before the commit"
                    );
                    self.rebuild().await?;
                    rebuilt = true;
                }
                CommitStatus::Fenced => return Err(OwnerError::Fenced),
                other => break other,
            }
        };
        if status == CommitStatus::Unbuilt {
            return Err(WorkerError::Redis(redis::RedisError::from((
                redis::ErrorKind::Client,
                "partition cache missing right after its rebuild",
            )))
            .into());
        }
        self.cursor = last;
        let (changed, backlog) = match status {
            CommitStatus::Changed { backlog, .. } => (true, backlog),
            CommitStatus::Same { backlog } => (false, backlog),
            CommitStatus::Fenced | CommitStatus::Unbuilt => (false, 0),
        };
        metrics::partition_backlog(partition, backlog);
        metrics::partition_batch(
            partition,
            applied.applied_events,
            applied.dead.len(),
            store_time,
            started.elapsed(),
        );
        if let Some((_, newest)) = events.last() {
            metrics::partition_lag(partition, unix_millis().saturating_sub(newest.ts_ms));
        }
        Ok(StepOutcome::Processed {
            entries,
            applied: applied.applied_events,
            dead: applied.dead.len(),
            changed,
            store_round_trips: applied.round_trips,
        })
    }

    /// Valid events (with parsed ids) in stream order, and dead letters (with their fields as JSON) for
    /// the rest.
    fn classify(
        &self,
        raw: Vec<(String, HashMap<String, redis::Value>)>,
    ) -> (Vec<(StreamId, StreamEvent)>, Vec<DeadLetter>) {
        let partition = self.partition();
        let mut events = Vec::with_capacity(raw.len());
        let mut dead = Vec::new();
        for (id, entry) in raw {
            let verdict = id
                .parse::<StreamId>()
                .map_err(|e| e.to_string())
                .and_then(|sid| {
                    let event = parse_entry(&id, &entry).map_err(|r| format!("malformed: {r}"))?;
                    if self.config.partitioner.partition_of(&event.user) != partition {
                        return Err(format!(
                            "wrong partition: user belongs to {}",
                            self.config.partitioner.partition_of(&event.user)
                        ));
                    }
                    Ok((sid, event))
                });
            match verdict {
                Ok((sid, event)) => events.push((sid, event)),
                Err(reason) => {
                    let event_id = id.parse::<StreamId>().map_or_else(
                        |_| format!("{partition}-{id}"),
                        |entry| EventId { partition, entry }.to_string(),
                    );
                    tracing::warn!(partition, event_id = %event_id, reason = %reason, "entry goes to the DLQ");
                    dead.push(DeadLetter {
                        event_id,
                        user: String::new(),
                        reason,
                        error: String::new(),
                        fields_json: fields_json(&entry),
                    });
                }
            }
        }
        (events, dead)
    }

    /// With `REDIS_MIN_REPLICAS` > 0, waits until that many replicas have every entry just read, so
    /// nothing reaches the store that a failover could still lose (§5.4).
    ///
    /// `WAIT` waits for the offset the server remembers for this connection, and Redis versions differ
    /// on when they update it (after every command, or only after the connection's own propagated
    /// writes, which would leave out entries other clients appended). So each attempt first renews the
    /// lease on the same connection (a `PEXPIRE` that propagates, after the read), then waits: on every
    /// version the offset waited for is past every entry of the batch. A reconnect between the two would reset it, hence both per
    /// attempt. On a cluster both go to the partition's shard (`WAIT` is per shard).
    async fn wait_for_replicas(&mut self, shutdown: &Shutdown) -> Result<(), OwnerError> {
        let wanted = self.config.min_replicas;
        if wanted == 0 {
            return Ok(());
        }
        let timeout = self.config.wait_timeout.as_millis() as u64;
        let redis = self.redis.clone();
        let stream = self.keys.updates();
        let (leases, lease) = (self.leases.clone(), self.lease.clone());
        let started = Instant::now();
        let held = retrying("wait", shutdown, || {
            let mut redis = redis.clone();
            let (stream, leases, lease) = (stream.clone(), leases.clone(), lease.clone());
            async move {
                if !leases.renew(&mut redis, &lease).await? {
                    return Ok(false);
                }
                let acked: u32 = redis
                    .query_at_key(&stream, redis::cmd("WAIT").arg(wanted).arg(timeout))
                    .await?;
                if acked < wanted {
                    return Err(WorkerError::Redis(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "fewer replicas than REDIS_MIN_REPLICAS acknowledged the batch",
                    ))));
                }
                Ok(true)
            }
        })
        .await?;
        if !held {
            return Err(OwnerError::Fenced);
        }
        self.last_renewal = started;
        Ok(())
    }
}

/// The highest applied entry id recorded in a partition top's JSON.
pub fn top_hw(json: &str) -> Option<StreamId> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value.get("hw")?.as_str()?.parse().ok()
}

/// Runs `attempt` until it succeeds, retrying transient errors with backoff; returns other errors at
/// once, and [`WorkerError::Abandoned`] once a shutdown has waited [`SHUTDOWN_GRACE`].
pub(crate) async fn retrying<T, E, F, Fut>(
    stage: &'static str,
    shutdown: &Shutdown,
    mut attempt: F,
) -> Result<T, WorkerError>
where
    E: Into<WorkerError>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::default();
    let mut shutdown_since: Option<Instant> = None;
    loop {
        match attempt().await.map_err(Into::into) {
            Ok(value) => return Ok(value),
            Err(error) if !error.is_transient() => return Err(error),
            Err(error) => {
                metrics::retry(stage);
                if shutdown.is_triggered() {
                    let since = *shutdown_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > SHUTDOWN_GRACE {
                        return Err(WorkerError::Abandoned);
                    }
                }
                let delay = backoff.next_delay();
                tracing::warn!(stage, error = %error, attempt = backoff.attempts(),
                    delay_ms = delay.as_millis() as u64, "retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
