//! Integration tests of the SSE container against a real `redis-server`, read with a real HTTP client.

mod auth;
mod binary;
mod caps;
mod dev;
mod helpers;
mod lifetime;
mod logging;
mod metrics;
mod pubsub;
mod stream;
mod tls;
