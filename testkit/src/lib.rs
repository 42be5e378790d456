//! Dev-only test kit: starts real servers on free loopback ports, each in its own temp dir, and stops them
//! on drop; mints test tokens; builds real Lambda events; reads shared fixtures.
//!
//! - [`RedisServer`], [`RedisCluster`] (3 masters, optionally with replicas), [`MongoServer`], [`DynamoLocal`]: the real servers (a server that cannot start is a
//!   test failure with a message saying what to install; nothing skips).
//! - [`redis_under_test`]: standalone Redis or a cluster behind one type, for the functions' contract tests.
//! - [`token`]: the one token minter. [`lambda_event`]: function-URL events and decoded responses.
//! - [`fixtures`]: keys, JWKS documents and TLS material under `testkit/fixtures/`.

mod dynamo_local;
pub mod fixtures;
pub mod lambda_event;
mod mongo_server;
mod process;
mod redis_cluster;
mod redis_server;
pub mod redis_under_test;
pub mod token;

pub use dynamo_local::{
    DYNAMO_TEST_ACCESS_KEY_ID, DYNAMO_TEST_REGION, DYNAMO_TEST_SECRET_ACCESS_KEY, DynamoLocal,
};
pub use fixtures::{fixture, fixture_path};
pub use mongo_server::MongoServer;
pub use process::{NotListening, ServerProcess, free_port, wait_for_port, wait_until};
pub use redis_cluster::{ClusterNode, RedisCluster};
pub use redis_server::RedisServer;
