//! The merger (`docs/design.md` §5.7): one leased role among the workers that merges the P partition
//! tops into the global top and publishes it. A user in the global top K is in their partition's top K,
//! so merging P lists of K is exact, and reading the P tops one after another is a consistent cut
//! (partitions share no users). It merges on lease acquisition and every (re)subscription to
//! `{sb:p}:changed` (after a slot moved, too), at the trailing edge of each burst (at most one merge per `MERGE_INTERVAL_MS`,
//! never dropping the last change), and every `MERGE_POLL_MS` in case a message was lost. It never
//! publishes while a partition is unbuilt, and publishes through `publish.lua`, which checks the merger
//! lease, skips unchanged entries and keeps versions growing.

use std::time::{Duration, Instant};

use scoreboard_shared::backoff::Backoff;
use scoreboard_shared::config::RedisConfig;
use scoreboard_shared::redis::keys::{self, PartitionKeys};
use scoreboard_shared::redis::{Notice, RedisConn, Subscription};
use scoreboard_shared::shutdown::Shutdown;
use scoreboard_shared::snapshot::Entry;
use serde::Deserialize;

use crate::error::WorkerError;
use crate::lease::{Lease, LeaseScripts};
use crate::metrics;
use crate::partition::fan_out;
use crate::partition::scripts::now_rfc3339;

/// What a partition top holds that the merger reads.
#[derive(Debug, Deserialize)]
struct PartitionTop {
    entries: Vec<Entry>,
}

/// What one merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOutcome {
    /// A new global top at this version was stored and published.
    Published { version: u64 },
    /// The merged entries equal the current global top.
    Unchanged,
    /// Some partition has no top yet (never built, or its cache was lost): nothing published.
    Unbuilt,
    /// The merger lease is not ours.
    Fenced,
}

/// How the merger is paced.
#[derive(Debug, Clone)]
pub struct MergerConfig {
    pub partitions: u16,
    pub board_size: usize,
    pub worker_id: String,
    pub lease_ttl: Duration,
    pub merge_interval: Duration,
    pub merge_poll: Duration,
}

/// The merger role of one worker process.
#[derive(Debug)]
pub struct Merger {
    config: MergerConfig,
    redis: RedisConn,
    redis_config: RedisConfig,
    leases: LeaseScripts,
    publish: redis::Script,
    lease: Option<Lease>,
    last_published: u64,
}

impl Merger {
    /// `redis_config` opens the subscription to the partitions' `changed` channels.
    pub fn new(config: MergerConfig, redis: RedisConn, redis_config: RedisConfig) -> Self {
        Self {
            leases: LeaseScripts::new(config.lease_ttl),
            publish: redis::Script::new(include_str!("publish.lua")),
            config,
            redis,
            redis_config,
            lease: None,
            last_published: 0,
        }
    }

    /// Whether this process holds the merger lease.
    pub fn is_leader(&self) -> bool {
        self.lease.is_some()
    }

    /// Takes the merger lease if it is free.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn try_acquire(&mut self) -> Result<bool, WorkerError> {
        if self.lease.is_none() {
            self.lease = self
                .leases
                .acquire(
                    &mut self.redis,
                    keys::MERGER_LEASE,
                    keys::MERGER_EPOCH,
                    &self.config.worker_id,
                )
                .await?;
            if let Some(lease) = &self.lease {
                tracing::info!(epoch = lease.epoch(), "merger lease acquired");
            }
        }
        metrics::merger_held(self.lease.is_some());
        Ok(self.lease.is_some())
    }

    /// Merges the partition tops and publishes when the entries changed.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn merge(&mut self) -> Result<MergeOutcome, WorkerError> {
        let Some(lease) = self.lease.clone() else {
            return Ok(MergeOutcome::Fenced);
        };
        let started = Instant::now();
        // One GET per partition, side by side: on a cluster the tops live in different slots.
        let raw: Vec<Option<String>> =
            fan_out::query_each(&self.redis, 0..self.config.partitions, |keys| {
                fan_out::get(keys.top())
            })
            .await?;
        let mut tops = Vec::with_capacity(raw.len());
        for (partition, top) in raw.into_iter().enumerate() {
            let Some(top) = top else {
                metrics::merge("unbuilt", started.elapsed());
                return Ok(MergeOutcome::Unbuilt);
            };
            let top: PartitionTop = serde_json::from_str(&top).map_err(|e| {
                WorkerError::Redis(redis::RedisError::from((
                    redis::ErrorKind::Parse,
                    "unreadable partition top",
                    format!("partition {partition}: {e}"),
                )))
            })?;
            tops.push(top.entries);
        }
        let merged = merge_tops(tops, self.config.board_size);
        let entries = serde_json::to_string(&merged).unwrap_or_else(|_| "[]".to_owned());
        let (status, version): (String, u64) = self
            .publish
            .key(keys::MERGER_LEASE)
            .key(keys::TOP)
            .key(keys::VERSION)
            .arg(lease.value())
            .arg(&entries)
            .arg(now_rfc3339())
            .arg(self.last_published + 1)
            .arg(keys::EVENTS_CHANNEL)
            .arg(self.redis.publish_command())
            .invoke_async(&mut self.redis)
            .await?;
        Ok(match status.as_str() {
            "fenced" => {
                tracing::warn!("merger lease lost");
                self.lease = None;
                metrics::merger_held(false);
                metrics::merge("fenced", started.elapsed());
                MergeOutcome::Fenced
            }
            "published" => {
                self.last_published = version;
                metrics::merge("published", started.elapsed());
                MergeOutcome::Published { version }
            }
            _ => {
                metrics::merge("unchanged", started.elapsed());
                MergeOutcome::Unchanged
            }
        })
    }

    /// Renews the lease; drops it when lost.
    async fn renew(&mut self) -> Result<(), WorkerError> {
        if let Some(lease) = &self.lease
            && !self.leases.renew(&mut self.redis, lease).await?
        {
            tracing::warn!("merger lease lost");
            self.lease = None;
            metrics::merger_held(false);
        }
        Ok(())
    }

    /// Competes for the lease and merges while holding it, until `shutdown`; then releases it.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        let mut backoff = Backoff::default();
        let scan = self.config.lease_ttl / 4;
        while !shutdown.is_triggered() {
            let held = match self.try_acquire().await {
                Ok(held) => held,
                Err(error) => {
                    tracing::warn!(error = %error, "merger lease check failed");
                    false
                }
            };
            if !held {
                tokio::select! {
                    () = tokio::time::sleep(scan) => {},
                    () = shutdown.wait() => {},
                }
                continue;
            }
            match self.lead(&mut shutdown).await {
                Ok(()) => backoff.reset(),
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %error, delay_ms = delay.as_millis() as u64,
                        "merger subscription or merge failed; resubscribing");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {},
                        () = shutdown.wait() => {},
                    }
                }
            }
        }
        if let Some(lease) = self.lease.take() {
            let _ = self.leases.release(&mut self.redis, &lease).await;
        }
        metrics::merger_held(false);
    }

    /// Subscribes and merges while the lease holds. Returns `Ok` when the lease is lost or on shutdown,
    /// `Err` when the subscription or a merge failed (the caller resubscribes).
    async fn lead(&mut self, shutdown: &mut Shutdown) -> Result<(), WorkerError> {
        // One channel per partition (a cluster's sharded Pub/Sub has no patterns).
        let channels = (0..self.config.partitions)
            .map(|partition| PartitionKeys::new(partition).changed())
            .collect();
        let mut subscription = Subscription::open(&self.redis_config, channels).await?;
        self.merge().await?;
        let mut last_merge = Instant::now();
        let mut dirty = false;
        let mut poll = tokio::time::interval(self.config.merge_poll);
        poll.tick().await;
        let mut renewals = tokio::time::interval(self.config.lease_ttl / 3);
        renewals.tick().await;
        while self.lease.is_some() {
            let trailing_edge =
                tokio::time::Instant::from_std(last_merge + self.config.merge_interval);
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                notice = subscription.next() => match notice {
                    Notice::Message { .. } => dirty = true,
                    Notice::Lost(why) => {
                        return Err(WorkerError::Redis(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "merger subscription lost",
                            why.to_owned(),
                        ))));
                    }
                },
                () = tokio::time::sleep_until(trailing_edge), if dirty => {
                    dirty = false;
                    self.merge().await?;
                    last_merge = Instant::now();
                }
                _ = poll.tick() => {
                    self.merge().await?;
                    last_merge = Instant::now();
                }
                _ = renewals.tick() => self.renew().await?,
            }
        }
        Ok(())
    }
}

/// The global top `size` from the partition tops: score descending, then user id ascending (byte
/// order), ranked from 1.
pub fn merge_tops(tops: Vec<Vec<Entry>>, size: usize) -> Vec<Entry> {
    let mut all: Vec<Entry> = tops.into_iter().flatten().collect();
    all.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    all.truncate(size);
    for (rank, entry) in all.iter_mut().enumerate() {
        entry.rank = rank as u32 + 1;
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(user: &str, score: u64) -> Entry {
        Entry {
            rank: 0,
            user_id: user.into(),
            name: user.into(),
            score,
        }
    }

    #[test]
    fn merges_by_score_then_user_id_bytes_and_reranks() {
        let merged = merge_tops(
            vec![
                vec![entry("b", 9), entry("z", 5)],
                vec![entry("a", 9), entry("B", 5)],
                vec![],
            ],
            3,
        );
        let order: Vec<_> = merged
            .iter()
            .map(|e| (e.rank, e.user_id.as_str()))
            .collect();
        assert_eq!(order, [(1, "a"), (2, "b"), (3, "B")]);
    }
}
