//! The SSE fan-out container: one Redis Pub/Sub subscription per process feeds a `watch` of the latest
//! snapshot, and every browser's `EventSource` stream reads from it. Also serves the demo page.

pub mod config;
mod demo;
mod dev;
mod direct;
mod events;
mod heartbeat;
mod hub;
mod last_event_id;
mod lifetime;
mod limits;
mod problem;
mod pubsub;
mod server;
mod state;
mod stream;
mod telemetry;
mod wire;

pub use config::SseConfig;
pub use server::{app, metrics_app, run, run_with_metrics};
pub use state::AppState;
