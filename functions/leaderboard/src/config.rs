//! The leaderboard function's configuration, read once at start: the board size and the partition count
//! it shares with the worker and the update function (both parsed by `shared`).

use scoreboard_shared::config::{ConfigError, Env, LeaderboardConfig, PartitionsConfig};

/// `LEADERBOARD_SIZE` and `PARTITIONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub board: LeaderboardConfig,
    pub partitions: PartitionsConfig,
}

impl Config {
    /// # Errors
    /// The first invalid value, naming its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            board: LeaderboardConfig::from_env(env)?,
            partitions: PartitionsConfig::from_env(env)?,
        })
    }
}
