//! The update function: `POST /api/v1/scores/update`. Authenticate, validate at the edge, then one Redis
//! script call on the user's partition that checks idempotency, the backlog bound and the rate limit and
//! appends to the partition's stream (the script lives in `scoreboard_shared::redis::enqueue`, which the
//! worker's `dlq replay` uses too).
//!
//! - [`handler`]: the Lambda handler ([`UpdateService`]): the request → response steps, in order.
//! - [`body`]: the JSON body parser (`scoreIncrement` only; anything else is refused).
//! - [`idempotency_key`]: the `Idempotency-Key` header rules.
//! - [`config`]: this function's settings; the rate limit is the shared [`RateLimit`] type.
//!
//! [`RateLimit`]: scoreboard_shared::config::RateLimit

pub mod body;
pub mod config;
pub mod handler;
pub mod idempotency_key;

pub use config::UpdateConfig;
pub use handler::{UPDATE_PATH, UpdateService};
pub use scoreboard_shared::redis::enqueue::{EnqueueOutcome, EnqueueRequest, Enqueuer};
