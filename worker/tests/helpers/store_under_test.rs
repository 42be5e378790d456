//! The store a scenario runs against, so the same scenario runs on every adapter. The DynamoDB
//! adapter adds a variant here (with DynamoDB Local from the test kit).

use std::sync::Arc;

use scoreboard_testkit::{DynamoLocal, MongoServer};
use scoreboard_worker::config::{Env, StoreConfig};
use scoreboard_worker::store::{self, WatermarkStore};

/// A running store server plus how to reach it.
#[derive(Debug)]
pub enum StoreUnderTest {
    /// nx-27017, or a real mongod when `MONGODB_URI` is set.
    Mongo(MongoServer),
    /// DynamoDB Local; the worker creates the table at start-up (`DYNAMODB_ENSURE_TABLE=true`).
    Dynamo(DynamoLocal),
}

/// The table DynamoDB scenarios use.
pub const DYNAMODB_TABLE: &str = "scoreboard-test";

impl StoreUnderTest {
    /// MongoDB (nx-27017 unless `MONGODB_URI` is set).
    pub fn mongo() -> Self {
        Self::Mongo(MongoServer::start())
    }

    /// A MongoDB-protocol server this test owns (it can be stopped and restarted).
    pub fn spawned_mongo() -> Self {
        Self::Mongo(MongoServer::spawn())
    }

    /// DynamoDB Local, in memory.
    pub fn dynamodb() -> Self {
        Self::Dynamo(DynamoLocal::start())
    }

    /// DynamoDB Local keeping its data on disk, so a stop and restart (outage) loses nothing.
    pub fn spawned_dynamodb() -> Self {
        Self::Dynamo(DynamoLocal::start_persistent())
    }

    /// The environment a worker process needs to reach this store (for DynamoDB: endpoint, region
    /// and dummy keys, which the config hands to the SDK, never this process's environment).
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            Self::Mongo(server) => vec![
                ("STORE".into(), "mongodb".into()),
                ("MONGODB_URI".into(), server.uri().into()),
                ("MONGODB_DATABASE".into(), server.database().into()),
            ],
            Self::Dynamo(server) => {
                let mut env = server.child_env();
                env.extend([
                    ("STORE".into(), "dynamodb".into()),
                    ("DYNAMODB_TABLE".into(), DYNAMODB_TABLE.into()),
                    ("DYNAMODB_ENSURE_TABLE".into(), "true".into()),
                ]);
                env
            }
        }
    }

    pub fn config(&self) -> StoreConfig {
        StoreConfig::from_env(&Env::from_pairs(self.env())).expect("store config")
    }

    /// Connects through the production factory.
    pub async fn connect(&self) -> Arc<dyn WatermarkStore> {
        store::connect(&self.config())
            .await
            .expect("connect to the store under test")
    }

    /// Stops the server (outage).
    pub fn stop(&mut self) {
        match self {
            Self::Mongo(server) => server.stop(),
            Self::Dynamo(server) => server.stop(),
        }
    }

    /// Starts it again with its data.
    pub fn restart(&mut self) {
        match self {
            Self::Mongo(server) => server.restart(),
            Self::Dynamo(server) => server.restart(),
        }
    }
}
