//! The worker: owns partitions and drains each one's stream in batches into the score store (two store
//! round trips per batch, exactly once by a per-user watermark) and into the partition's Redis cache (one
//! fenced commit script per batch); one worker at a time also merges the partition tops into the global
//! top 10 and publishes it.
//!
//! - [`app`]: wiring for the binary (config, the store connection and its start-up check, Redis checks,
//!   HTTP port, the balancer and the merger until shutdown) and the subcommands.
//! - [`partition`]: the owner of one partition (read from the cursor, apply by watermark, fenced commit,
//!   rebuild) and the [`partition::balancer`] that shares partitions among live workers.
//! - [`merger`]: the leased merger of the partition tops into `{sb}:top`.
//! - [`lease`]: leases with fencing tokens and epochs (partitions and the merger).
//! - [`dlq`]: `dlq list|replay`.
//! - [`store`]: the score store port and its adapters (`mongo`, `dynamo`, `memory` for unit tests).
//! - [`config`]: the worker's settings and the store selection. [`http`]: `/healthz` and `/metrics`.
//!
//! `main.rs` only calls [`app`]; tests drive [`partition::owner::PartitionOwner`] step by step.

pub mod app;
pub mod config;
pub mod dlq;
mod error;
mod http;
pub mod lease;
pub mod merger;
pub mod metrics;
pub mod partition;
pub mod store;

pub use error::WorkerError;
pub use http::{HealthState, app as health_app};
