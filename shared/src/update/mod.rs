//! The update function: authenticate, validate, then one script call that checks idempotency, the backlog
//! bound and the rate limit and appends to the stream.

mod body;
mod enqueue;
mod handler;
mod idempotency_key;

pub use body::{MAX_BODY_BYTES, parse_increment};
pub use enqueue::{EnqueueOutcome, EnqueueRequest, Enqueuer};
pub use handler::{UPDATE_PATH, UpdateService};
pub use idempotency_key::parse_idempotency_key;
