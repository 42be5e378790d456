//! Why a worker step did not complete: Redis, the store, or a shutdown during an outage. Its own module so
//! the drain loop and the rebuild share it without depending on each other.

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
