//! The worker's configuration: its own settings ([`WorkerConfig`]), which store it writes to
//! ([`StoreConfig`]), and the shared Redis, rate-limit and board-size types it agrees on with the
//! functions.

mod store;
mod worker;

pub use scoreboard_shared::config::{ConfigError, Env};
pub use store::{MongoConfig, StoreConfig};
pub use worker::WorkerConfig;
