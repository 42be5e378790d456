//! The score store port and its adapters: one contract suite run against every adapter (memory, MongoDB
//! on the MongoDB-protocol server from the test kit, DynamoDB Local), plus what only one adapter has
//! (MongoDB's dedupe window and lenient numbers; DynamoDB's transaction chunking, call counts and table
//! setup).

mod contract;
mod dynamo;
mod dynamo_setup;
mod mongo;
