//! The SSE server's error response: [`Problem`] pairs a shared [`ApiError`] with the request id and renders
//! it as problem+json (with the headers its status calls for), so handlers return `Result<_, Problem>` and
//! use `?`.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use scoreboard_shared::problem::ApiError;
use scoreboard_shared::request_id;

/// An [`ApiError`] answered to the request `request_id`.
#[derive(Debug)]
pub struct Problem {
    error: ApiError,
    request_id: String,
}

impl Problem {
    pub fn new(error: impl Into<ApiError>, request_id: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            request_id: request_id.into(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.error
            .to_response(Some(&self.request_id))
            .map(Body::from)
    }
}

/// `?` for anything that maps to an [`ApiError`]: `result.or_problem(&request_id)?`.
pub trait OrProblem<T> {
    /// # Errors
    /// The error, as a [`Problem`] for `request_id`.
    fn or_problem(self, request_id: &str) -> Result<T, Problem>;
}

impl<T, E: Into<ApiError>> OrProblem<T> for Result<T, E> {
    fn or_problem(self, request_id: &str) -> Result<T, Problem> {
        self.map_err(|error| Problem::new(error, request_id))
    }
}

/// `404` for anything unrouted.
pub async fn not_found(headers: HeaderMap) -> Problem {
    Problem::new(ApiError::NotFound, request_id::from_headers(&headers))
}
