//! What crosses components, and nothing else: the contract every scoreboard binary agrees on.
//!
//! - [`config`]: reading the environment ([`config::Env`], [`config::ConfigError`]) and the settings two
//!   components must agree on, each parsed by one type: Redis ([`config::RedisConfig`]), JWT
//!   ([`config::AuthConfig`]), the rate limit ([`config::RateLimit`]) and the board size
//!   ([`config::LeaderboardConfig`]).
//! - [`auth`]: JWT verification (HS256, PEM keys, JWKS) shared by both functions and the SSE server.
//! - [`problem`]: every error mapped to RFC 9457 problem+json in one place; [`http_util`] builds responses.
//! - [`redis`]: the Redis layout (keys, the stream entry schema) and client construction.
//! - [`snapshot`]: the leaderboard JSON stored, published, returned and pushed.
//! - [`secrets`]: the functions' secrets, read at init through the AWS Parameters and Secrets Lambda Extension.
//! - [`emf`]: the Lambdas' counters as CloudWatch Embedded Metric Format log lines.
//! - [`shutdown`], [`backoff`], [`logging`], [`telemetry`], [`tls`], [`request_id`]: process plumbing
//!   written once.
//!
//! Each deployable owns the rest: the functions their handlers and scripts (`functions/*`), the worker
//! the store port, its adapters and the drain loop (`worker/`), the SSE server its fan-out (`sse/`).

pub mod auth;
pub mod backoff;
pub mod config;
pub mod emf;
pub mod http_util;
pub mod logging;
pub mod partition;
pub mod problem;
pub mod redis;
pub mod request_id;
pub mod secrets;
pub mod shutdown;
pub mod snapshot;
pub mod telemetry;
pub mod tls;
