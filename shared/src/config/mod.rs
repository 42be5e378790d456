//! Typed configuration read once from the environment; a missing or bad value stops start-up with a message
//! naming the variable. Each component composes the sections it needs.

mod auth;
mod dynamo;
mod env;
mod leaderboard;
mod redis;
mod store;
mod update;
mod worker;

pub use auth::{AuthConfig, JwtKeySource};
pub use dynamo::{DEFAULT_MARKER_TTL, DynamoConfig, StaticCredentials};
pub use env::{ConfigError, Env};
pub use leaderboard::LeaderboardConfig;
pub use redis::RedisConfig;
pub use store::{DEFAULT_DEDUPE_WINDOW, MongoConfig, StoreConfig};
pub use update::UpdateConfig;
pub use worker::WorkerConfig;
