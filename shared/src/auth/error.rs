//! Why a token was refused, and the `WWW-Authenticate` challenge each reason produces (RFC 6750).

/// A rejected credential. Messages are safe to return to the client: they never contain the token.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no bearer token was sent")]
    Missing,
    #[error("the Authorization scheme must be Bearer")]
    NotBearer,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is too large")]
    TooLarge,
    #[error("unsigned tokens (alg none) are not accepted")]
    AlgorithmNone,
    #[error("the token's algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    #[error("the token's audience is not accepted")]
    WrongAudience,
    #[error("the token's type (typ) is not accepted")]
    WrongType,
    #[error("the token has no usable subject")]
    InvalidSubject,
    #[error("the token is missing a required claim")]
    MissingClaim,
    #[error("the token's key id is unknown")]
    UnknownKey,
    #[error("signing keys are unavailable")]
    KeysUnavailable,
}

impl AuthError {
    /// The `WWW-Authenticate` header value: a bare challenge when no credentials were sent,
    /// `error="invalid_token"` otherwise (RFC 6750 §3).
    pub fn www_authenticate(&self) -> String {
        match self {
            Self::Missing | Self::NotBearer => r#"Bearer realm="scoreboard""#.to_owned(),
            other => format!(
                r#"Bearer realm="scoreboard", error="invalid_token", error_description="{other}""#
            ),
        }
    }
}
