//! What a partition's owner remembers of its users' records (`wm`, score, name) and of the partition's
//! `hw`, from its own reads and acknowledged writes, so a batch of users it has seen skips the store read.
//!
//! An entry is only an older read, never trusted: every write is still a compare-and-set on the `wm` it
//! carries (`docs/design.md` §5.3). A stored `wm` only grows, so a cached one is at or below it: an event
//! the cache shows as applied was applied, and a stale entry (another writer moved the record) costs one
//! conflict and a re-read, never a double count. The cache lives and dies with the owner (one lease), is
//! bounded, forgets a user whose write missed or was refused, and forgets everything after a write call
//! whose outcome is unknown.

use std::num::NonZeroUsize;

use lru::LruCache;

use crate::store::{UserRecord, Watermark};

/// Users remembered per owned partition: about 150 bytes each, so 16 partitions hold at most ~10 MiB.
pub const USERS_PER_PARTITION: NonZeroUsize = NonZeroUsize::new(4_096).expect("not zero");

/// One owner's cache (see the module docs).
#[derive(Debug)]
pub struct ReadCache {
    users: LruCache<String, UserRecord>,
    /// The partition's `hw` as last read or raised: `None` until known (`Some(None)`: no `hw` yet).
    hw: Option<Option<Watermark>>,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self::with_capacity(USERS_PER_PARTITION)
    }
}

impl ReadCache {
    pub fn with_capacity(users: NonZeroUsize) -> Self {
        Self {
            users: LruCache::new(users),
            hw: None,
        }
    }

    /// The remembered record of `user`, if any.
    pub fn user(&mut self, user: &str) -> Option<UserRecord> {
        self.users.get(user).cloned()
    }

    /// The remembered `hw`, if known.
    pub fn hw(&self) -> Option<Option<Watermark>> {
        self.hw
    }

    /// Remembers records as read (or as written: the new `wm` with the new total).
    pub fn remember(&mut self, record: UserRecord) {
        self.users.put(record.user_id.clone(), record);
    }

    /// Remembers the partition's `hw` as read or raised.
    pub fn remember_hw(&mut self, hw: Option<Watermark>) {
        self.hw = Some(hw);
    }

    /// Forgets `user` (its write missed or was refused: the next batch reads it).
    pub fn forget(&mut self, user: &str) {
        self.users.pop(user);
    }

    /// Forgets everything (a write call failed: any subset of it may have been applied).
    pub fn clear(&mut self) {
        self.users.clear();
        self.hw = None;
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use scoreboard_shared::partition::StreamId;

    use super::*;

    fn record(user: &str, score: u64) -> UserRecord {
        UserRecord {
            user_id: user.to_owned(),
            score,
            display_name: None,
            wm: Some(Watermark::new(1, StreamId { ms: score, seq: 0 })),
        }
    }

    #[test]
    fn remembers_forgets_and_stays_bounded() {
        let mut cache = ReadCache::with_capacity(NonZeroUsize::new(2).unwrap());
        assert_eq!(cache.hw(), None);
        cache.remember(record("a", 1));
        cache.remember(record("b", 2));
        cache.remember_hw(None);
        assert_eq!(cache.user("a").map(|r| r.score), Some(1));
        // "b" is now the least recently used: a third user pushes it out.
        cache.remember(record("c", 3));
        assert_eq!(cache.len(), 2);
        assert!(cache.user("b").is_none());
        cache.remember(record("a", 4));
        assert_eq!(cache.user("a").map(|r| r.score), Some(4));
        cache.forget("a");
        assert!(cache.user("a").is_none());
        assert_eq!(cache.hw(), Some(None));
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.hw(), None);
    }
}
