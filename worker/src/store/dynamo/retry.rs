//! Retrying DynamoDB calls: which failures are transient (throttling, 5xx, timeouts, connection errors,
//! transaction conflicts), paced by the shared [`Backoff`] and bounded in attempts.
//!
//! The SDK's own retries are switched off so this is the one policy (and one attempt budget) in force.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use scoreboard_shared::backoff::Backoff;

/// Service error codes worth another attempt.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
    "LimitExceededException",
];

/// Cancellation reason codes of a `TransactionCanceledException` that do not mean "condition false".
const TRANSIENT_CANCELLATION_CODES: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (at least 1).
    pub max_attempts: u32,
    /// Delay cap before the first retry; doubles per attempt.
    pub base_delay: Duration,
    /// Upper bound of any one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The (jittered) delay before attempt `attempt + 1`, `attempt` counting from 1.
    /// The shared [`Backoff`] with this policy's base and cap.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        Backoff::new(self.base_delay, self.max_delay).delay_after(attempt.saturating_sub(1))
    }
}

/// Whether an SDK error is worth retrying.
pub(crate) fn is_transient<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => ctx
            .err()
            .code()
            .is_some_and(|code| TRANSIENT_CODES.contains(&code)),
        _ => false,
    }
}

/// Whether a transaction cancellation reason is transient (conflict, throttling).
pub(crate) fn is_transient_cancellation(code: Option<&str>) -> bool {
    code.is_some_and(|c| TRANSIENT_CANCELLATION_CODES.contains(&c))
}

/// A short description of an SDK error for logs and `StoreError`s (never contains credentials).
pub(crate) fn describe<
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
>(
    err: &SdkError<E, R>,
) -> String {
    match err {
        SdkError::ServiceError(ctx) => format!(
            "{}: {}",
            ctx.err().code().unwrap_or("service error"),
            ctx.err().message().unwrap_or("")
        ),
        other => aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        };
        for _ in 0..100 {
            let first = policy.delay(1);
            assert!(first >= Duration::from_millis(5) && first <= Duration::from_millis(10));
            assert!(policy.delay(9) <= Duration::from_millis(100));
            assert!(policy.delay(9) >= Duration::from_millis(50));
        }
    }

    #[test]
    fn conflicts_and_throttling_are_transient_but_failed_conditions_are_not() {
        assert!(is_transient_cancellation(Some("TransactionConflict")));
        assert!(is_transient_cancellation(Some("ThrottlingError")));
        assert!(!is_transient_cancellation(Some("ConditionalCheckFailed")));
        assert!(!is_transient_cancellation(Some("None")));
        assert!(!is_transient_cancellation(None));
    }
}
