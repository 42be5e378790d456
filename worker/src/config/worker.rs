//! Settings of the stream worker: batch shape, recovery (claim idle time, delivery cap), board size, its
//! consumer name and metrics address, how long start-up waits for the store, and the start-up check
//! that the store's dedupe window covers what one user can enqueue before a lost delivery is reclaimed.

use std::net::SocketAddr;
use std::time::Duration;

use scoreboard_shared::config::{ConfigError, Env, LeaderboardConfig, RateLimit};

/// How the worker drains the stream.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Entries per `XREADGROUP COUNT` (`WORKER_BATCH_SIZE`, default 100).
    pub batch_size: usize,
    /// How long one read blocks when the stream is empty (`WORKER_BLOCK_MS`, default 1000).
    pub block: Duration,
    /// Pending entries idle this long are reclaimed from their consumer (`CLAIM_IDLE_MS`, default 30000).
    pub claim_idle: Duration,
    /// Deliveries after which an entry goes to the DLQ (`MAX_DELIVERIES`, default 5).
    pub max_deliveries: u64,
    /// Rows in the snapshot (`LEADERBOARD_SIZE`, default 10).
    pub leaderboard_size: usize,
    /// This worker's consumer name in the group (`WORKER_CONSUMER`, default `<hostname>-<pid>`).
    pub consumer: String,
    /// Where `/healthz` and `/metrics` listen (`METRICS_ADDR`, else `BIND_ADDR`, default `0.0.0.0:9091`).
    pub metrics_addr: SocketAddr,
    /// The update function's per-user rate limit, for the dedupe check.
    pub rate_limit: RateLimit,
    /// How long start-up waits for an unreachable store before exiting non-zero
    /// (`STORE_CONNECT_TIMEOUT_SECS`, default 60); a store that refuses fails at once.
    pub store_connect_timeout: Duration,
}

impl WorkerConfig {
    /// # Errors
    /// When a value does not parse or is out of its range.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let consumer = env
            .optional("WORKER_CONSUMER")
            .unwrap_or_else(default_consumer);
        if consumer.len() > 128 || consumer.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                "WORKER_CONSUMER",
                "must be at most 128 characters without spaces",
            ));
        }
        let (addr_var, raw_addr) = match (env.optional("METRICS_ADDR"), env.optional("BIND_ADDR")) {
            (Some(addr), _) => ("METRICS_ADDR", addr),
            (None, Some(addr)) => ("BIND_ADDR", addr),
            (None, None) => ("METRICS_ADDR", "0.0.0.0:9091".to_owned()),
        };
        let metrics_addr = raw_addr
            .parse()
            .map_err(|e| ConfigError::new(addr_var, format!("not a host:port address: {e}")))?;
        Ok(Self {
            batch_size: env.parse_in("WORKER_BATCH_SIZE", 100, 1..=10_000)?,
            block: Duration::from_millis(env.parse_in("WORKER_BLOCK_MS", 1_000, 1..=60_000)?),
            claim_idle: Duration::from_millis(env.parse_in(
                "CLAIM_IDLE_MS",
                30_000,
                100..=86_400_000,
            )?),
            max_deliveries: env.parse_in("MAX_DELIVERIES", 5, 1..=1_000)?,
            leaderboard_size: LeaderboardConfig::from_env(env)?.size,
            consumer,
            metrics_addr,
            rate_limit: RateLimit::from_env(env)?,
            store_connect_timeout: Duration::from_secs(env.parse_in(
                "STORE_CONNECT_TIMEOUT_SECS",
                60,
                1..=3_600,
            )?),
        })
    }

    /// The smallest dedupe window that is safe: one whole batch of a single user's events (a re-delivered
    /// batch is checked against ids written with it) plus twice what one user can enqueue between a
    /// delivery and its re-delivery (`burst + rate × claim idle time`).
    pub fn min_dedupe_window(&self) -> u64 {
        let per_idle = u64::from(self.rate_limit.per_sec)
            .saturating_mul(self.claim_idle.as_millis() as u64)
            .div_ceil(1_000);
        per_idle
            .saturating_add(u64::from(self.rate_limit.burst))
            .saturating_mul(2)
            .saturating_add(self.batch_size as u64)
    }

    /// Checks a store's dedupe window `K` against [`Self::min_dedupe_window`].
    ///
    /// # Errors
    /// When `K` is too small: a re-delivered event could be applied twice.
    pub fn check_dedupe_window(&self, window: u32) -> Result<(), ConfigError> {
        let min = self.min_dedupe_window();
        if u64::from(window) < min {
            return Err(ConfigError::new(
                "DEDUPE_WINDOW",
                format!(
                    "{window} is too small: must be at least {min} = WORKER_BATCH_SIZE + 2 × (RATE_LIMIT_BURST + \
                     RATE_LIMIT_PER_SEC × CLAIM_IDLE_MS / 1000) so a re-delivered event is still remembered"
                ),
            ));
        }
        Ok(())
    }
}

fn default_consumer() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sane_and_pass_the_dedupe_check() {
        let cfg = WorkerConfig::from_env(&Env::default()).unwrap();
        assert_eq!((cfg.batch_size, cfg.leaderboard_size), (100, 10));
        assert_eq!(cfg.min_dedupe_window(), 740);
        cfg.check_dedupe_window(crate::config::DEFAULT_DEDUPE_WINDOW)
            .unwrap();
        assert!(cfg.consumer.ends_with(&format!("-{}", std::process::id())));
        assert_eq!(cfg.store_connect_timeout, Duration::from_secs(60));
    }

    #[test]
    fn the_store_connect_timeout_is_bounded() {
        let env = Env::from_pairs([("STORE_CONNECT_TIMEOUT_SECS", "5")]);
        let cfg = WorkerConfig::from_env(&env).unwrap();
        assert_eq!(cfg.store_connect_timeout, Duration::from_secs(5));
        for bad in ["0", "3601", "soon"] {
            let env = Env::from_pairs([("STORE_CONNECT_TIMEOUT_SECS", bad)]);
            assert_eq!(
                WorkerConfig::from_env(&env).unwrap_err().var,
                "STORE_CONNECT_TIMEOUT_SECS"
            );
        }
    }

    #[test]
    fn a_window_below_rate_times_idle_is_refused() {
        let env = Env::from_pairs([("RATE_LIMIT_PER_SEC", "100"), ("CLAIM_IDLE_MS", "60000")]);
        let cfg = WorkerConfig::from_env(&env).unwrap();
        let err = cfg.check_dedupe_window(6_000).unwrap_err();
        assert_eq!(err.var, "DEDUPE_WINDOW");
        assert!(cfg.check_dedupe_window(12_140).is_ok());
    }

    #[test]
    fn a_window_smaller_than_one_batch_is_refused() {
        let env = Env::from_pairs([("WORKER_BATCH_SIZE", "5000")]);
        let cfg = WorkerConfig::from_env(&env).unwrap();
        assert_eq!(
            cfg.check_dedupe_window(1_000).unwrap_err().var,
            "DEDUPE_WINDOW"
        );
        assert!(cfg.check_dedupe_window(5_640).is_ok());
    }

    #[test]
    fn metrics_addr_falls_back_to_bind_addr() {
        let env = Env::from_pairs([("BIND_ADDR", "127.0.0.1:8089")]);
        let cfg = WorkerConfig::from_env(&env).unwrap();
        assert_eq!(cfg.metrics_addr.port(), 8089);
        let env = Env::from_pairs([("METRICS_ADDR", "nope")]);
        assert_eq!(
            WorkerConfig::from_env(&env).unwrap_err().var,
            "METRICS_ADDR"
        );
    }
}
