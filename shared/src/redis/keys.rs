//! Every Redis key of the layout (`docs/design.md` §4). Partition p's keys carry the hash tag `{sb:p}`
//! ([`PartitionKeys`]), so one script touches one cluster slot; global keys carry `{sb}`.

/// The current snapshot JSON.
pub const TOP: &str = "{sb}:top";
/// Strictly increasing snapshot version.
pub const VERSION: &str = "{sb}:version";
/// Pub/Sub channel carrying each new snapshot.
pub const EVENTS_CHANNEL: &str = "{sb}:events";

/// The merger lease (`<worker>|<token>|<epoch>`, with a TTL).
pub const MERGER_LEASE: &str = "{sb}:merger";
/// Counter `INCR`ed at every merger lease acquisition (the merger's fencing epoch).
pub const MERGER_EPOCH: &str = "{sb}:merger:epoch";
/// Sorted set of live workers (member: worker id, score: last heartbeat in ms), for balancing.
pub const WORKERS: &str = "{sb}:workers";

/// The keys of one partition, all under the hash tag `{sb:p}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionKeys {
    partition: u16,
    tag: String,
}

impl PartitionKeys {
    pub fn new(partition: u16) -> Self {
        Self {
            partition,
            tag: format!("{{sb:{partition}}}"),
        }
    }

    pub fn partition(&self) -> u16 {
        self.partition
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.tag)
    }

    /// The partition's log of accepted updates (no consumer group).
    pub fn updates(&self) -> String {
        self.key("updates")
    }
    /// Id of the last committed entry; moved only by the fenced commit.
    pub fn cursor(&self) -> String {
        self.key("cursor")
    }
    /// The owner's lease: `<worker id>|<token>|<epoch>`, with a TTL.
    pub fn lease(&self) -> String {
        self.key("lease")
    }
    /// Counter `INCR`ed at every lease acquisition (the fencing epoch).
    pub fn epoch(&self) -> String {
        self.key("epoch")
    }
    /// Totals of the partition's users.
    pub fn leaderboard(&self) -> String {
        self.key("lb")
    }
    /// Display names of the partition's users.
    pub fn names(&self) -> String {
        self.key("names")
    }
    /// The partition's top `LEADERBOARD_SIZE` as JSON, with its version and the highest applied id.
    pub fn top(&self) -> String {
        self.key("top")
    }
    /// Events that cannot be applied, with reason and error.
    pub fn dlq(&self) -> String {
        self.key("dlq")
    }
    /// Pub/Sub channel: "this partition's top changed".
    pub fn changed(&self) -> String {
        self.key("changed")
    }
    /// Scratch keys a rebuild fills before its fenced `RENAME` over the live ones.
    pub fn rebuild_leaderboard(&self) -> String {
        self.key("lb:rebuild")
    }
    pub fn rebuild_names(&self) -> String {
        self.key("names:rebuild")
    }
    /// Rate-limit state of one user of this partition.
    pub fn rate_limit(&self, user: &str) -> String {
        format!("{}:rl:{user}", self.tag)
    }
    /// Idempotency record of one user's key. `:` and `%` in the user id are percent-encoded so that the
    /// first `:` after the user ends it: user `a:b` with key `c` and user `a` with key `b:c` never share one.
    pub fn idempotency(&self, user: &str, key: &str) -> String {
        format!("{}:idem:{}:{key}", self.tag, encode_user(user))
    }
}

fn encode_user(user: &str) -> String {
    user.replace('%', "%25").replace(':', "%3A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_keys_keep_the_global_hash_tag() {
        for key in [
            TOP,
            VERSION,
            EVENTS_CHANNEL,
            MERGER_LEASE,
            MERGER_EPOCH,
            WORKERS,
        ] {
            assert!(key.starts_with("{sb}:"), "{key}");
        }
    }

    #[test]
    fn partition_keys_share_the_partition_hash_tag() {
        let keys = PartitionKeys::new(7);
        for key in [
            keys.updates(),
            keys.cursor(),
            keys.lease(),
            keys.epoch(),
            keys.leaderboard(),
            keys.names(),
            keys.top(),
            keys.dlq(),
            keys.changed(),
            keys.rebuild_leaderboard(),
            keys.rebuild_names(),
            keys.rate_limit("u"),
            keys.idempotency("u", "k"),
        ] {
            assert!(key.starts_with("{sb:7}:"), "{key}");
        }
        assert_eq!(keys.idempotency("a:b", "c"), "{sb:7}:idem:a%3Ab:c");
        assert_ne!(keys.idempotency("a%3Ab", "c"), keys.idempotency("a:b", "c"));
        assert_ne!(keys.idempotency("a:b", "c"), keys.idempotency("a", "b:c"));
    }
}
