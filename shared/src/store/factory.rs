//! Building the configured score store once at start-up (`STORE=mongodb|dynamodb`), as a shared trait
//! object. An adapter whose cargo feature is off is a configuration error, not a panic.

use std::sync::Arc;

use super::{ScoreStore, StoreError};
use crate::config::{ConfigError, StoreConfig};

/// Why the store could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Connects to the configured store (creating what it needs, e.g. indexes).
///
/// # Errors
/// [`ConnectError::Config`] when the adapter is not compiled in; [`ConnectError::Store`] when the store
/// cannot be reached or prepared.
pub async fn connect(config: &StoreConfig) -> Result<Arc<dyn ScoreStore>, ConnectError> {
    match config {
        #[cfg(feature = "mongodb")]
        StoreConfig::MongoDb(mongo) => {
            Ok(Arc::new(super::mongo::MongoStore::connect(mongo).await?))
        }
        #[cfg(not(feature = "mongodb"))]
        StoreConfig::MongoDb(_) => Err(ConfigError::new(
            "STORE",
            "mongodb support is not compiled in (cargo feature `mongodb` of scoreboard-shared)",
        )
        .into()),
        #[cfg(feature = "dynamodb")]
        StoreConfig::DynamoDb(dynamo) => {
            let options = super::dynamo::DynamoOptions::from_config(dynamo);
            Ok(Arc::new(
                super::dynamo::DynamoStore::connect(options).await?,
            ))
        }
        #[cfg(not(feature = "dynamodb"))]
        StoreConfig::DynamoDb(_) => Err(ConfigError::new(
            "STORE",
            "dynamodb support is not compiled in (cargo feature `dynamodb` of scoreboard-shared)",
        )
        .into()),
    }
}
