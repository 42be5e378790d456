//! The update function's handler tests: real function-URL / API Gateway v2 events against a real
//! `redis-server` from the test kit; the contract tests (one round trip, rate limit, idempotency) also
//! against a real 3-master Redis Cluster.

mod helpers;
mod jwks_outages;
mod jwks_server;
mod jwt_binding;
mod jwt_rejections;
mod malformed_load;
mod replica_wait;
mod secrets;
mod update_handler;
mod update_limits;
