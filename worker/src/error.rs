//! Why a worker step did not complete: Redis, the store, or a shutdown during an outage — and whether
//! trying again can help. Its own module so the drain loop and the rebuild share it without depending
//! on each other.

use crate::store::StoreError;

/// Why a step did not complete.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("shutdown during an outage; the batch stays pending and will be reclaimed")]
    Abandoned,
}

impl WorkerError {
    /// Whether the loop may retry: every Redis failure (outages, failovers, a flushed cache are all
    /// ridden out), a transient store failure ([`StoreError::Unavailable`]); not a store refusal
    /// ([`StoreError::Unexpected`]) and not [`WorkerError::Abandoned`].
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Redis(_) => true,
            Self::Store(error) => error.is_transient(),
            Self::Abandoned => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_refusals_and_abandoned_batches_are_not_retried() {
        assert!(WorkerError::from(StoreError::unavailable("down")).is_transient());
        assert!(!WorkerError::from(StoreError::unexpected("gone")).is_transient());
        assert!(!WorkerError::Abandoned.is_transient());
        let io = redis::RedisError::from(std::io::Error::other("reset"));
        assert!(WorkerError::from(io).is_transient());
    }
}
