//! Dev-only test kit: starts real servers (redis-server; later the MongoDB-protocol server and DynamoDB
//! Local) on free loopback ports, each in its own temp dir, and stops them on drop.
//!
//! A server that cannot start is a test failure with a message saying what to install; nothing skips.

mod dynamo_local;
mod mongo_server;
mod process;
mod redis_server;

pub use dynamo_local::{
    DYNAMO_TEST_ACCESS_KEY_ID, DYNAMO_TEST_REGION, DYNAMO_TEST_SECRET_ACCESS_KEY, DynamoLocal,
};
pub use mongo_server::MongoServer;
pub use process::{NotListening, ServerProcess, free_port, wait_for_port, wait_until};
pub use redis_server::RedisServer;
