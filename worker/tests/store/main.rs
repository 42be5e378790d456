//! The score store ports and their adapters: one contract suite per port (v1 `ScoreStore` in
//! `contract.rs`, v2 `WatermarkStore` in `watermark_contract.rs`) run against every adapter (memory,
//! MongoDB on the MongoDB-protocol server from the test kit, DynamoDB Local), plus what only one adapter has
//! (MongoDB's dedupe window, lenient numbers, v2 round trips and write concern; DynamoDB's transaction
//! chunking, call counts, table setup and v2 read chunking).

mod contract;
mod dynamo;
mod dynamo_setup;
mod dynamo_watermark;
mod mongo;
mod mongo_watermark;
mod watermark_contract;
