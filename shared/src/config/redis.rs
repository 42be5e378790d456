//! Where Redis is and how long to wait for it.

use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, Env};

/// `REDIS_URL` (`redis://` or `rediss://` for TLS) and client timeouts.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// May hold a password, so it is kept secret.
    pub url: SecretString,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// PEM root certificate(s) to trust for `rediss://` instead of the public roots (`REDIS_CA_CERT_FILE`).
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl RedisConfig {
    /// # Errors
    /// When `REDIS_URL` is missing or not a `redis://`/`rediss://` URL, or a timeout is out of range.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let url = env.required("REDIS_URL")?;
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(ConfigError::new(
                "REDIS_URL",
                "must start with redis:// or rediss://",
            ));
        }
        if redis::Client::open(url.as_str()).is_err() {
            return Err(ConfigError::new("REDIS_URL", "is not a valid Redis URL"));
        }
        let connect_ms = env.parse_in("REDIS_CONNECT_TIMEOUT_MS", 1_000u64, 10..=60_000)?;
        let response_ms = env.parse_in("REDIS_RESPONSE_TIMEOUT_MS", 1_000u64, 10..=60_000)?;
        let ca_cert_pem = match env.optional("REDIS_CA_CERT_FILE") {
            None => None,
            Some(path) => Some(std::fs::read(&path).map_err(|e| {
                ConfigError::new("REDIS_CA_CERT_FILE", format!("cannot read {path}: {e}"))
            })?),
        };
        Ok(Self {
            ca_cert_pem,
            url: url.into(),
            connect_timeout: Duration::from_millis(connect_ms),
            response_timeout: Duration::from_millis(response_ms),
        })
    }
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
    fn accepts_tls_urls() {
        let env = Env::from_pairs([("REDIS_URL", "rediss://cache.example.com:6379")]);
        assert!(RedisConfig::from_env(&env).is_ok());
    }
}
