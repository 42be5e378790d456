//! Turns a shared [`ApiError`] into an axum response (problem+json, with its headers).

use axum::body::Body;
use axum::response::Response;
use scoreboard_shared::problem::ApiError;

/// The problem+json response for `error`.
pub fn problem(error: &ApiError, request_id: &str) -> Response {
    error.to_response(Some(request_id)).map(Body::from)
}

/// `404` for anything unrouted.
pub async fn not_found(headers: axum::http::HeaderMap) -> Response {
    problem(
        &ApiError::NotFound,
        &scoreboard_shared::request_id::from_headers(&headers),
    )
}
