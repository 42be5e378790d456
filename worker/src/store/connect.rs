//! Building the configured score store once at start-up (`STORE=mongodb|dynamodb`), as a shared trait
//! object.

use std::sync::Arc;

use super::dynamo::DynamoStore;
use super::mongo::MongoStore;
use super::{ScoreStore, StoreError};
use crate::config::StoreConfig;

/// Connects to the configured store (creating what it needs, e.g. indexes).
///
/// # Errors
/// When the store cannot be reached or prepared.
pub async fn connect(config: &StoreConfig) -> Result<Arc<dyn ScoreStore>, StoreError> {
    Ok(match config {
        StoreConfig::MongoDb(mongo) => Arc::new(MongoStore::connect(mongo).await?),
        StoreConfig::DynamoDb(dynamo) => Arc::new(DynamoStore::connect(dynamo.clone()).await?),
    })
}
