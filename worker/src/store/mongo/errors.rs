//! Which MongoDB driver errors are transient (network, server selection, failover, shutdown, write
//! conflicts, rate limits, unmet write concerns: [`StoreError::Unavailable`]) and which are not (failed
//! authentication, missing privileges, an invalid URI, anything else: [`StoreError::Unexpected`], named
//! after `MONGODB_URI` when the credentials or the URI are at fault).

use mongodb::error::{
    ErrorKind, RETRYABLE_ERROR, RETRYABLE_WRITE_ERROR, SYSTEM_OVERLOADED_ERROR,
    TRANSIENT_TRANSACTION_ERROR, WriteFailure,
};

use crate::store::StoreError;

/// Server error codes a retry can outlast: unreachable or shutting-down members, failovers, timeouts,
/// write conflicts and rate limits.
pub(super) const TRANSIENT_CODES: &[i32] = &[
    6,     // HostUnreachable
    7,     // HostNotFound
    50,    // MaxTimeMSExpired
    64,    // WriteConcernFailed
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    112,   // WriteConflict
    134,   // ReadConcernMajorityNotAvailableYet
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    462,   // IngressRequestRateLimitExceeded
    9001,  // SocketException
    10058, // LegacyNotPrimary
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
    16500, // Cosmos DB / DocumentDB: request rate too large
];

/// Error labels the driver or server puts on errors worth another attempt.
const TRANSIENT_LABELS: &[&str] = &[
    RETRYABLE_WRITE_ERROR,
    TRANSIENT_TRANSACTION_ERROR,
    SYSTEM_OVERLOADED_ERROR,
    RETRYABLE_ERROR,
];

/// Server error codes that mean the credentials in `MONGODB_URI` are wrong or lack a privilege:
/// Unauthorized, AuthenticationFailed, Atlas's AtlasError ("bad auth").
const CREDENTIAL_CODES: &[i32] = &[13, 18, 8000];

/// Whether a driver error is worth another attempt: no answer (network, server selection, a cleared
/// pool, DNS), a transient label, or a transient server code ([`TRANSIENT_CODES`]).
pub fn is_transient(error: &mongodb::error::Error) -> bool {
    if TRANSIENT_LABELS
        .iter()
        .any(|label| error.contains_label(label))
    {
        return true;
    }
    match error.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Write(WriteFailure::WriteConcernError(_)) => true,
        ErrorKind::Command(command) => TRANSIENT_CODES.contains(&command.code),
        ErrorKind::Write(WriteFailure::WriteError(write)) => TRANSIENT_CODES.contains(&write.code),
        _ => false,
    }
}

/// Whether a driver error says the credentials or the URI are wrong (the setting to fix is
/// `MONGODB_URI`).
fn blames_the_uri(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Authentication { .. }
        | ErrorKind::InvalidArgument { .. }
        | ErrorKind::InvalidTlsConfig { .. } => true,
        ErrorKind::Command(command) => CREDENTIAL_CODES.contains(&command.code),
        _ => false,
    }
}

/// Maps driver errors: transient ones ([`is_transient`]) are `Unavailable`, the rest `Unexpected`
/// (prefixed `MONGODB_URI:` when the credentials or URI are at fault). Driver messages carry no
/// credentials.
pub(super) fn store_error(error: mongodb::error::Error) -> StoreError {
    if is_transient(&error) {
        return StoreError::unavailable(error.to_string()).with_source(error);
    }
    let message = if blames_the_uri(&error) {
        format!("MONGODB_URI: {error}")
    } else {
        error.to_string()
    };
    StoreError::unexpected(message).with_source(error)
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    fn command_error(code: i32, name: &str) -> mongodb::error::Error {
        let command: mongodb::error::CommandError =
            mongodb::bson::from_document(doc! {"code": code, "codeName": name, "errmsg": name})
                .unwrap();
        mongodb::error::Error::from(ErrorKind::Command(command))
    }

    #[test]
    fn authentication_and_privilege_failures_are_not_transient_and_name_the_uri() {
        for (code, name) in [
            (18, "AuthenticationFailed"),
            (13, "Unauthorized"),
            (8000, "AtlasError"),
        ] {
            let error = store_error(command_error(code, name));
            assert!(!error.is_transient(), "{name}");
            assert!(error.message().starts_with("MONGODB_URI: "), "{error}");
        }
        let error = store_error(command_error(2, "BadValue"));
        assert!(!error.is_transient());
        assert!(!error.message().starts_with("MONGODB_URI"), "{error}");
    }

    #[test]
    fn network_failover_and_overload_are_transient() {
        let io = mongodb::error::Error::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert!(store_error(io).is_transient());
        for (code, name) in [
            (10107, "NotWritablePrimary"),
            (189, "PrimarySteppedDown"),
            (91, "ShutdownInProgress"),
            (112, "WriteConflict"),
            (16500, "RequestRateTooLarge"),
        ] {
            assert!(
                store_error(command_error(code, name)).is_transient(),
                "{name}"
            );
        }
    }
}
