//! Retrying DynamoDB calls: which failures are transient (throttling, 5xx, timeouts, connection errors,
//! transaction conflicts), paced by the shared [`Backoff`] and bounded in attempts; and how a failure
//! becomes a [`StoreError`]: transient ones [`StoreError::Unavailable`], everything else (a missing
//! table, denied access, bad credentials, an invalid request) [`StoreError::Unexpected`], which the
//! worker does not retry.
//!
//! The SDK's own retries are switched off so this is the one policy (and one attempt budget) in force.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use scoreboard_shared::backoff::Backoff;

use crate::store::StoreError;

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
    "ReplicatedWriteConflictException",
];

/// Service error codes that no retry can fix, with the setting to look at. Any other code that is
/// neither listed in [`TRANSIENT_CODES`] nor answered with a 5xx status is not transient either.
const SETUP_CODES: &[(&str, &str)] = &[
    ("ResourceNotFoundException", "DYNAMODB_TABLE"),
    ("AccessDeniedException", "AWS credentials / IAM policy"),
    ("UnrecognizedClientException", "AWS credentials"),
    ("InvalidSignatureException", "AWS credentials"),
    ("MissingAuthenticationTokenException", "AWS credentials"),
    ("IncompleteSignatureException", "AWS credentials"),
    ("ExpiredTokenException", "AWS credentials"),
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

/// Whether an SDK error is worth retrying: no answer (timeout, connection failure, an unreadable
/// response) or a service error that is transient by [`is_transient_service_error`]. A request the SDK
/// could not even build is not.
pub(crate) fn is_transient<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            is_transient_service_error(ctx.err().code(), ctx.raw().status().as_u16())
        }
        _ => false,
    }
}

/// A service error is transient when its code is a known transient one (throttling, conflicts,
/// internal errors), or, for a code not known to be permanent, when the status is 5xx.
pub(crate) fn is_transient_service_error(code: Option<&str>, status: u16) -> bool {
    match code {
        Some(code) if TRANSIENT_CODES.contains(&code) => true,
        Some(code) if SETUP_CODES.iter().any(|(c, _)| *c == code) => false,
        _ => (500..600).contains(&status),
    }
}

/// The setting a permanent service error points at (`ResourceNotFoundException` → `DYNAMODB_TABLE`).
pub(crate) fn setting_at_fault<E: ProvideErrorMetadata>(
    err: &SdkError<E, HttpResponse>,
) -> Option<&'static str> {
    let code = err.as_service_error()?.code()?;
    SETUP_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, setting)| *setting)
}

/// The [`StoreError`] for a failed `operation`: [`StoreError::Unavailable`] when transient (or
/// `exhausted`: transient but out of attempts), else [`StoreError::Unexpected`], prefixed with the
/// setting to fix when the service names one.
pub(crate) fn store_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let described = format!("{operation}: {}", describe(&err));
    if is_transient(&err) {
        return StoreError::unavailable(described).with_source(err);
    }
    let message = match setting_at_fault(&err) {
        Some(setting) => format!("{setting}: {described}"),
        None => described,
    };
    StoreError::unexpected(message).with_source(err)
}

/// Calls `call` until it succeeds or fails with an error that is not transient (returned as `Ok(Err(_))`
/// for the caller to classify, e.g. a failed condition), retrying transient failures with `policy`'s
/// backoff and counting each retry in `retries`.
///
/// # Errors
/// [`StoreError::Unavailable`] when the attempts run out on transient failures.
pub(crate) async fn retrying<T, E, F, Fut>(
    policy: &RetryPolicy,
    retries: &AtomicU64,
    operation: &str,
    mut call: F,
) -> Result<Result<T, SdkError<E, HttpResponse>>, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Ok(value) => return Ok(Ok(value)),
            Err(e) if is_transient(&e) => {
                if attempt >= policy.max_attempts {
                    let message = format!("{operation} failed {attempt} times: {}", describe(&e));
                    return Err(StoreError::unavailable(message).with_source(e));
                }
                tracing::debug!(attempt, operation, error = %describe(&e), "retrying");
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(policy.delay(attempt)).await;
            }
            Err(e) => return Ok(Err(e)),
        }
    }
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
    fn missing_tables_denied_access_and_invalid_requests_are_not_transient() {
        for code in [
            "ResourceNotFoundException",
            "AccessDeniedException",
            "ValidationException",
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "SerializationException",
        ] {
            assert!(!is_transient_service_error(Some(code), 400), "{code}");
        }
        // A permanent code stays permanent whatever the status says.
        assert!(!is_transient_service_error(
            Some("AccessDeniedException"),
            503
        ));
    }

    #[test]
    fn throttling_internal_errors_and_unknown_5xx_are_transient() {
        for code in [
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "InternalServerError",
            "ServiceUnavailable",
            "TransactionConflictException",
        ] {
            assert!(is_transient_service_error(Some(code), 400), "{code}");
        }
        assert!(is_transient_service_error(None, 500));
        assert!(is_transient_service_error(Some("SomethingNew"), 503));
        assert!(!is_transient_service_error(Some("SomethingNew"), 400));
        assert!(!is_transient_service_error(None, 404));
    }

    #[test]
    fn no_answer_is_transient() {
        use aws_sdk_dynamodb::error::ConnectorError;
        use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;

        let timeout = SdkError::<DescribeTableError, HttpResponse>::timeout_error("slow");
        assert!(is_transient(&timeout));
        assert!(store_error("DescribeTable", timeout).is_transient());
        let refused = SdkError::<DescribeTableError, HttpResponse>::dispatch_failure(
            ConnectorError::io("connection refused".into()),
        );
        assert!(is_transient(&refused));
        let unbuildable =
            SdkError::<DescribeTableError, HttpResponse>::construction_failure("no table name");
        let error = store_error("DescribeTable", unbuildable);
        assert!(!error.is_transient(), "{error}");
    }
}
