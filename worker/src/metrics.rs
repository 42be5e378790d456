//! The worker's Prometheus metrics: names in one place so dashboards and the README agree.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

pub const EVENTS: &str = "scoreboard_worker_events_total";
pub const BATCHES: &str = "scoreboard_worker_batches_total";
pub const BATCH_SIZE: &str = "scoreboard_worker_batch_size";
pub const STORE_SECONDS: &str = "scoreboard_worker_store_seconds";
pub const COMMIT_SECONDS: &str = "scoreboard_worker_commit_seconds";
pub const LAG_SECONDS: &str = "scoreboard_worker_lag_seconds";
pub const PENDING: &str = "scoreboard_worker_pending";
pub const RETRIES: &str = "scoreboard_worker_retries_total";
pub const DLQ: &str = "scoreboard_worker_dlq_total";
pub const SNAPSHOTS: &str = "scoreboard_worker_snapshots_total";

pub(crate) fn batch(applied: usize, dead: usize, store: Duration, commit: Duration) {
    counter!(BATCHES).increment(1);
    histogram!(BATCH_SIZE).record((applied + dead) as f64);
    counter!(EVENTS, "outcome" => "applied").increment(applied as u64);
    counter!(EVENTS, "outcome" => "dead").increment(dead as u64);
    counter!(DLQ).increment(dead as u64);
    histogram!(STORE_SECONDS).record(store.as_secs_f64());
    histogram!(COMMIT_SECONDS).record(commit.as_secs_f64());
}

pub(crate) fn lag(seconds: f64) {
    histogram!(LAG_SECONDS).record(seconds.max(0.0));
}

pub(crate) fn retry(stage: &'static str) {
    counter!(RETRIES, "stage" => stage).increment(1);
}

pub(crate) fn pending(count: usize) {
    gauge!(PENDING).set(count as f64);
}

pub(crate) fn snapshot() {
    counter!(SNAPSHOTS).increment(1);
}
