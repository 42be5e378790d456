//! Configuration: `PARTITIONS` is validated once at start and a bad value names the variable.

use leaderboard::LeaderboardService;
use scoreboard_shared::config::Env;

use crate::helpers::SECRET;

#[test]
fn an_invalid_partition_count_is_a_config_error_naming_partitions() {
    for bad in ["0", "1025", "sixteen", "-3"] {
        let env = Env::from_pairs([
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("JWT_SECRET", SECRET),
            ("PARTITIONS", bad),
        ]);
        let error = LeaderboardService::from_env(&env).expect_err(bad);
        assert_eq!(error.var, "PARTITIONS", "{bad}");
        assert!(error.to_string().contains("PARTITIONS"), "{error}");
    }
}
