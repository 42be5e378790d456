//! Where Redis is (one standalone server, or the seed nodes of a Redis Cluster) and how long to wait
//! for it.

use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, Env};

/// `REDIS_URL` (`redis://` or `rediss://` for TLS), `REDIS_CLUSTER` and client timeouts.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// May hold a password, so it is kept secret. On a cluster: one or more seed nodes, comma-separated.
    pub url: SecretString,
    /// `REDIS_CLUSTER=true`: every component uses the cluster client (`docs/design.md` §6).
    pub cluster: bool,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// PEM root certificate(s) to trust for `rediss://` instead of the public roots (`REDIS_CA_CERT_FILE`).
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl RedisConfig {
    /// # Errors
    /// When `REDIS_URL` is missing or not a `redis://`/`rediss://` URL (a list of them on a cluster, all
    /// with the same scheme), or a timeout is out of range.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let url = env.required("REDIS_URL")?;
        let cluster = env.flag("REDIS_CLUSTER", false)?;
        let seeds: Vec<&str> = url.split(',').map(str::trim).collect();
        if seeds.len() > 1 && !cluster {
            return Err(ConfigError::new(
                "REDIS_URL",
                "names several nodes; that is only for REDIS_CLUSTER=true",
            ));
        }
        for seed in &seeds {
            if !(seed.starts_with("redis://") || seed.starts_with("rediss://")) {
                return Err(ConfigError::new(
                    "REDIS_URL",
                    "must start with redis:// or rediss://",
                ));
            }
            if redis::Client::open(*seed).is_err() {
                return Err(ConfigError::new("REDIS_URL", "is not a valid Redis URL"));
            }
        }
        if seeds.iter().any(|s| s.starts_with("rediss://"))
            && !seeds.iter().all(|s| s.starts_with("rediss://"))
        {
            return Err(ConfigError::new(
                "REDIS_URL",
                "mixes redis:// and rediss:// seed nodes",
            ));
        }
        let connect_ms = env.parse_in("REDIS_CONNECT_TIMEOUT_MS", 1_000u64, 10..=60_000)?;
        let response_ms = response_timeout_ms(env)?;
        let ca_cert_pem = match env.optional("REDIS_CA_CERT_FILE") {
            None => None,
            Some(path) => Some(std::fs::read(&path).map_err(|e| {
                ConfigError::new("REDIS_CA_CERT_FILE", format!("cannot read {path}: {e}"))
            })?),
        };
        Ok(Self {
            ca_cert_pem,
            cluster,
            url: url.into(),
            connect_timeout: Duration::from_millis(connect_ms),
            response_timeout: Duration::from_millis(response_ms),
        })
    }
}

/// `REDIS_RESPONSE_TIMEOUT_MS` (default 1,000): how long a command may take before it fails as unavailable.
/// Also read by settings that must stay below it (the update function's `UPDATE_WAIT_TIMEOUT_MS`).
///
/// # Errors
/// When it is not a number of milliseconds in 10..=60,000.
pub fn response_timeout_ms(env: &Env) -> Result<u64, ConfigError> {
    env.parse_in("REDIS_RESPONSE_TIMEOUT_MS", 1_000u64, 10..=60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_other_schemes_without_echoing_the_url() {
        let env = Env::from_pairs([("REDIS_URL", "http://user:hunter2@host")]);
        let err = RedisConfig::from_env(&env).unwrap_err();
        assert_eq!(err.var, "REDIS_URL");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn unreadable_ca_file_is_named() {
        let env = Env::from_pairs([
            ("REDIS_URL", "rediss://cache.example.com:6379"),
            ("REDIS_CA_CERT_FILE", "/nonexistent/ca.pem"),
        ]);
        assert_eq!(
            RedisConfig::from_env(&env).unwrap_err().var,
            "REDIS_CA_CERT_FILE"
        );
    }

    #[test]
    fn several_seeds_need_cluster_mode() {
        let seeds = "redis://127.0.0.1:7000,redis://127.0.0.1:7001";
        let env = Env::from_pairs([("REDIS_URL", seeds)]);
        assert_eq!(RedisConfig::from_env(&env).unwrap_err().var, "REDIS_URL");
        let cluster = RedisConfig::from_env(&env.with("REDIS_CLUSTER", "true")).unwrap();
        assert!(cluster.cluster);
    }

    #[test]
    fn every_seed_is_checked_and_tls_is_all_or_nothing() {
        for bad in [
            "redis://127.0.0.1:7000,http://127.0.0.1:7001",
            "rediss://a.example.com:6379,redis://b.example.com:6379",
        ] {
            let env = Env::from_pairs([("REDIS_URL", bad), ("REDIS_CLUSTER", "true")]);
            assert_eq!(RedisConfig::from_env(&env).unwrap_err().var, "REDIS_URL");
        }
        let env = Env::from_pairs([("REDIS_URL", "redis://h:1"), ("REDIS_CLUSTER", "maybe")]);
        assert_eq!(
            RedisConfig::from_env(&env).unwrap_err().var,
            "REDIS_CLUSTER"
        );
    }

    #[test]
    fn accepts_tls_urls() {
        let env = Env::from_pairs([("REDIS_URL", "rediss://cache.example.com:6379")]);
        assert!(RedisConfig::from_env(&env).is_ok());
    }
}
