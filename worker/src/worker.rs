//! The worker loop, in steps a test can call one by one: [`Worker::fetch`] (reclaim idle entries first,
//! else read new ones; validate; coalesce), [`Worker::write_store`] (one bulk call),
//! [`Worker::commit`] (one Redis script call that also acks), and [`Worker::step`] doing all three
//! with retries. Nothing is acked before the store has it, so a crash anywhere only causes a
//! re-delivery, which the store and `ZADD GT` absorb (exactly-once effect).
//!
//! Run-time error policy: only errors known to be transient are retried without bound — Redis
//! failures and [`StoreError::Unavailable`] (unreachable, timeouts, throttling, 5xx, failover), with
//! capped, jittered backoff. A store error that retrying cannot fix ([`StoreError::Unexpected`]: the
//! table deleted, access or authentication revoked, an invalid request, data this code cannot read)
//! ends the step at once with the batch left pending — nothing acked, nothing lost — and
//! [`Worker::run`] returns it, so the binary exits non-zero: the orchestrator restarts the worker and
//! alerts, and the restarted worker's start-up check names the setting to fix (or, if the cause is
//! gone, reclaims the batch after `CLAIM_IDLE_MS`). Each such reclaim counts a delivery, so a refusal
//! that survives `MAX_DELIVERIES` restarts sends the batch to the DLQ with its fields, to replay once
//! the store is fixed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use scoreboard_shared::backoff::Backoff;
use scoreboard_shared::redis::entry::{StreamEvent, fields_json, parse_entry};
use scoreboard_shared::shutdown::Shutdown;

use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::store::{ScoreStore, StoreError, UserDelta, UserTotal};

use crate::batch::coalesce;
use crate::commit::{CommitInput, CommitOutcome, CommitScript, DeadLetter, now_rfc3339};
use crate::metrics;
use crate::stream::{self, RawEntry};

/// How often acked entries are trimmed and the pending gauge refreshed.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(1);
/// After shutdown is requested, how long an outage may keep the batch in hand before it is left
/// pending (it is reclaimed by another worker; nothing is lost).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// One fetched batch: valid events coalesced per user, and entries bound for the DLQ.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub events: Vec<StreamEvent>,
    pub deltas: Vec<UserDelta>,
    pub dead: Vec<DeadLetter>,
    /// Whether the entries were reclaimed from another (dead) consumer.
    pub reclaimed: bool,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.dead.is_empty()
    }

    /// Every entry id to ack: applied and dead.
    pub fn ack_ids(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| e.id.clone())
            .chain(self.dead.iter().map(|d| d.event_id.clone()))
            .collect()
    }
}

/// What one [`Worker::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Nothing to read within the block time.
    Idle,
    Processed {
        applied: usize,
        dead: usize,
        published: bool,
    },
}

/// A stream consumer bound to one store.
#[derive(Debug)]
pub struct Worker {
    redis: ConnectionManager,
    store: Arc<dyn ScoreStore>,
    config: WorkerConfig,
    commit: CommitScript,
    claim_cursor: String,
    last_claim: Option<Instant>,
    last_maintenance: Option<Instant>,
}

impl Worker {
    /// Creates the consumer group if missing.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn new(
        mut redis: ConnectionManager,
        store: Arc<dyn ScoreStore>,
        config: WorkerConfig,
    ) -> Result<Self, WorkerError> {
        stream::ensure_group(&mut redis).await?;
        Ok(Self {
            commit: CommitScript::new(config.leaderboard_size),
            redis,
            store,
            config,
            claim_cursor: "0-0".to_owned(),
            last_claim: None,
            last_maintenance: None,
        })
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Reads the next batch: idle entries of dead consumers first (`XAUTOCLAIM`), else new entries
    /// (`XREADGROUP … BLOCK`). Malformed and over-delivered entries become dead letters.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn fetch(&mut self) -> Result<Batch, WorkerError> {
        match self.fetch_raw().await {
            Ok((raw, reclaimed)) => {
                let mut batch = self.classify(raw);
                batch.reclaimed = reclaimed;
                Ok(batch)
            }
            // The stream or the group vanished (e.g. FLUSHALL): recreate it, refill a lost cache from the
            // store (once, across workers), and carry on.
            Err(e) if e.code() == Some("NOGROUP") => {
                tracing::warn!("consumer group missing: recreating it");
                stream::ensure_group(&mut self.redis).await?;
                crate::rebuild::rebuild_if_empty(
                    &mut self.redis,
                    self.store.as_ref(),
                    self.config.leaderboard_size,
                )
                .await?;
                Ok(Batch::default())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reclaims idle entries while a reclaim scan is under way or one is due, else reads new entries.
    async fn fetch_raw(&mut self) -> redis::RedisResult<(Vec<RawEntry>, bool)> {
        let due = self
            .last_claim
            .is_none_or(|t| t.elapsed() >= self.claim_every())
            || self.claim_cursor != "0-0";
        if due {
            self.last_claim = Some(Instant::now());
            let (next, claimed) = stream::claim_idle(
                &mut self.redis,
                &self.config.consumer,
                self.config.claim_idle,
                &self.claim_cursor,
                self.config.batch_size,
            )
            .await?;
            self.claim_cursor = next;
            if !claimed.is_empty() {
                tracing::info!(entries = claimed.len(), "reclaimed idle entries");
                return Ok((claimed, true));
            }
        }
        let raw = stream::read_new(
            &mut self.redis,
            &self.config.consumer,
            self.config.batch_size,
            self.config.block,
        )
        .await?;
        Ok((raw, false))
    }

    /// How often to look for idle entries: a quarter of the idle time, at most every second.
    fn claim_every(&self) -> Duration {
        (self.config.claim_idle / 4).min(Duration::from_secs(1))
    }

    fn classify(&self, raw: Vec<RawEntry>) -> Batch {
        let mut events = Vec::with_capacity(raw.len());
        let mut dead = Vec::new();
        for entry in raw {
            let verdict = if entry.deliveries > self.config.max_deliveries {
                Err(format!(
                    "delivered {} times (MAX_DELIVERIES={})",
                    entry.deliveries, self.config.max_deliveries
                ))
            } else {
                parse_entry(&entry.id, &entry.fields).map_err(|r| format!("malformed: {r}"))
            };
            match verdict {
                Ok(event) => events.push(event),
                Err(reason) => {
                    tracing::warn!(event_id = %entry.id, reason = %reason, "entry goes to the DLQ");
                    dead.push(DeadLetter {
                        event_id: entry.id,
                        reason,
                        fields_json: fields_json(&entry.fields),
                        deliveries: entry.deliveries,
                    });
                }
            }
        }
        Batch {
            deltas: coalesce(&events),
            events,
            dead,
            reclaimed: false,
        }
    }

    /// Applies the batch to the store in one bulk call; returns the touched users' absolute totals.
    ///
    /// # Errors
    /// When the store fails; nothing is acked, the same batch may be retried.
    pub async fn write_store(&self, batch: &Batch) -> Result<Vec<UserTotal>, StoreError> {
        self.store.apply_batch(&batch.deltas).await
    }

    /// Mirrors the totals into Redis, writes dead letters and acks the batch — one script call.
    ///
    /// # Errors
    /// When Redis fails; nothing is acked then.
    pub async fn commit(
        &self,
        batch: &Batch,
        totals: &[UserTotal],
    ) -> Result<CommitOutcome, WorkerError> {
        let acks = batch.ack_ids();
        let input = CommitInput {
            totals,
            acks: &acks,
            dead: &batch.dead,
            snapshot: true,
        };
        let outcome = self
            .commit
            .run(&mut self.redis.clone(), &input, &now_rfc3339())
            .await?;
        Ok(outcome)
    }

    /// Fetches, writes and commits one batch; transient store and commit failures are retried (capped
    /// backoff with jitter) until they succeed. After `shutdown`, an outage is given [`SHUTDOWN_GRACE`]
    /// before the batch is abandoned (left pending).
    ///
    /// # Errors
    /// A fetch failure (nothing was taken), [`WorkerError::Abandoned`], or a store error that is not
    /// transient (the batch is left pending, nothing acked).
    pub async fn step(&mut self, shutdown: &Shutdown) -> Result<StepOutcome, WorkerError> {
        self.maintain().await;
        let batch = self.fetch().await?;
        if batch.is_empty() {
            return Ok(StepOutcome::Idle);
        }
        let started = Instant::now();
        let totals = retrying("store", shutdown, || self.write_store(&batch)).await?;
        let store_time = started.elapsed();
        let started = Instant::now();
        let outcome = retrying("commit", shutdown, || self.commit(&batch, &totals)).await?;
        let commit_time = started.elapsed();

        metrics::batch(
            batch.events.len(),
            batch.dead.len(),
            store_time,
            commit_time,
        );
        if outcome.published {
            metrics::snapshot();
        }
        let now_ms = unix_millis();
        for event in &batch.events {
            metrics::lag(now_ms.saturating_sub(event.ts_ms) as f64 / 1_000.0);
        }
        tracing::debug!(
            applied = batch.events.len(),
            users = batch.deltas.len(),
            dead = batch.dead.len(),
            version = outcome.version,
            published = outcome.published,
            "batch committed"
        );
        Ok(StepOutcome::Processed {
            applied: batch.events.len(),
            dead: batch.dead.len(),
            published: outcome.published,
        })
    }

    /// Steps until shutdown; a step failed by a transient error (Redis down) is retried with backoff.
    ///
    /// # Errors
    /// The first error that is not transient (a store refusal, see the module docs); the batch in hand
    /// is left pending and the caller should exit non-zero.
    pub async fn run(mut self, mut shutdown: Shutdown) -> Result<(), WorkerError> {
        let mut backoff = Backoff::default();
        tracing::info!(consumer = %self.config.consumer, "worker started");
        while !shutdown.is_triggered() {
            match self.step(&shutdown).await {
                Ok(_) => backoff.reset(),
                Err(WorkerError::Abandoned) => break,
                Err(error) if !error.is_transient() => {
                    tracing::error!(
                        error = %error,
                        "worker stopping: a store error that retrying cannot fix; the batch stays pending"
                    );
                    return Err(error);
                }
                Err(error) => {
                    metrics::retry("fetch");
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %error, delay_ms = delay.as_millis() as u64, "step failed");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {},
                        () = shutdown.wait() => {},
                    }
                }
            }
        }
        tracing::info!("worker stopped");
        Ok(())
    }

    /// Trims acked entries and refreshes the pending gauge, at most every [`MAINTENANCE_EVERY`].
    async fn maintain(&mut self) {
        if self
            .last_maintenance
            .is_some_and(|t| t.elapsed() < MAINTENANCE_EVERY)
        {
            return;
        }
        self.last_maintenance = Some(Instant::now());
        if let Err(error) = self.trim_and_count().await {
            tracing::warn!(error = %error, "stream maintenance failed");
        }
    }

    /// Trims acked entries now; returns how many were removed.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn trim_and_count(&mut self) -> Result<u64, WorkerError> {
        let trimmed = stream::trim_acked(&mut self.redis).await?;
        let (pending, _) = stream::pending_summary(&mut self.redis).await?;
        metrics::pending(pending);
        Ok(trimmed)
    }
}

/// Runs `attempt` until it succeeds, retrying transient errors ([`WorkerError::is_transient`]) with
/// backoff; returns a non-transient error at once, and [`WorkerError::Abandoned`] once a shutdown has
/// waited [`SHUTDOWN_GRACE`].
async fn retrying<T, E, F, Fut>(
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
