//! How many rows the board shows: the worker ranks and the functions answer with the same size.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_rows_by_default_and_zero_is_refused() {
        assert_eq!(
            LeaderboardConfig::from_env(&Env::default()).unwrap().size,
            10
        );
        let env = Env::from_pairs([("LEADERBOARD_SIZE", "0")]);
        assert_eq!(
            LeaderboardConfig::from_env(&env).unwrap_err().var,
            "LEADERBOARD_SIZE"
        );
    }
}
