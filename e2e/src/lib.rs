//! End-to-end harness: builds the binaries, starts the whole stack as processes (redis-server — or a
//! 3-master Redis Cluster — nx-27017, both functions under `cargo lambda watch`, the worker, the SSE
//! server) on loopback ports, and gives tests tokens, URLs and an SSE reader. Everything it starts is
//! stopped when the [`Stack`] drops. `make dev` runs the same [`Stack`] through the `scoreboard-dev` binary.
//!
//! A component that cannot start fails the test with its log; nothing skips.

mod options;
pub mod proc;
mod sse_client;
mod stack;

pub use options::{CLUSTER_MASTERS, Ports, StackOptions, workspace_root};
pub use proc::Proc;
pub use sse_client::{Message, SseClient};
pub use stack::{DURABLE_REDIS, Stack};
