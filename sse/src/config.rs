//! The SSE container's configuration, read once from the environment; a bad value stops start-up with a
//! message naming the variable. Dev mode is off unless `DEV_MODE=true` is set explicitly.

use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderValue;
use scoreboard_shared::config::{AuthConfig, ConfigError, Env, JwtKeySource, RedisConfig};
use secrecy::SecretString;

/// Which browser origins may read the stream cross-origin (`CORS_ALLOWED_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Unset: no CORS headers, same-origin only.
    Off,
    /// `*`: any origin (tokens travel in headers or the query, never cookies, so this is safe-ish).
    Any,
    /// A comma-separated list of exact origins (`https://app.example.com`).
    List(Vec<HeaderValue>),
}

/// Dev-only switches (`DEV_MODE=true`): the demo token endpoint and the update proxy.
#[derive(Debug, Clone)]
pub struct DevConfig {
    /// HS256 secret used to mint demo tokens (the same `JWT_SECRET` the functions verify with).
    pub jwt_secret: SecretString,
    /// `DEV_UPDATE_URL`: the update function's full URL the demo button posts to (via `/dev/update`).
    pub update_url: Option<String>,
    /// How long a demo token lives (`DEV_TOKEN_TTL_SECS`, default 3600).
    pub token_ttl: Duration,
}

/// Everything the SSE server needs.
#[derive(Debug, Clone)]
pub struct SseConfig {
    /// `BIND_ADDR` (default `0.0.0.0:8080`): the public listener (stream, demo page, `/healthz`).
    pub bind_addr: SocketAddr,
    /// `METRICS_ADDR` (default `0.0.0.0:9092`): the private listener serving `/metrics` only. Not routed by
    /// the load balancer; must not share `BIND_ADDR`'s port.
    pub metrics_addr: SocketAddr,
    pub redis: RedisConfig,
    pub auth: AuthConfig,
    /// `SSE_MAX_CONNECTIONS`: open streams per process (default 10,000); over it → `503`.
    pub max_connections: usize,
    /// `SSE_MAX_CONNECTIONS_PER_USER`: open streams per user per process (default 5); over it → `429`.
    pub max_connections_per_user: usize,
    /// `SSE_HEARTBEAT_SECS`: comment heartbeat interval (default 15).
    pub heartbeat: Duration,
    /// `SSE_RETRY_MS`: the `retry:` hint sent to browsers (default 2000).
    pub retry: Duration,
    /// `SSE_MAX_STREAM_SECS`: the longest a stream lives (default 3600, 10..=86400); a stream also ends at
    /// its token's `exp`, whichever comes first.
    pub max_stream: Duration,
    /// `SSE_PUBSUB_PING_SECS`: how often the Pub/Sub connection is pinged (default 5, 1..=60).
    pub pubsub_ping: Duration,
    /// `SSE_PUBSUB_PING_TIMEOUT_MS`: a pong later than this means the link is dead (default 3000,
    /// 100..=60000).
    pub pubsub_ping_timeout: Duration,
    /// `SSE_UNHEALTHY_AFTER_SECS`: `/healthz` answers `503` once the process has been without a live
    /// subscription this long (default 5, 1..=300).
    pub unhealthy_after: Duration,
    pub cors: CorsOrigins,
    /// `Some` only when `DEV_MODE=true`.
    pub dev: Option<DevConfig>,
}

impl SseConfig {
    /// # Errors
    /// When a variable is missing, does not parse, or is out of range.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let bind_addr = env.parse_or("BIND_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?;
        let metrics_addr = env.parse_or("METRICS_ADDR", SocketAddr::from(([0, 0, 0, 0], 9092)))?;
        if metrics_addr.port() != 0 && metrics_addr.port() == bind_addr.port() {
            return Err(ConfigError::new(
                "METRICS_ADDR",
                "must not use BIND_ADDR's port: /metrics is served on its own, unrouted listener",
            ));
        }
        let auth = AuthConfig::from_env(env)?;
        let dev = if env.flag("DEV_MODE", false)? {
            Some(dev_config(env, &auth)?)
        } else {
            None
        };
        Ok(Self {
            bind_addr,
            metrics_addr,
            redis: RedisConfig::from_env(env)?,
            max_connections: env.parse_in("SSE_MAX_CONNECTIONS", 10_000, 1..=1_000_000)?,
            max_connections_per_user: env.parse_in(
                "SSE_MAX_CONNECTIONS_PER_USER",
                5,
                1..=1_000_000,
            )?,
            heartbeat: Duration::from_secs(env.parse_in("SSE_HEARTBEAT_SECS", 15, 1..=300)?),
            retry: Duration::from_millis(env.parse_in("SSE_RETRY_MS", 2_000, 100..=60_000)?),
            max_stream: Duration::from_secs(env.parse_in(
                "SSE_MAX_STREAM_SECS",
                3_600,
                10..=86_400,
            )?),
            pubsub_ping: Duration::from_secs(env.parse_in("SSE_PUBSUB_PING_SECS", 5, 1..=60)?),
            pubsub_ping_timeout: Duration::from_millis(env.parse_in(
                "SSE_PUBSUB_PING_TIMEOUT_MS",
                3_000,
                100..=60_000,
            )?),
            unhealthy_after: Duration::from_secs(env.parse_in(
                "SSE_UNHEALTHY_AFTER_SECS",
                5,
                1..=300,
            )?),
            cors: cors_origins(env)?,
            auth,
            dev,
        })
    }
}

fn dev_config(env: &Env, auth: &AuthConfig) -> Result<DevConfig, ConfigError> {
    let JwtKeySource::Hs256(secret) = &auth.key else {
        return Err(ConfigError::new(
            "DEV_MODE",
            "needs JWT_SECRET (HS256) to mint demo tokens",
        ));
    };
    let update_url = env.optional("DEV_UPDATE_URL");
    if let Some(url) = &update_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(ConfigError::new("DEV_UPDATE_URL", "must be an http(s) URL"));
    }
    Ok(DevConfig {
        jwt_secret: secret.clone(),
        update_url,
        token_ttl: Duration::from_secs(env.parse_in("DEV_TOKEN_TTL_SECS", 3_600, 60..=86_400)?),
    })
}

fn cors_origins(env: &Env) -> Result<CorsOrigins, ConfigError> {
    let Some(raw) = env.optional("CORS_ALLOWED_ORIGINS") else {
        return Ok(CorsOrigins::Off);
    };
    if raw == "*" {
        return Ok(CorsOrigins::Any);
    }
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin
                    .trim_end_matches('/')
                    .contains(|c: char| c.is_whitespace())
                && origin.split('/').count() == 3;
            valid
                .then(|| HeaderValue::from_str(origin).ok())
                .flatten()
                .ok_or_else(|| {
                    ConfigError::new(
                        "CORS_ALLOWED_ORIGINS",
                        format!("{origin:?} is not an origin like https://app.example.com"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(CorsOrigins::List)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn env(extra: &[(&str, &str)]) -> Env {
        let mut pairs = vec![
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("JWT_SECRET", SECRET),
        ];
        pairs.extend_from_slice(extra);
        Env::from_pairs(pairs)
    }

    #[test]
    fn defaults_match_the_contract() {
        let cfg = SseConfig::from_env(&env(&[])).unwrap();
        assert_eq!(cfg.heartbeat, Duration::from_secs(15));
        assert_eq!(cfg.max_stream, Duration::from_secs(3_600));
        assert_eq!(cfg.pubsub_ping, Duration::from_secs(5));
        assert_eq!(cfg.pubsub_ping_timeout, Duration::from_secs(3));
        assert_eq!(cfg.unhealthy_after, Duration::from_secs(5));
        assert_eq!(cfg.metrics_addr, SocketAddr::from(([0, 0, 0, 0], 9092)));
        assert_eq!(cfg.max_connections, 10_000);
        assert_eq!(cfg.cors, CorsOrigins::Off);
        assert!(cfg.dev.is_none(), "dev mode must be off by default");
    }

    #[test]
    fn dev_mode_is_explicit_and_needs_an_hs256_secret() {
        let cfg = SseConfig::from_env(&env(&[("DEV_MODE", "true")])).unwrap();
        assert!(cfg.dev.is_some());
        let jwks = Env::from_pairs([
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("JWT_JWKS_URL", "https://example.com/jwks.json"),
            ("DEV_MODE", "true"),
        ]);
        assert_eq!(SseConfig::from_env(&jwks).unwrap_err().var, "DEV_MODE");
    }

    #[test]
    fn cors_origins_are_validated() {
        let cfg = SseConfig::from_env(&env(&[(
            "CORS_ALLOWED_ORIGINS",
            "http://localhost:3000, https://a.b",
        )]))
        .unwrap();
        assert!(matches!(cfg.cors, CorsOrigins::List(ref l) if l.len() == 2));
        let bad = SseConfig::from_env(&env(&[("CORS_ALLOWED_ORIGINS", "localhost:3000/x")]));
        assert_eq!(bad.unwrap_err().var, "CORS_ALLOWED_ORIGINS");
        let any = SseConfig::from_env(&env(&[("CORS_ALLOWED_ORIGINS", "*")])).unwrap();
        assert_eq!(any.cors, CorsOrigins::Any);
    }

    #[test]
    fn heartbeat_is_bounded() {
        let err = SseConfig::from_env(&env(&[("SSE_HEARTBEAT_SECS", "0")])).unwrap_err();
        assert_eq!(err.var, "SSE_HEARTBEAT_SECS");
    }

    #[test]
    fn stream_lifetime_and_liveness_settings_are_bounded() {
        for (var, bad) in [
            ("SSE_MAX_STREAM_SECS", "9"),
            ("SSE_MAX_STREAM_SECS", "86401"),
            ("SSE_MAX_STREAM_SECS", "1h"),
            ("SSE_PUBSUB_PING_SECS", "0"),
            ("SSE_PUBSUB_PING_TIMEOUT_MS", "99"),
            ("SSE_UNHEALTHY_AFTER_SECS", "0"),
            ("SSE_UNHEALTHY_AFTER_SECS", "301"),
        ] {
            let err = SseConfig::from_env(&env(&[(var, bad)])).unwrap_err();
            assert_eq!(err.var, var, "{var}={bad}");
        }
        let cfg = SseConfig::from_env(&env(&[("SSE_MAX_STREAM_SECS", "10")])).unwrap();
        assert_eq!(cfg.max_stream, Duration::from_secs(10));
    }

    #[test]
    fn metrics_listen_apart_from_the_public_port() {
        let err = SseConfig::from_env(&env(&[
            ("BIND_ADDR", "0.0.0.0:8080"),
            ("METRICS_ADDR", "127.0.0.1:8080"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "METRICS_ADDR");
        let bad = SseConfig::from_env(&env(&[("METRICS_ADDR", "9092")])).unwrap_err();
        assert_eq!(bad.var, "METRICS_ADDR");
        let cfg = SseConfig::from_env(&env(&[
            ("BIND_ADDR", "127.0.0.1:0"),
            ("METRICS_ADDR", "127.0.0.1:0"),
        ]))
        .unwrap();
        assert_eq!(cfg.metrics_addr.port(), 0, "port 0 (tests) may repeat");
    }
}
