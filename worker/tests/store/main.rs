//! The score store port and its adapters: one contract suite (`contract.rs`, `WatermarkStore`) run
//! against every adapter (memory, MongoDB on the MongoDB-protocol server from the test kit, DynamoDB
//! Local), plus what only one adapter has (MongoDB: lenient numbers, indexes, outages, authentication,
//! round trips and write concern; DynamoDB: paginated scans, ping, outages, table setup and read
//! chunking).

mod contract;
mod dynamo;
mod dynamo_setup;
mod dynamo_watermark;
mod mongo;
mod mongo_watermark;
