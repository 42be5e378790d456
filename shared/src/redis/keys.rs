//! Every Redis key of the layout (`docs/design.md` §4). Every key carries the `{sb}` hash tag so one leaderboard's keys
//! share a cluster slot and scripts may touch them together.

/// The stream the update function appends to.
pub const UPDATES: &str = "{sb}:updates";
/// Entries that failed validation or too many deliveries, with the reason.
pub const DLQ: &str = "{sb}:dlq";
/// Sorted set of every user's total.
pub const LEADERBOARD: &str = "{sb}:lb";
/// Hash of user id → display name.
pub const NAMES: &str = "{sb}:names";
/// The current snapshot JSON.
pub const TOP: &str = "{sb}:top";
/// Strictly increasing snapshot version.
pub const VERSION: &str = "{sb}:version";
/// Pub/Sub channel carrying each new snapshot.
pub const EVENTS_CHANNEL: &str = "{sb}:events";
/// The consumer group of the workers.
pub const CONSUMER_GROUP: &str = "score-workers";
/// Prefix of per-user rate-limit keys; see [`rate_limit`].
pub const RATE_LIMIT_PREFIX: &str = "{sb}:rl:";

/// Held (with a TTL) while a rebuild refills the board, so two workers never rebuild at once.
pub const REBUILD_LOCK: &str = "{sb}:rebuild-lock";

/// Rate-limit state of one user.
pub fn rate_limit(user: &str) -> String {
    format!("{RATE_LIMIT_PREFIX}{user}")
}

/// Idempotency record of one user's key. `:` and `%` in the user id are percent-encoded so that the first
/// `:` after the user ends it: user `a:b` with key `c` and user `a` with key `b:c` never share a record.
pub fn idempotency(user: &str, key: &str) -> String {
    let user = user.replace('%', "%25").replace(':', "%3A");
    format!("{{sb}}:idem:{user}:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_keys_keep_the_hash_tag() {
        assert_eq!(rate_limit("u1"), "{sb}:rl:u1");
        assert_eq!(idempotency("u1", "k-1"), "{sb}:idem:u1:k-1");
        assert_ne!(idempotency("a:b", "c"), idempotency("a", "b:c"));
        assert_ne!(idempotency("a%3Ab", "c"), idempotency("a:b", "c"));
        for key in [
            UPDATES,
            DLQ,
            LEADERBOARD,
            NAMES,
            TOP,
            VERSION,
            EVENTS_CHANNEL,
            REBUILD_LOCK,
        ] {
            assert!(key.starts_with("{sb}:"), "{key}");
        }
    }
}
