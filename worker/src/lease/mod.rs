//! Leases with fencing (`docs/design.md` §5.2): a partition owner's `{sb:p}:lease` and the merger's
//! `{sb}:merger`. Acquiring one draws a new random token and `INCR`s the key's epoch counter; the value
//! `<worker id>|<token>|<epoch>` is what every fenced script compares whole, so a stale holder (a paused or
//! partitioned process whose lease expired and was taken) can never write again, even with the same worker
//! id. Renewal and release are fenced the same way.

use std::time::Duration;

use rand::Rng;
use redis::aio::ConnectionLike;

/// One acquired lease: the key and the exact value this holder wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    key: String,
    value: String,
    epoch: u64,
}

impl Lease {
    pub fn key(&self) -> &str {
        &self.key
    }

    /// `<worker id>|<token>|<epoch>`: what fenced scripts compare.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The fencing epoch of this acquisition.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// The worker id a lease value names (its first `|`-separated field).
pub fn holder(value: &str) -> &str {
    value.split('|').next().unwrap_or("")
}

/// The three lease scripts, loaded once.
#[derive(Debug, Clone)]
pub struct LeaseScripts {
    acquire: redis::Script,
    renew: redis::Script,
    release: redis::Script,
    ttl: Duration,
}

impl LeaseScripts {
    pub fn new(ttl: Duration) -> Self {
        Self {
            acquire: redis::Script::new(include_str!("acquire.lua")),
            renew: redis::Script::new(include_str!("renew.lua")),
            release: redis::Script::new(include_str!("release.lua")),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes `key` if nobody holds it, with a new token and the next epoch of `epoch_key`.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn acquire<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        key: &str,
        epoch_key: &str,
        worker_id: &str,
    ) -> redis::RedisResult<Option<Lease>> {
        let token = format!("{:032x}", rand::rng().random::<u128>());
        let value: Option<String> = self
            .acquire
            .key(key)
            .key(epoch_key)
            .arg(worker_id)
            .arg(&token)
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(conn)
            .await?;
        Ok(value.map(|value| Lease {
            epoch: value
                .rsplit('|')
                .next()
                .and_then(|e| e.parse().ok())
                .unwrap_or(0),
            key: key.to_owned(),
            value,
        }))
    }

    /// Extends the lease if it is still ours; `false` means it was lost (expired and maybe taken).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn renew<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        lease: &Lease,
    ) -> redis::RedisResult<bool> {
        let renewed: i64 = self
            .renew
            .key(&lease.key)
            .arg(&lease.value)
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(conn)
            .await?;
        Ok(renewed == 1)
    }

    /// Gives the lease up if it is still ours, so another worker can take it at once.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn release<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        lease: &Lease,
    ) -> redis::RedisResult<bool> {
        let released: i64 = self
            .release
            .key(&lease.key)
            .arg(&lease.value)
            .invoke_async(conn)
            .await?;
        Ok(released == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_the_first_field() {
        assert_eq!(holder("host-1|abc|7"), "host-1");
        assert_eq!(holder(""), "");
    }
}
