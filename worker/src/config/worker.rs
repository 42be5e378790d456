//! Settings of the worker: partitions and their leases, batch shape, the merger's pacing, replication
//! waits, board size, its id and metrics address, and how long start-up waits for the store.

use std::net::SocketAddr;
use std::time::Duration;

use scoreboard_shared::config::{ConfigError, Env, LeaderboardConfig, PartitionsConfig};

/// How the worker owns partitions and drains them.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Entries per `XREAD COUNT` (`WORKER_BATCH_SIZE`, default 100).
    pub batch_size: usize,
    /// How long one read blocks when the stream is empty (`WORKER_BLOCK_MS`, default 1000, at most a
    /// quarter of the lease TTL).
    pub block: Duration,
    /// Rows in the snapshot (`LEADERBOARD_SIZE`, default 10).
    pub leaderboard_size: usize,
    /// Where `/healthz` and `/metrics` listen (`METRICS_ADDR`, else `BIND_ADDR`, default `0.0.0.0:9091`).
    pub metrics_addr: SocketAddr,
    /// How long start-up waits for an unreachable store before exiting non-zero
    /// (`STORE_CONNECT_TIMEOUT_SECS`, default 60); a store that refuses fails at once.
    pub store_connect_timeout: Duration,
    /// How users are spread over partitions (`PARTITIONS`, shared with the functions).
    pub partitions: PartitionsConfig,
    /// The partition generation written into watermarks (`PARTITION_GENERATION`, default 1; bumped when
    /// `PARTITIONS` changes, after every stream was drained).
    pub generation: u32,
    /// This worker's id in leases (`WORKER_ID`, default `<hostname>-<pid>`).
    pub worker_id: String,
    /// Lease time to live (`LEASE_TTL_MS`, default 10,000): a dead worker's partitions resume within
    /// about this long plus one scan. Leases are renewed every third of it and scanned every quarter.
    pub lease_ttl: Duration,
    /// Replicas that must have an entry before the store is written (`REDIS_MIN_REPLICAS`, default 0:
    /// standalone Redis relies on AOF `appendfsync always`).
    pub min_replicas: u32,
    /// How long one `WAIT` for those replicas may take (`REDIS_WAIT_TIMEOUT_MS`, default 1,000).
    pub wait_timeout: Duration,
    /// At most one merge per this interval during a burst (`MERGE_INTERVAL_MS`, default 10).
    pub merge_interval: Duration,
    /// The merger also merges this often, in case a notification was lost (`MERGE_POLL_MS`, default 1,000).
    pub merge_poll: Duration,
}

impl WorkerConfig {
    /// # Errors
    /// When a value does not parse or is out of its range.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let worker_id = env.optional("WORKER_ID").unwrap_or_else(default_worker_id);
        if worker_id.len() > 128
            || worker_id.contains(char::is_whitespace)
            || worker_id.contains('|')
        {
            return Err(ConfigError::new(
                "WORKER_ID",
                "must be at most 128 characters without spaces or '|'",
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
        let lease_ttl =
            Duration::from_millis(env.parse_in("LEASE_TTL_MS", 10_000, 1_000..=600_000)?);
        Ok(Self {
            batch_size: env.parse_in("WORKER_BATCH_SIZE", 100, 1..=10_000)?,
            // A blocked read must never outlast a lease renewal period.
            block: Duration::from_millis(env.parse_in("WORKER_BLOCK_MS", 1_000, 1..=60_000)?)
                .min(lease_ttl / 4),
            leaderboard_size: LeaderboardConfig::from_env(env)?.size,
            metrics_addr,
            store_connect_timeout: Duration::from_secs(env.parse_in(
                "STORE_CONNECT_TIMEOUT_SECS",
                60,
                1..=3_600,
            )?),
            partitions: PartitionsConfig::from_env(env)?,
            generation: env.parse_in("PARTITION_GENERATION", 1, 1..=1_000_000)?,
            worker_id,
            lease_ttl,
            min_replicas: env.parse_in("REDIS_MIN_REPLICAS", 0, 0..=16)?,
            wait_timeout: Duration::from_millis(env.parse_in(
                "REDIS_WAIT_TIMEOUT_MS",
                1_000,
                1..=60_000,
            )?),
            merge_interval: Duration::from_millis(env.parse_in(
                "MERGE_INTERVAL_MS",
                10,
                1..=10_000,
            )?),
            merge_poll: Duration::from_millis(env.parse_in(
                "MERGE_POLL_MS",
                1_000,
                10..=600_000,
            )?),
        })
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace) && !h.contains('|'))
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let cfg = WorkerConfig::from_env(&Env::default()).unwrap();
        assert_eq!((cfg.batch_size, cfg.leaderboard_size), (100, 10));
        assert_eq!(cfg.partitions.count, 16);
        assert_eq!(cfg.lease_ttl, Duration::from_secs(10));
        assert_eq!(cfg.block, Duration::from_secs(1));
        assert_eq!(cfg.generation, 1);
        assert_eq!(cfg.min_replicas, 0);
        assert_eq!(
            (cfg.merge_interval, cfg.merge_poll),
            (Duration::from_millis(10), Duration::from_secs(1))
        );
        assert!(cfg.worker_id.ends_with(&format!("-{}", std::process::id())));
        assert_eq!(cfg.store_connect_timeout, Duration::from_secs(60));
    }

    #[test]
    fn a_read_never_blocks_past_a_quarter_of_the_lease() {
        let env = Env::from_pairs([("LEASE_TTL_MS", "2000"), ("WORKER_BLOCK_MS", "5000")]);
        let cfg = WorkerConfig::from_env(&env).unwrap();
        assert_eq!(cfg.block, Duration::from_millis(500));
    }

    #[test]
    fn out_of_range_values_name_their_variable() {
        for (var, bad) in [
            ("LEASE_TTL_MS", "5"),
            ("PARTITIONS", "0"),
            ("PARTITION_GENERATION", "0"),
            ("REDIS_MIN_REPLICAS", "17"),
            ("MERGE_POLL_MS", "1"),
            ("WORKER_ID", "a|b"),
            ("WORKER_ID", "has space"),
            ("STORE_CONNECT_TIMEOUT_SECS", "0"),
            ("STORE_CONNECT_TIMEOUT_SECS", "soon"),
        ] {
            let env = Env::from_pairs([(var, bad)]);
            assert_eq!(
                WorkerConfig::from_env(&env).unwrap_err().var,
                var,
                "{var}={bad}"
            );
        }
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
