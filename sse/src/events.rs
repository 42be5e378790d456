//! `GET /api/v1/scores/events`: authenticate (header, or `?access_token=` for `EventSource`), take a
//! connection slot, then stream until the token's `exp` or `SSE_MAX_STREAM_SECS`, whichever comes first.
//! Refusals are problem+json ([`Problem`]).

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use scoreboard_shared::auth::{AuthError, Principal};
use scoreboard_shared::{http_util, request_id};
use serde::Deserialize;

use crate::last_event_id;
use crate::lifetime::{Deadline, token_time_left};
use crate::problem::{OrProblem, Problem};
use crate::state::AppState;
use crate::stream::{ClientEvents, StreamSlot, StreamStart, body_stream};
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
    let (principal, token_left) = authenticate(&state, &headers, query.access_token.as_deref())
        .await
        .inspect_err(|_| telemetry::rejected("unauthorized"))
        .or_problem(&request_id)?;
    let guard = state
        .limiter()
        .try_acquire(&principal.user_id)
        .or_problem(&request_id)?;
    let deadline = Deadline::earliest(
        tokio::time::Instant::now(),
        token_left,
        state.config().max_stream,
    );
    let events = ClientEvents::new(StreamStart {
        frames: state.hub().subscribe(),
        ticks: state.heartbeat().subscribe(),
        closing: state.closing(),
        deadline,
        last_event_id: last_event_id::from_headers(&headers),
        retry: state.config().retry,
        guard,
    });
    // Heartbeats come from the shared tick (see `stream`), not from a keep-alive timer per response. The
    // events wait in a slot: written straight to the socket when the connection was opened for this
    // request (`direct`), else by hyper as this body.
    let slot = StreamSlot::new(events);
    let mut response = Response::new(Body::from_stream(body_stream(slot.clone())));
    response.extensions_mut().insert(slot);
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Tells nginx-style proxies not to buffer the stream.
    out.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        out.insert("x-request-id", id);
    }
    Ok(response)
}

/// The `Authorization` header wins when present; otherwise the query token. Also returns how long the
/// verified token has left before its `exp`.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<(Principal, Option<std::time::Duration>), AuthError> {
    let (principal, token) = match (http_util::authorization(headers), query_token) {
        (Some(header), _) => {
            let principal = state.auth().authenticate_header(Some(header)).await?;
            // Verified as `Bearer <token>`, so the token is what follows the scheme.
            let token = header.trim().split_once(' ').map_or("", |(_, t)| t.trim());
            (principal, token)
        }
        (None, Some(token)) => (state.auth().authenticate_token(token).await?, token),
        (None, None) => return Err(AuthError::Missing),
    };
    Ok((principal, token_time_left(token, SystemTime::now())))
}
