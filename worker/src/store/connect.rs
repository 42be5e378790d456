//! Building the configured score store once at start-up (`STORE=mongodb|dynamodb`), as a shared trait
//! object, after checking that it is usable: MongoDB answers and its indexes exist or can be made; the
//! DynamoDB table exists with the expected key schema (created first when `DYNAMODB_ENSURE_TABLE=true`).

use std::sync::Arc;

use super::combine::{CombiningStore, MONGODB_WRITES_IN_FLIGHT};
use super::dynamo::DynamoStore;
use super::mongo::MongoStore;
use super::{StoreError, WatermarkStore};
use crate::config::StoreConfig;

/// Connects to the configured store and checks it is usable (creating what it needs, e.g. indexes).
///
/// # Errors
/// [`StoreError::Unavailable`] when the store cannot be reached (worth another try);
/// [`StoreError::Unexpected`] when it refuses or is set up wrong, with a message that starts with the
/// variable to fix (`MONGODB_URI: …`, `DYNAMODB_TABLE: …`).
pub async fn connect(config: &StoreConfig) -> Result<Arc<dyn WatermarkStore>, StoreError> {
    Ok(match config {
        StoreConfig::MongoDb(mongo) => Arc::new(CombiningStore::new(
            Arc::new(MongoStore::connect(mongo).await?),
            MONGODB_WRITES_IN_FLIGHT,
        )),
        StoreConfig::DynamoDb(dynamo) => {
            let store = DynamoStore::connect(dynamo.clone()).await?;
            store.check_table().await?;
            Arc::new(store)
        }
    })
}
