//! What the Lambda handlers share: their clients, reading the bearer header, JSON and problem responses.
//! Responses are plain `http::Response<String>`; each function wraps the body for its runtime.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::auth::Authenticator;
use crate::config::{AuthConfig, ConfigError, Env, RedisConfig};
use crate::problem::ApiError;
use crate::redis::{RedisConn, connect_lazy};

/// The clients every function holds for its lifetime: the token verifier and a lazy Redis connection.
///
/// # Errors
/// The first invalid or missing auth or Redis configuration value.
pub fn function_clients(env: &Env) -> Result<(Authenticator, RedisConn), ConfigError> {
    let redis = connect_lazy(&RedisConfig::from_env(env)?)
        .map_err(|_| ConfigError::new("REDIS_URL", "cannot create a Redis client"))?;
    Ok((Authenticator::new(&AuthConfig::from_env(env)?)?, redis))
}

/// The `Authorization` header as text, if present and readable.
pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// A JSON response carrying the request id.
pub fn json_response<T: Serialize>(
    status: StatusCode,
    body: &T,
    request_id: &str,
) -> Response<String> {
    let mut response = Response::new(serde_json::to_string(body).unwrap_or_default());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", id);
    }
    response
}

/// The problem+json response for `error`.
pub fn problem_response(error: &ApiError, request_id: &str) -> Response<String> {
    error.to_response(Some(request_id))
}
