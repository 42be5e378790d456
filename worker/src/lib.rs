//! The stream worker: drains `{sb}:updates` in batches into the score store (one bulk call per batch)
//! and mirrors totals into Redis (one commit script per batch), exactly once in effect per event.
//!
//! - [`app`]: wiring for the binary (config, the store connection and its start-up check, HTTP port, the
//!   loop until shutdown or a store error that retrying cannot fix).
//! - [`worker`]: the drain loop, one [`Worker::step`] per batch: fetch, write the store, commit.
//! - [`stream`]: consumer-group reads, reclaims and trims of the update stream.
//! - [`batch`]: coalescing a batch's events per user.
//! - [`commit`]: the commit script (`commit.lua`): totals, names, the snapshot, dead letters, acks.
//! - [`rebuild`]: refilling the Redis board from the store.
//! - [`store`]: the score store port and its adapters (`mongo`, `dynamo`, `memory` for unit tests);
//!   exactly-once per event id lives there.
//! - [`config`]: the worker's settings and the store selection. [`http`]: `/healthz` and `/metrics`.
//!
//! `main.rs` only calls [`app`]; tests drive [`Worker`] step by step.

pub mod app;
mod batch;
mod commit;
pub mod config;
mod error;
mod http;
pub mod metrics;
mod rebuild;
pub mod store;
mod stream;
mod worker;

pub use batch::coalesce;
pub use commit::{CommitInput, CommitOutcome, CommitScript, DLQ_MAX_LEN, DeadLetter};
pub use error::WorkerError;
pub use http::{HealthState, app as health_app};
pub use rebuild::{RebuildOutcome, rebuild, rebuild_if_empty};
pub use scoreboard_shared::redis::entry::{MAX_ENTRY_INCREMENT, StreamEvent, parse_entry};
pub use stream::{RawEntry, ensure_group, next_id, pending_summary, trim_acked};
pub use worker::{Batch, StepOutcome, Worker};
