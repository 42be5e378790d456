//! Prometheus metrics of the SSE process (one recorder per process) and the request span that records the
//! path only: the query string may carry `access_token`, so it is never logged.

use axum::extract::Request;
use metrics_exporter_prometheus::PrometheusHandle;
use tracing::Span;

/// Open streams now.
pub const CONNECTIONS: &str = "sse_connections";
/// Streams refused, by `reason` (`process_cap`, `user_cap`, `unauthorized`).
pub const REJECTED: &str = "sse_connections_rejected_total";
/// `leaderboard` events written to clients.
pub const EVENTS_SENT: &str = "sse_events_sent_total";
/// Versions a client never saw because a newer one replaced them first.
pub const VERSIONS_SKIPPED: &str = "sse_versions_skipped_total";
/// Times the Pub/Sub subscription was (re)established after a loss.
pub const PUBSUB_RECONNECTS: &str = "sse_pubsub_reconnects_total";
/// The snapshot version this process holds.
pub const SNAPSHOT_VERSION: &str = "sse_snapshot_version";
/// Streams the server ended on purpose, by `reason` (`token_expired`, `max_lifetime`).
pub const STREAMS_CLOSED: &str = "sse_streams_closed_total";
/// 1 while the Pub/Sub subscription is live, 0 otherwise.
pub const PUBSUB_SUBSCRIBED: &str = "sse_pubsub_subscribed";
/// Pings on the Pub/Sub connection that got no pong in time (a half-open link), each followed by a
/// resubscription.
pub const PUBSUB_PINGS_MISSED: &str = "sse_pubsub_pings_missed_total";

/// The process-wide Prometheus handle, with this process's metrics described.
pub fn prometheus() -> PrometheusHandle {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    let handle = scoreboard_shared::telemetry::prometheus();
    DESCRIBED.call_once(describe);
    handle
}

fn describe() {
    metrics::describe_gauge!(CONNECTIONS, "open SSE streams");
    metrics::describe_counter!(REJECTED, "SSE streams refused, by reason");
    metrics::describe_counter!(EVENTS_SENT, "leaderboard events written to clients");
    metrics::describe_counter!(VERSIONS_SKIPPED, "versions clients skipped (slow or late)");
    metrics::describe_counter!(PUBSUB_RECONNECTS, "Pub/Sub resubscriptions after a loss");
    metrics::describe_gauge!(SNAPSHOT_VERSION, "snapshot version held by this process");
    metrics::describe_counter!(
        STREAMS_CLOSED,
        "SSE streams ended by the server at token expiry or the lifetime cap, by reason"
    );
    metrics::describe_gauge!(
        PUBSUB_SUBSCRIBED,
        "1 while the Pub/Sub subscription is live (answering pings), else 0"
    );
    metrics::describe_counter!(
        PUBSUB_PINGS_MISSED,
        "Pub/Sub pings without a pong in time (half-open link), each followed by a resubscription"
    );
}

pub fn snapshot_version(version: u64) {
    metrics::gauge!(SNAPSHOT_VERSION).set(version as f64);
}

pub fn stream_closed(reason: &'static str) {
    metrics::counter!(STREAMS_CLOSED, "reason" => reason).increment(1);
}

pub fn pubsub_subscribed(up: bool) {
    metrics::gauge!(PUBSUB_SUBSCRIBED).set(if up { 1.0 } else { 0.0 });
}

pub fn rejected(reason: &'static str) {
    metrics::counter!(REJECTED, "reason" => reason).increment(1);
}

/// The span of one request: method and path, never the query.
pub fn request_span(request: &Request) -> Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
    )
}
