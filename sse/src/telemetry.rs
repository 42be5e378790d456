//! Prometheus metrics of the SSE process (one recorder per process) and the request span that records the
//! path only: the query string may carry `access_token`, so it is never logged.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use metrics::Counter;
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

/// Bytes of events written by streams but not yet taken by their client's socket (a slow reader's backlog;
/// the bytes themselves are the shared frame, held by reference).
pub const BYTES_BUFFERED: &str = "sse_bytes_buffered";
/// Streams waiting for their client's socket to accept more (slow readers right now).
pub const STREAMS_BLOCKED: &str = "sse_streams_write_blocked";
/// Resident memory of the process; divided by `sse_connections` it is the cost of one open stream.
pub const RESIDENT_BYTES: &str = "sse_resident_memory_bytes";

/// Updated on the write path with plain atomics and copied into the gauges at each scrape, so writing an
/// event touches no metrics registry.
static BUFFERED: AtomicU64 = AtomicU64::new(0);
static BLOCKED: AtomicU64 = AtomicU64::new(0);

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
    metrics::describe_gauge!(
        BYTES_BUFFERED,
        "bytes of events waiting for slow clients' sockets (shared frames, held by reference)"
    );
    metrics::describe_gauge!(
        STREAMS_BLOCKED,
        "streams waiting for their client's socket to accept more"
    );
    metrics::describe_gauge!(
        RESIDENT_BYTES,
        "resident memory of the process (divide by sse_connections for the cost of one stream)"
    );
    metrics::describe_counter!(
        PUBSUB_PINGS_MISSED,
        "Pub/Sub pings without a pong in time (half-open link), each followed by a resubscription"
    );
}

/// Copies the write-path figures into their gauges; called before each render of `/metrics`.
pub fn refresh() {
    metrics::gauge!(BYTES_BUFFERED).set(BUFFERED.load(Ordering::Relaxed) as f64);
    metrics::gauge!(STREAMS_BLOCKED).set(BLOCKED.load(Ordering::Relaxed) as f64);
    if let Some(bytes) = resident_bytes() {
        metrics::gauge!(RESIDENT_BYTES).set(bytes as f64);
    }
}

/// Resident set size from `/proc/self/statm` (Linux; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A stream now holds `bytes` more (or, negative, fewer) unwritten bytes.
pub fn buffered(bytes: i64) {
    if bytes >= 0 {
        BUFFERED.fetch_add(bytes.unsigned_abs(), Ordering::Relaxed);
    } else {
        BUFFERED.fetch_sub(bytes.unsigned_abs(), Ordering::Relaxed);
    }
}

/// A stream starts (`true`) or stops (`false`) waiting for its client's socket.
pub fn write_blocked(blocked: bool) {
    if blocked {
        BLOCKED.fetch_add(1, Ordering::Relaxed);
    } else {
        BLOCKED.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One `leaderboard` event written to a client (a cached handle: no registry look-up per event).
pub fn event_sent() {
    static SENT: OnceLock<Counter> = OnceLock::new();
    SENT.get_or_init(|| metrics::counter!(EVENTS_SENT))
        .increment(1);
}

/// Versions one client never saw.
pub fn versions_skipped(versions: u64) {
    static SKIPPED: OnceLock<Counter> = OnceLock::new();
    SKIPPED
        .get_or_init(|| metrics::counter!(VERSIONS_SKIPPED))
        .increment(versions);
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
