//! The per-user rate limit: enforced by the update function, and relied on by the worker's dedupe-window
//! check. One type parses it so the two can never disagree.

use super::{ConfigError, Env};

/// `RATE_LIMIT_PER_SEC` (default 10) sustained, `RATE_LIMIT_BURST` (default 20) at once, per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_sec: u32,
    pub burst: u32,
}

impl RateLimit {
    /// # Errors
    /// When either value does not parse or is out of its range.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            per_sec: env.parse_in("RATE_LIMIT_PER_SEC", 10, 1..=10_000)?,
            burst: env.parse_in("RATE_LIMIT_BURST", 20, 1..=100_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let limit = RateLimit::from_env(&Env::default()).unwrap();
        assert_eq!((limit.per_sec, limit.burst), (10, 20));
    }

    #[test]
    fn zero_rate_and_zero_burst_are_rejected() {
        let env = Env::from_pairs([("RATE_LIMIT_PER_SEC", "0")]);
        assert_eq!(
            RateLimit::from_env(&env).unwrap_err().var,
            "RATE_LIMIT_PER_SEC"
        );
        let env = Env::from_pairs([("RATE_LIMIT_BURST", "0")]);
        assert_eq!(
            RateLimit::from_env(&env).unwrap_err().var,
            "RATE_LIMIT_BURST"
        );
    }
}
