//! The worker's Prometheus metrics: names in one place so dashboards and the README agree.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

pub const EVENTS: &str = "scoreboard_worker_events_total";
pub const BATCHES: &str = "scoreboard_worker_batches_total";
pub const BATCH_SIZE: &str = "scoreboard_worker_batch_size";
pub const STORE_SECONDS: &str = "scoreboard_worker_store_seconds";
pub const COMMIT_SECONDS: &str = "scoreboard_worker_commit_seconds";
pub const LAG_SECONDS: &str = "scoreboard_worker_lag_seconds";
pub const RETRIES: &str = "scoreboard_worker_retries_total";
pub const DLQ: &str = "scoreboard_worker_dlq_total";

pub const USER_RECORDS: &str = "scoreboard_worker_user_records_total";

/// Users' records a batch needed: `remembered` by the owner, `read` from the store.
pub(crate) fn user_records(remembered: usize, read: usize) {
    counter!(USER_RECORDS, "source" => "remembered").increment(remembered as u64);
    counter!(USER_RECORDS, "source" => "read").increment(read as u64);
}

pub(crate) fn retry(stage: &'static str) {
    counter!(RETRIES, "stage" => stage).increment(1);
}

pub const PARTITION_EVENTS: &str = "scoreboard_worker_partition_events_total";
pub const PARTITION_OWNED: &str = "scoreboard_worker_partition_owned";
pub const PARTITION_LAG_SECONDS: &str = "scoreboard_worker_partition_lag_seconds";
pub const PARTITION_BACKLOG: &str = "scoreboard_worker_partition_backlog";
pub const PARTITION_DLQ: &str = "scoreboard_worker_partition_dlq_total";
pub const STREAM_BEHIND_STORE: &str = "scoreboard_worker_stream_behind_store_total";
pub const MERGES: &str = "scoreboard_worker_merges_total";
pub const MERGE_SECONDS: &str = "scoreboard_worker_merge_seconds";
pub const WRITE_GROUP_SIZE: &str = "scoreboard_worker_store_write_group_size";
pub const MERGER_HELD: &str = "scoreboard_worker_merger_held";

pub(crate) fn partition_batch(
    partition: u16,
    applied: usize,
    dead: usize,
    store: Duration,
    commit: Duration,
) {
    let p = partition.to_string();
    counter!(BATCHES).increment(1);
    histogram!(BATCH_SIZE).record((applied + dead) as f64);
    counter!(PARTITION_EVENTS, "partition" => p.clone(), "outcome" => "applied")
        .increment(applied as u64);
    counter!(EVENTS, "outcome" => "applied").increment(applied as u64);
    counter!(EVENTS, "outcome" => "dead").increment(dead as u64);
    counter!(PARTITION_DLQ, "partition" => p).increment(dead as u64);
    counter!(DLQ).increment(dead as u64);
    histogram!(STORE_SECONDS).record(store.as_secs_f64());
    histogram!(COMMIT_SECONDS).record(commit.as_secs_f64());
}

pub(crate) fn partition_lag(partition: u16, lag_ms: u64) {
    let seconds = lag_ms as f64 / 1_000.0;
    histogram!(LAG_SECONDS).record(seconds);
    gauge!(PARTITION_LAG_SECONDS, "partition" => partition.to_string()).set(seconds);
}

pub(crate) fn partition_backlog(partition: u16, entries: u64) {
    gauge!(PARTITION_BACKLOG, "partition" => partition.to_string()).set(entries as f64);
}

pub(crate) fn partition_owned(partition: u16, owned: bool) {
    gauge!(PARTITION_OWNED, "partition" => partition.to_string()).set(if owned {
        1.0
    } else {
        0.0
    });
}

/// Counts a stream found behind the store's high-water mark (`behind`), or only registers the series at
/// 0 so the alert's `increase()` sees the first one.
pub(crate) fn stream_behind_store(partition: u16, behind: bool) {
    counter!(STREAM_BEHIND_STORE, "partition" => partition.to_string())
        .increment(u64::from(behind));
}

/// One merge: its outcome and how long reading the partition tops and publishing took.
pub(crate) fn merge(outcome: &'static str, took: Duration) {
    counter!(MERGES, "outcome" => outcome).increment(1);
    histogram!(MERGE_SECONDS).record(took.as_secs_f64());
}

/// Partition batches carried by one combined store write (`store/combine.rs`).
pub(crate) fn write_group(batches: usize) {
    histogram!(WRITE_GROUP_SIZE).record(batches as f64);
}

pub(crate) fn merger_held(held: bool) {
    gauge!(MERGER_HELD).set(if held { 1.0 } else { 0.0 });
}
