//! The score store ports and their adapters: one contract suite per port (v1 `ScoreStore` in
//! `contract.rs`, v2 `WatermarkStore` in `watermark_contract.rs`) run against every adapter (memory,
//! MongoDB on the MongoDB-protocol server from the test kit, DynamoDB Local), plus what only one adapter has
//! (MongoDB's dedupe window and lenient numbers; DynamoDB's transaction chunking, call counts and table
//! setup).

mod contract;
mod dynamo;
mod dynamo_setup;
mod mongo;
mod watermark_contract;
