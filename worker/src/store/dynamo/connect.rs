//! Building the DynamoDB client from [`DynamoConfig`] (SDK retries off: [`super::RetryPolicy`] is the one
//! policy), creating the table when asked, and checking at start-up that the table is usable.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Region;

use super::{DynamoConfig, DynamoStore, table};
use crate::store::StoreError;

impl DynamoStore {
    /// Builds the client (region, endpoint and credentials from `config`, else the SDK's default
    /// chains) and, when `config.ensure_table` is set, creates the table. Makes no call otherwise.
    ///
    /// # Errors
    /// When no region is configured, or the table setup fails.
    pub async fn connect(config: DynamoConfig) -> Result<Self, StoreError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(config.attempt_timeout)
                    .build(),
            );
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(credentials) = &config.credentials {
            loader = loader.credentials_provider(credentials.to_sdk());
        }
        let sdk_config = loader.load().await;
        if sdk_config.region().is_none() {
            return Err(StoreError::unexpected(
                "AWS_REGION: no AWS region configured (set AWS_REGION)",
            ));
        }
        let store = Self {
            client: Client::new(&sdk_config),
            config: Arc::new(config),
            counters: Arc::default(),
        };
        if store.config.ensure_table {
            store.ensure_table().await?;
        }
        Ok(store)
    }

    /// Creates the table (on-demand, `pk` string key) if missing and waits until it is active.
    /// Idempotent.
    ///
    /// # Errors
    /// When the service cannot be reached or refuses.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        table::ensure_table(&self.client, &self.config.table, &self.config.retry).await
    }

    /// Checks that the table exists and has the key schema the store writes (a string HASH key `pk`),
    /// with one `DescribeTable`.
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] naming `DYNAMODB_TABLE` (missing table, wrong key schema) or the
    /// credentials (access denied); [`StoreError::Unavailable`] when the service does not answer.
    pub async fn check_table(&self) -> Result<(), StoreError> {
        table::check_table(
            &self.client,
            &self.config.table,
            &self.location(),
            &self.config.retry,
        )
        .await
    }

    /// The region, and the endpoint when one is configured, for messages.
    fn location(&self) -> String {
        let region = self
            .client
            .config()
            .region()
            .map_or_else(|| "an unknown region".to_owned(), ToString::to_string);
        match &self.config.endpoint_url {
            Some(url) => format!("{region} at {url}"),
            None => region,
        }
    }
}
