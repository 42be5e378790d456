//! Which score store the worker writes to (`STORE`) and how to reach it.

use secrecy::SecretString;

use scoreboard_shared::config::{ConfigError, Env};

use crate::store::dynamo::DynamoConfig;

/// The system of record and its connection settings.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// `STORE=mongodb` (the default).
    MongoDb(MongoConfig),
    /// `STORE=dynamodb`.
    DynamoDb(DynamoConfig),
}

/// `MONGODB_URI` (`mongodb://` or `mongodb+srv://`, TLS options allowed), `MONGODB_DATABASE`,
/// `MONGODB_COLLECTION`.
#[derive(Debug, Clone)]
pub struct MongoConfig {
    /// May hold a password, so it is kept secret.
    pub uri: SecretString,
    pub database: String,
    pub collection: String,
}

impl StoreConfig {
    /// # Errors
    /// When `STORE` names an unknown store or the chosen store's settings are missing or invalid.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        match env.optional("STORE").as_deref().unwrap_or("mongodb") {
            "mongodb" => Ok(Self::MongoDb(MongoConfig::from_env(env)?)),
            "dynamodb" => Ok(Self::DynamoDb(DynamoConfig::from_env(env)?)),
            other => Err(ConfigError::new(
                "STORE",
                format!("expected mongodb or dynamodb, got {other:?}"),
            )),
        }
    }

    /// The variable that says where the store is, for "cannot reach it" messages: `MONGODB_URI`, or
    /// `AWS_ENDPOINT_URL` when set, else `AWS_REGION`.
    pub fn address_var(&self) -> &'static str {
        match self {
            Self::MongoDb(_) => "MONGODB_URI",
            Self::DynamoDb(dynamo) if dynamo.endpoint_url.is_some() => "AWS_ENDPOINT_URL",
            Self::DynamoDb(_) => "AWS_REGION",
        }
    }
}

impl MongoConfig {
    /// # Errors
    /// When `MONGODB_URI` is missing or has another scheme, or a name is invalid.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let uri = env.required("MONGODB_URI")?;
        if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
            return Err(ConfigError::new(
                "MONGODB_URI",
                "must start with mongodb:// or mongodb+srv://",
            ));
        }
        let database = env
            .optional("MONGODB_DATABASE")
            .unwrap_or_else(|| "scoreboard".to_owned());
        let collection = env
            .optional("MONGODB_COLLECTION")
            .unwrap_or_else(|| "scores".to_owned());
        for (var, name) in [
            ("MONGODB_DATABASE", &database),
            ("MONGODB_COLLECTION", &collection),
        ] {
            if name.len() > 64 || name.contains(['/', '\\', '.', ' ', '"', '$']) {
                return Err(ConfigError::new(var, "is not a valid MongoDB name"));
            }
        }
        Ok(Self {
            uri: uri.into(),
            database,
            collection,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mongodb_is_the_default_and_needs_a_uri() {
        let err = StoreConfig::from_env(&Env::default()).unwrap_err();
        assert_eq!(err.var, "MONGODB_URI");
    }

    #[test]
    fn rejects_other_schemes_without_echoing_the_uri() {
        let env = Env::from_pairs([("MONGODB_URI", "postgres://u:hunter2@h")]);
        let err = StoreConfig::from_env(&env).unwrap_err();
        assert_eq!(err.var, "MONGODB_URI");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn accepts_atlas_srv_uris() {
        let env = Env::from_pairs([(
            "MONGODB_URI",
            "mongodb+srv://u:p@cluster0.example.net/?tls=true",
        )]);
        let StoreConfig::MongoDb(cfg) = StoreConfig::from_env(&env).unwrap() else {
            panic!("mongodb is the default store");
        };
        assert_eq!(
            (cfg.database.as_str(), cfg.collection.as_str()),
            ("scoreboard", "scores")
        );
    }

    #[test]
    fn dynamodb_needs_a_table() {
        let env = Env::from_pairs([("STORE", "dynamodb")]);
        assert_eq!(
            StoreConfig::from_env(&env).unwrap_err().var,
            "DYNAMODB_TABLE"
        );
        let env = Env::from_pairs([("STORE", "cassandra")]);
        assert_eq!(StoreConfig::from_env(&env).unwrap_err().var, "STORE");
    }

    #[test]
    fn the_address_variable_follows_the_store() {
        let mongo = Env::from_pairs([("MONGODB_URI", "mongodb://h")]);
        assert_eq!(
            StoreConfig::from_env(&mongo).unwrap().address_var(),
            "MONGODB_URI"
        );
        let dynamo = Env::from_pairs([("STORE", "dynamodb"), ("DYNAMODB_TABLE", "scores")]);
        assert_eq!(
            StoreConfig::from_env(&dynamo).unwrap().address_var(),
            "AWS_REGION"
        );
        let local = Env::from_pairs([
            ("STORE", "dynamodb"),
            ("DYNAMODB_TABLE", "scores"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:8000"),
        ]);
        assert_eq!(
            StoreConfig::from_env(&local).unwrap().address_var(),
            "AWS_ENDPOINT_URL"
        );
    }
}
