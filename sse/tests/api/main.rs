//! Integration tests of the SSE container against a real `redis-server` (and a real 3-master Redis Cluster
//! in `cluster`), read with a real HTTP client.

mod auth;
mod binary;
mod caps;
mod cluster;
mod dev;
mod helpers;
mod lifetime;
mod logging;
mod metrics;
mod pubsub;
mod stream;
mod tls;
