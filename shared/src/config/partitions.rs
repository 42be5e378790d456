//! `PARTITIONS`: how many partitions the users are spread over. The update function, the worker and the
//! leaderboard function must agree on it, so it is parsed here and nowhere else.

use super::{ConfigError, Env};
use crate::partition::Partitioner;

/// Upper bound on `PARTITIONS` (each partition is a stream, a lease and an owner task).
pub const MAX_PARTITIONS: u16 = 1_024;

/// `PARTITIONS` (default 16, `1..=1024`), fixed per deployment: changing it is a migration (stop intake,
/// drain every stream, bump the worker's `PARTITION_GENERATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionsConfig {
    pub count: u16,
}

impl PartitionsConfig {
    /// # Errors
    /// When `PARTITIONS` is not an integer in `1..=1024`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            count: env.parse_in("PARTITIONS", 16, 1..=MAX_PARTITIONS)?,
        })
    }

    /// The partitioner for this count.
    pub fn partitioner(self) -> Partitioner {
        Partitioner::new(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_by_default_and_out_of_range_is_refused() {
        assert_eq!(
            PartitionsConfig::from_env(&Env::default()).unwrap().count,
            16
        );
        for bad in ["0", "1025", "x", "-1"] {
            let env = Env::from_pairs([("PARTITIONS", bad)]);
            assert_eq!(
                PartitionsConfig::from_env(&env).unwrap_err().var,
                "PARTITIONS"
            );
        }
    }
}
