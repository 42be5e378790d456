//! The stream worker: drains `{sb}:updates` in batches into the score store (one bulk call per batch)
//! and mirrors totals into Redis (one commit script per batch), exactly once in effect per event.
//! `main.rs` only calls [`app::main`]; tests drive [`Worker`] step by step.

pub mod app;
mod batch;
mod commit;
mod entry;
mod http;
pub mod metrics;
mod rebuild;
mod retry;
mod shutdown;
mod stream;
mod worker;

pub use batch::coalesce;
pub use commit::{CommitInput, CommitOutcome, CommitScript, DLQ_MAX_LEN, DeadLetter};
pub use entry::{MAX_ENTRY_INCREMENT, StreamEvent, parse_entry};
pub use http::{HealthState, app as health_app};
pub use rebuild::{REBUILD_LOCK, RebuildOutcome, rebuild, rebuild_if_empty};
pub use retry::Backoff;
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use stream::{RawEntry, ensure_group, next_id, pending_summary, trim_acked};
pub use worker::{Batch, StepOutcome, Worker, WorkerError};
