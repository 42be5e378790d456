//! Typed configuration read once from the environment; a missing or bad value stops start-up with a message
//! naming the variable. Each component composes its own sections with the shared ones here: the settings
//! two components must agree on are parsed by exactly one type.

mod auth;
mod env;
mod leaderboard;
mod partitions;
mod rate_limit;
mod redis;

pub use auth::{AuthConfig, JwtKeySource};
pub use env::{ConfigError, Env};
pub use leaderboard::LeaderboardConfig;
pub use partitions::{MAX_PARTITIONS, PartitionsConfig};
pub use rate_limit::RateLimit;
pub use redis::{RedisConfig, response_timeout_ms};
