//! `GET /api/v1/scores/events`: authenticate (header, or `?access_token=` for `EventSource`), take a
//! connection slot, then stream. Refusals are problem+json ([`Problem`]).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use scoreboard_shared::auth::{AuthError, Principal};
use scoreboard_shared::{http_util, request_id};
use serde::Deserialize;

use crate::problem::{OrProblem, Problem};
use crate::state::AppState;
use crate::stream::{StreamStart, client_events};
use crate::telemetry;

/// The path of the stream.
pub const EVENTS_PATH: &str = "/api/v1/scores/events";

/// The query `EventSource` clients use to pass their token.
#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    access_token: Option<String>,
}

/// Opens a stream for an authenticated caller within the caps.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, Problem> {
    let request_id = request_id::from_headers(&headers);
    let principal = authenticate(&state, &headers, query.access_token.as_deref())
        .await
        .inspect_err(|_| telemetry::rejected("unauthorized"))
        .or_problem(&request_id)?;
    let guard = state
        .limiter()
        .try_acquire(&principal.user_id)
        .or_problem(&request_id)?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let stream = client_events(StreamStart {
        frames: state.hub().subscribe(),
        closing: state.closing(),
        last_event_id,
        retry: state.config().retry,
        guard,
    });
    let keep_alive = KeepAlive::new()
        .interval(state.config().heartbeat)
        .text("heartbeat");
    let mut response = Sse::new(stream).keep_alive(keep_alive).into_response();
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Tells nginx-style proxies not to buffer the stream.
    out.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        out.insert("x-request-id", id);
    }
    Ok(response)
}

/// The `Authorization` header wins when present; otherwise the query token.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Principal, AuthError> {
    match (http_util::authorization(headers), query_token) {
        (Some(header), _) => state.auth().authenticate_header(Some(header)).await,
        (None, Some(token)) => state.auth().authenticate_token(token).await,
        (None, None) => Err(AuthError::Missing),
    }
}
