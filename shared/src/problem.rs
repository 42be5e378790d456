//! RFC 9457 problem+json: every error any endpoint returns is mapped to HTTP here, in one place.
//!
//! 5xx bodies are generic; the cause goes to the log, never to the client.

use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::auth::AuthError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Why a request was refused. Each variant maps to one status and problem type.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication failed: {0}")]
    Unauthorized(#[from] AuthError),
    #[error("token lacks scope {0}")]
    InsufficientScope(String),
    #[error("invalid request: {0}")]
    Validation(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("body too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("idempotency key reused with a different body")]
    IdempotencyKeyReused,
    #[error("rate limited")]
    RateLimited {
        retry_after: Duration,
        /// `RateLimit-Policy` value, e.g. `"burst";q=20;w=2`.
        policy: String,
    },
    #[error("update backlog is over its bound")]
    Backlogged { retry_after: Duration },
    #[error("update {event_id} reached {acknowledged} of {wanted} replicas in time")]
    NotReplicated {
        event_id: String,
        acknowledged: u32,
        wanted: u32,
    },
    #[error("too many connections")]
    TooManyConnections { per_user: bool },
    #[error("dependency unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The JSON body of a problem response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ProblemBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(AuthError::KeysUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } | Self::TooManyConnections { per_user: true } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Backlogged { .. }
            | Self::NotReplicated { .. }
            | Self::Unavailable(_)
            | Self::TooManyConnections { per_user: false } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type's short name (`rate-limited`, `validation`, …): the reason label of metrics.
    pub fn slug(&self) -> &'static str {
        self.slug_and_title().0
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::Unauthorized(AuthError::KeysUnavailable) => {
                ("unavailable", "Service unavailable")
            }
            Self::Unauthorized(_) => ("unauthorized", "Authentication required"),
            Self::InsufficientScope(_) => ("insufficient-scope", "Insufficient scope"),
            Self::Validation(_) => ("validation", "Invalid request"),
            Self::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            Self::PayloadTooLarge { .. } => ("payload-too-large", "Payload too large"),
            Self::NotFound => ("not-found", "Not found"),
            Self::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            Self::IdempotencyKeyReused => ("idempotency-key-reused", "Idempotency key reused"),
            Self::RateLimited { .. } => ("rate-limited", "Too many requests"),
            Self::Backlogged { .. } => ("backlogged", "Service busy"),
            Self::NotReplicated { .. } => ("not-replicated", "Not confirmed by replicas"),
            Self::TooManyConnections { .. } => ("too-many-connections", "Too many connections"),
            Self::Unavailable(_) => ("unavailable", "Service unavailable"),
            Self::Internal(_) => ("internal", "Internal error"),
        }
    }

    /// Text safe to show a client: specific for 4xx, generic for 5xx.
    fn public_detail(&self) -> String {
        match self {
            Self::Unauthorized(e) => e.to_string(),
            Self::InsufficientScope(scope) => format!("the token must carry the scope {scope:?}"),
            Self::Validation(detail) => detail.clone(),
            Self::UnsupportedMediaType => "send the body as application/json".to_owned(),
            Self::PayloadTooLarge { limit } => format!("the body must be at most {limit} bytes"),
            Self::NotFound => "no such resource".to_owned(),
            Self::MethodNotAllowed { allow } => format!("use {allow}"),
            Self::IdempotencyKeyReused => {
                "this Idempotency-Key was already used with a different body".to_owned()
            }
            Self::RateLimited { retry_after, .. } => {
                format!("slow down; retry in {} s", ceil_secs(*retry_after))
            }
            Self::Backlogged { .. } => "updates are backing up; retry shortly".to_owned(),
            // Not a cause to hide: the client needs the event id and what a retry does.
            Self::NotReplicated {
                event_id,
                acknowledged,
                wanted,
            } => format!(
                "update {event_id} was queued, but only {acknowledged} of {wanted} replicas confirmed it \
                 in time: it counts unless a failover loses it. Retry with the same Idempotency-Key to \
                 confirm it (a retry never counts twice); without one, a retry counts again"
            ),
            Self::TooManyConnections { per_user: true } => {
                "too many open streams for this user".to_owned()
            }
            Self::TooManyConnections { per_user: false } => {
                "this server is full; retry elsewhere".to_owned()
            }
            Self::Unavailable(_) => "a dependency is unavailable; retry shortly".to_owned(),
            Self::Internal(_) => "unexpected error".to_owned(),
        }
    }

    /// The problem+json body.
    pub fn body(&self) -> ProblemBody {
        let (slug, title) = self.slug_and_title();
        ProblemBody {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: self.status().as_u16(),
            detail: self.public_detail(),
            instance: None,
        }
    }

    /// The full HTTP response, with the headers each status calls for
    /// (`WWW-Authenticate`, `Retry-After`, `RateLimit-*`, `Allow`).
    pub fn to_response(&self, request_id: Option<&str>) -> Response<String> {
        if self.status().is_server_error() {
            tracing::warn!(error = %self, status = self.status().as_u16(), "request failed");
        }
        let mut body = self.body();
        body.instance = request_id.map(|id| format!("urn:request:{id}"));
        let json = serde_json::to_string(&body).unwrap_or_default();
        let mut builder = Response::builder()
            .status(self.status())
            .header(header::CONTENT_TYPE, PROBLEM_JSON)
            .header(header::CACHE_CONTROL, "no-store");
        match self {
            Self::Unauthorized(AuthError::KeysUnavailable) => {
                builder = builder.header(header::RETRY_AFTER, 1);
            }
            Self::Unauthorized(e) => {
                builder = builder.header(header::WWW_AUTHENTICATE, e.www_authenticate());
            }
            Self::InsufficientScope(scope) => {
                builder = builder.header(
                    header::WWW_AUTHENTICATE,
                    format!(
                        r#"Bearer realm="scoreboard", error="insufficient_scope", scope="{scope}""#
                    ),
                );
            }
            Self::MethodNotAllowed { allow } => builder = builder.header(header::ALLOW, *allow),
            Self::RateLimited {
                retry_after,
                policy,
            } => {
                let secs = ceil_secs(*retry_after);
                builder = builder
                    .header(header::RETRY_AFTER, secs)
                    .header("RateLimit-Policy", policy.as_str())
                    .header("RateLimit", format!(r#""burst";r=0;t={secs}"#));
            }
            Self::Backlogged { retry_after } => {
                builder = builder.header(header::RETRY_AFTER, ceil_secs(*retry_after));
            }
            Self::Unavailable(_) | Self::TooManyConnections { .. } | Self::NotReplicated { .. } => {
                builder = builder.header(header::RETRY_AFTER, 1);
            }
            _ => {}
        }
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            builder = builder.header("x-request-id", id);
        }
        builder
            .body(json)
            .unwrap_or_else(|_| Response::new(String::new()))
    }
}

/// Whole seconds, rounded up, at least 1: a `Retry-After` of 0 invites a hot retry loop.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        Self::Unavailable(format!("redis: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_cause() {
        let resp = ApiError::Internal("db password wrong: hunter2".into()).to_response(Some("r1"));
        assert_eq!(resp.status(), 500);
        assert!(!resp.body().contains("hunter2"));
        assert_eq!(resp.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[test]
    fn rate_limit_carries_retry_after_and_policy() {
        let err = ApiError::RateLimited {
            retry_after: Duration::from_millis(1_200),
            policy: r#""burst";q=20;w=2"#.into(),
        };
        let resp = err.to_response(None);
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
        assert!(resp.headers().contains_key("RateLimit-Policy"));
        assert!(resp.headers().contains_key("RateLimit"));
    }

    #[test]
    fn body_has_the_rfc9457_members() {
        let body: serde_json::Value =
            serde_json::from_str(ApiError::NotFound.to_response(Some("abc")).body()).unwrap();
        for member in ["type", "title", "status", "detail", "instance"] {
            assert!(body.get(member).is_some(), "missing {member}");
        }
        assert_eq!(body["status"], 404);
    }
}
