//! The MongoDB adapter of the [`WatermarkStore`](super::WatermarkStore) (`mongo/watermark.rs`: per-user
//! `wm` compare-and-set in one unordered bulk `update`, the partition's `hw` document;
//! `mongo/migrate.rs`: v1 documents to v2).
//!
//! Errors: network failures, server selection timeouts, failovers, shutdowns, write conflicts, rate
//! limits and unmet write concerns are [`StoreError::Unavailable`] (transient, see [`is_transient`] in
//! `mongo/errors.rs`); everything else — failed authentication, missing privileges, an invalid URI, a
//! document this code cannot read — is [`StoreError::Unexpected`], which the worker does not retry.
//! [`MongoStore::connect`] is the start-up check: the URI parses, the server answers, and the indexes
//! (on `score` and on `p`) exist or are made.

use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use secrecy::ExposeSecret;

use super::{StoreError, UserTotal};
use crate::config::MongoConfig;

mod bulk;
mod errors;
mod migrate;
mod watermark;

pub use self::errors::is_transient;
use self::errors::store_error;

/// MongoDB's duplicate key error code.
const DUPLICATE_KEY: i32 = 11000;
/// Name of the index on `p` (a partition's users, for rebuilds).
const PARTITION_INDEX: &str = "partition";

/// A connected MongoDB score store.
#[derive(Debug, Clone)]
pub struct MongoStore {
    db: Database,
    collection: Collection<Document>,
}

impl MongoStore {
    /// Connects with `MONGODB_URI` (`mongodb+srv://` and TLS options work) and creates the indexes.
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] naming `MONGODB_URI` when the URI is invalid or authentication fails;
    /// [`StoreError::Unavailable`] when the server (or an `+srv` DNS lookup) does not answer.
    pub async fn connect(config: &MongoConfig) -> Result<Self, StoreError> {
        scoreboard_shared::tls::install_crypto_provider();
        // The URI may hold a password: only the error kind is reported, which never echoes it.
        let mut options = ClientOptions::parse(config.uri.expose_secret())
            .await
            .map_err(|e| {
                let message = format!("MONGODB_URI: {}", e.kind);
                if is_transient(&e) {
                    StoreError::unavailable(message)
                } else {
                    StoreError::unexpected(message)
                }
            })?;
        apply_defaults(&mut options);
        Self::with_options(options, config).await
    }

    /// Connects with explicit client options (tests add a command monitor) and creates the indexes.
    ///
    /// # Errors
    /// When the server cannot be reached or index creation fails.
    pub async fn with_options(
        options: ClientOptions,
        config: &MongoConfig,
    ) -> Result<Self, StoreError> {
        scoreboard_shared::tls::install_crypto_provider();
        let client = Client::with_options(options).map_err(store_error)?;
        let db = client.database(&config.database);
        let collection = db.collection::<Document>(&config.collection);
        let store = Self { db, collection };
        store.ensure_indexes().await?;
        Ok(store)
    }

    /// The one secondary index, on `p`, for rebuild scans. Nothing reads the store by score (the top
    /// comes from Redis), so there is no score index to maintain on every write; v1 created one
    /// (`score_desc`), which `db.<collection>.dropIndex("score_desc")` removes.
    async fn ensure_indexes(&self) -> Result<(), StoreError> {
        let by_partition = IndexModel::builder()
            .keys(doc! {"p": 1})
            .options(
                IndexOptions::builder()
                    .name(PARTITION_INDEX.to_owned())
                    .build(),
            )
            .build();
        self.collection
            .create_index(by_partition)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn ping_server(&self) -> Result<(), StoreError> {
        self.db
            .run_command(doc! {"ping": 1})
            .await
            .map(|_| ())
            .map_err(store_error)
    }
}

/// Short timeouts so an outage surfaces as an error the worker retries, not a long hang.
fn apply_defaults(options: &mut ClientOptions) {
    use std::time::Duration;
    options
        .app_name
        .get_or_insert_with(|| "scoreboard-worker".to_owned());
    options
        .server_selection_timeout
        .get_or_insert(Duration::from_secs(5));
    options
        .connect_timeout
        .get_or_insert(Duration::from_secs(5));
}

/// Reads a number the way different servers store it: Int32, Int64 or an integral Double.
pub fn lenient_u64(value: &Bson) -> Option<u64> {
    match value {
        Bson::Int32(n) => u64::try_from(*n).ok(),
        Bson::Int64(n) => u64::try_from(*n).ok(),
        Bson::Double(f) if f.fract() == 0.0 && *f >= 0.0 && *f < 9.007_199_254_740_992e15 => {
            Some(*f as u64)
        }
        _ => None,
    }
}

fn to_total(doc: &Document) -> Result<UserTotal, StoreError> {
    let user_id = doc
        .get_str("_id")
        .map_err(|_| unexpected("a document without a string _id"))?
        .to_owned();
    let score = match doc.get("score") {
        None | Some(Bson::Null) => 0,
        Some(value) => lenient_u64(value).ok_or_else(|| unexpected("a non-integer score"))?,
    };
    let display_name = doc.get_str("name").ok().map(str::to_owned);
    Ok(UserTotal {
        user_id,
        display_name,
        score,
    })
}

fn unexpected(what: &str) -> StoreError {
    StoreError::unexpected(what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_leniently() {
        assert_eq!(lenient_u64(&Bson::Int32(7)), Some(7));
        assert_eq!(
            lenient_u64(&Bson::Int64(5_000_000_000)),
            Some(5_000_000_000)
        );
        assert_eq!(lenient_u64(&Bson::Double(12.0)), Some(12));
        assert_eq!(lenient_u64(&Bson::Double(1.5)), None);
        assert_eq!(lenient_u64(&Bson::Int32(-1)), None);
        assert_eq!(lenient_u64(&Bson::String("3".into())), None);
    }

    #[tokio::test]
    async fn tls_uris_enable_tls_and_short_timeouts_are_applied() {
        let mut options =
            ClientOptions::parse("mongodb://u:p@h1:27017,h2:27017/?tls=true&replicaSet=rs0")
                .await
                .unwrap();
        apply_defaults(&mut options);
        assert!(matches!(
            options.tls,
            Some(mongodb::options::Tls::Enabled(_))
        ));
        assert_eq!(
            options.server_selection_timeout,
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(options.app_name.as_deref(), Some("scoreboard-worker"));
    }

    #[tokio::test]
    async fn an_invalid_uri_is_not_transient_and_names_the_variable() {
        let config = MongoConfig {
            uri: "mongodb://127.0.0.1:notaport/".to_owned().into(),
            database: "db".to_owned(),
            collection: "c".to_owned(),
        };
        let error = MongoStore::connect(&config).await.unwrap_err();
        assert!(!error.is_transient(), "{error}");
        assert!(error.message().starts_with("MONGODB_URI: "), "{error}");
    }

    #[test]
    fn documents_become_totals() {
        let total = to_total(&doc! {"_id": "u1", "score": 42i32, "name": "Ann"}).unwrap();
        assert_eq!(total.score, 42);
        assert_eq!(total.display_name.as_deref(), Some("Ann"));
        assert!(to_total(&doc! {"_id": 3, "score": 1}).is_err());
    }
}
