//! The update function's own settings: increment bound, backlog bound, idempotency window, required scope,
//! and the shared per-user rate limit.

use std::time::Duration;

use scoreboard_shared::config::{ConfigError, Env, PartitionsConfig, RateLimit};
use scoreboard_shared::redis::enqueue::{EnqueueLimits, ReplicaWait};

/// What the update function accepts and how fast.
#[derive(Debug, Clone)]
pub struct UpdateConfig {
    /// Largest accepted `scoreIncrement` (`MAX_SCORE_INCREMENT`, default 100).
    pub max_increment: u32,
    /// The per-user rate limit (the worker sizes its checks from the same type).
    pub rate_limit: RateLimit,
    /// How users are spread over partitions (`PARTITIONS`, shared with the worker).
    pub partitions: PartitionsConfig,
    /// Length of a partition's stream above which its users' updates are refused with 503
    /// (`STREAM_MAX_BACKLOG`, default 1,000,000).
    pub max_backlog: u64,
    /// How long an `Idempotency-Key` is remembered (`IDEMPOTENCY_TTL_SECS`, default 24 h).
    pub idempotency_ttl: Duration,
    /// Scope the token must carry, when set (`UPDATE_REQUIRED_SCOPE`).
    pub required_scope: Option<String>,
    /// Replicas an update must reach before its `202` (`UPDATE_WAIT_REPLICAS`, default 0: none) within
    /// `UPDATE_WAIT_TIMEOUT_MS` (default 200); short of them the answer is `503 not-replicated`.
    pub replica_wait: Option<ReplicaWait>,
}

impl UpdateConfig {
    /// # Errors
    /// When a value does not parse or is out of its range.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let required_scope = env.optional("UPDATE_REQUIRED_SCOPE");
        if let Some(scope) = &required_scope
            && (scope.contains(char::is_whitespace) || !scope.is_ascii())
        {
            return Err(ConfigError::new(
                "UPDATE_REQUIRED_SCOPE",
                "must be one ASCII scope token",
            ));
        }
        Ok(Self {
            max_increment: env.parse_in("MAX_SCORE_INCREMENT", 100, 1..=1_000_000)?,
            rate_limit: RateLimit::from_env(env)?,
            partitions: PartitionsConfig::from_env(env)?,
            max_backlog: env.parse_in("STREAM_MAX_BACKLOG", 1_000_000, 1..=1_000_000_000)?,
            idempotency_ttl: Duration::from_secs(env.parse_in(
                "IDEMPOTENCY_TTL_SECS",
                86_400,
                60..=7 * 86_400,
            )?),
            required_scope,
            replica_wait: replica_wait(env)?,
        })
    }
}

fn replica_wait(env: &Env) -> Result<Option<ReplicaWait>, ConfigError> {
    let replicas: u32 = env.parse_in("UPDATE_WAIT_REPLICAS", 0, 0..=16)?;
    // `WAIT` with a timeout of 0 blocks for ever: the range starts at 1.
    let timeout_ms: u64 = env.parse_in("UPDATE_WAIT_TIMEOUT_MS", 200, 1..=10_000)?;
    // A `WAIT` outlasting the client's response timeout would fail as `unavailable`, never as
    // `not-replicated`: refuse the combination at start.
    let response_ms = scoreboard_shared::config::response_timeout_ms(env)?;
    if replicas > 0 && timeout_ms >= response_ms {
        return Err(ConfigError::new(
            "UPDATE_WAIT_TIMEOUT_MS",
            format!("must be below REDIS_RESPONSE_TIMEOUT_MS ({response_ms} ms)"),
        ));
    }
    Ok((replicas > 0).then(|| ReplicaWait {
        replicas,
        timeout: Duration::from_millis(timeout_ms),
    }))
}

impl UpdateConfig {
    /// What the enqueue script enforces.
    pub fn enqueue_limits(&self) -> EnqueueLimits {
        EnqueueLimits {
            rate_per_sec: self.rate_limit.per_sec,
            burst: self.rate_limit.burst,
            max_backlog: self.max_backlog,
            idempotency_ttl: self.idempotency_ttl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let cfg = UpdateConfig::from_env(&Env::default()).unwrap();
        assert_eq!(cfg.max_increment, 100);
        assert_eq!((cfg.rate_limit.per_sec, cfg.rate_limit.burst), (10, 20));
        assert_eq!(cfg.idempotency_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn replica_wait_is_off_by_default_and_validated() {
        assert_eq!(
            UpdateConfig::from_env(&Env::default())
                .unwrap()
                .replica_wait,
            None
        );
        let on = Env::from_pairs([
            ("UPDATE_WAIT_REPLICAS", "2"),
            ("UPDATE_WAIT_TIMEOUT_MS", "50"),
        ]);
        assert_eq!(
            UpdateConfig::from_env(&on).unwrap().replica_wait,
            Some(ReplicaWait {
                replicas: 2,
                timeout: Duration::from_millis(50)
            })
        );
        for (var, value) in [
            ("UPDATE_WAIT_REPLICAS", "17"),
            ("UPDATE_WAIT_REPLICAS", "-1"),
            ("UPDATE_WAIT_REPLICAS", "one"),
            ("UPDATE_WAIT_TIMEOUT_MS", "0"),
            ("UPDATE_WAIT_TIMEOUT_MS", "10001"),
        ] {
            let env = Env::from_pairs([("UPDATE_WAIT_REPLICAS", "1"), (var, value)]);
            assert_eq!(
                UpdateConfig::from_env(&env).unwrap_err().var,
                var,
                "{var}={value}"
            );
        }
    }

    #[test]
    fn zero_rate_is_rejected() {
        let env = Env::from_pairs([("RATE_LIMIT_PER_SEC", "0")]);
        assert_eq!(
            UpdateConfig::from_env(&env).unwrap_err().var,
            "RATE_LIMIT_PER_SEC"
        );
    }

    #[test]
    fn a_replica_wait_as_long_as_the_redis_response_timeout_is_refused() {
        let env = Env::from_pairs([
            ("UPDATE_WAIT_REPLICAS", "1"),
            ("UPDATE_WAIT_TIMEOUT_MS", "1000"),
        ]);
        let error = UpdateConfig::from_env(&env).unwrap_err();
        assert_eq!(error.var, "UPDATE_WAIT_TIMEOUT_MS");
        assert!(
            error.to_string().contains("REDIS_RESPONSE_TIMEOUT_MS"),
            "{error}"
        );
        let longer = Env::from_pairs([
            ("UPDATE_WAIT_REPLICAS", "1"),
            ("UPDATE_WAIT_TIMEOUT_MS", "1000"),
            ("REDIS_RESPONSE_TIMEOUT_MS", "1500"),
        ]);
        assert!(
            UpdateConfig::from_env(&longer)
                .unwrap()
                .replica_wait
                .is_some()
        );
    }
}
