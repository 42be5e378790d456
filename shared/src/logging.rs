//! Structured logs: JSON lines (what CloudWatch and log shippers parse) filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Initialises JSON logging once. Later calls are ignored, so tests may call it freely.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_target(false)
        .without_time() // Lambda and the container runtime stamp each line.
        .with_env_filter(filter)
        .try_init();
}
