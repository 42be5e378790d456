//! The score store port: the system of record for totals. [`WatermarkStore`] (`watermark.rs`): a
//! compare-and-set on each user's watermark, per partition, implemented by the MongoDB, DynamoDB and
//! memory adapters; [`connect`] builds the configured one (MongoDB behind [`combine::CombiningStore`],
//! which sends the concurrent writes of a worker's owners as one command).

pub mod combine;
mod connect;
pub mod dynamo;
pub mod memory;
pub mod mongo;
mod watermark;

pub use connect::connect;
pub use watermark::{
    PartitionRead, PartitionWrite, UserRecord, UserWrite, Watermark, WatermarkStore, WriteOutcome,
};

/// A user's absolute total in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTotal {
    pub user_id: String,
    pub display_name: Option<String>,
    pub score: u64,
}

/// A cause kept behind a [`StoreError`] (the driver's or SDK's own error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store call failed. Each user's write is atomic and guarded by its watermark, so the caller may
/// always re-read and send the batch again; the variant says whether sending it again can help. The
/// driver's error, when there is one, is kept as the `source`, so logs and callers can walk the chain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Transient: the store is unreachable, timed out, throttled or briefly unable (5xx, failover). The
    /// worker retries these without bound.
    #[error("store unavailable: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Not transient: the store refused (missing table, denied access, failed authentication, invalid
    /// request) or answered something this code does not understand. Retrying the same call cannot
    /// help; the worker stops (see `worker.rs`). A message that starts with a variable name
    /// (`DYNAMODB_TABLE: …`) names the setting to fix.
    #[error("store error (not transient): {message}")]
    Unexpected {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl StoreError {
    /// The store could not be reached (or timed out).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    /// The store refused or answered something this code does not understand (not transient).
    pub fn unexpected(message: impl Into<String>) -> Self {
        Self::Unexpected {
            message: message.into(),
            source: None,
        }
    }

    /// Whether retrying the same call can succeed ([`StoreError::Unavailable`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The message without the variant's prefix.
    pub fn message(&self) -> &str {
        match self {
            Self::Unavailable { message, .. } | Self::Unexpected { message, .. } => message,
        }
    }

    /// The same kind and message for another caller of the one call that failed (the source, which
    /// cannot be cloned, stays with the original).
    #[must_use]
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Unavailable { message, .. } => Self::unavailable(message.clone()),
            Self::Unexpected { message, .. } => Self::unexpected(message.clone()),
        }
    }

    /// The same error with `cause` as its source.
    #[must_use]
    pub fn with_source(self, cause: impl Into<BoxError>) -> Self {
        let cause = Some(cause.into());
        match self {
            Self::Unavailable { message, .. } => Self::Unavailable {
                message,
                source: cause,
            },
            Self::Unexpected { message, .. } => Self::Unexpected {
                message,
                source: cause,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn the_cause_stays_reachable_as_the_source() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = StoreError::unavailable("MongoDB: refused").with_source(cause);
        assert!(matches!(error, StoreError::Unavailable { .. }));
        assert_eq!(error.to_string(), "store unavailable: MongoDB: refused");
        let source = error.source().expect("the cause is kept");
        assert_eq!(source.to_string(), "refused");
        assert!(StoreError::unexpected("odd").source().is_none());
    }

    #[test]
    fn only_unavailable_is_transient() {
        assert!(StoreError::unavailable("down").is_transient());
        let refused = StoreError::unexpected("DYNAMODB_TABLE: gone");
        assert!(!refused.is_transient());
        assert_eq!(refused.message(), "DYNAMODB_TABLE: gone");
        assert_eq!(
            refused.to_string(),
            "store error (not transient): DYNAMODB_TABLE: gone"
        );
    }
}
