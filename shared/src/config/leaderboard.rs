//! How many rows the board shows.

use super::{ConfigError, Env};

/// `LEADERBOARD_SIZE` (default 10): rows in a snapshot and in leaderboard answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderboardConfig {
    pub size: usize,
}

impl LeaderboardConfig {
    /// # Errors
    /// When `LEADERBOARD_SIZE` is not an integer in `1..=1000`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            size: env.parse_in("LEADERBOARD_SIZE", 10, 1..=1_000)?,
        })
    }
}
