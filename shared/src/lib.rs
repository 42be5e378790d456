//! The library every scoreboard binary uses: configuration, JWT auth, validation, problem+json errors,
//! the Redis layout and scripts, the snapshot type and the score stores.

pub mod auth;
pub mod config;
pub mod http_util;
pub mod keys;
pub mod leaderboard;
pub mod logging;
pub mod problem;
pub mod redis_client;
pub mod request_id;
pub mod shutdown;
pub mod snapshot;
pub mod store;
#[cfg(feature = "prometheus")]
pub mod telemetry;
pub mod tls;
pub mod update;
