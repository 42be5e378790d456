//! DynamoDB settings (`STORE=dynamodb`), one type for the environment and for code: the table, where the
//! service is (`AWS_ENDPOINT_URL` for DynamoDB Local or LocalStack, `AWS_REGION`), whether the worker
//! creates the table, and the call limits. Credentials come from the AWS SDK's
//! default chain unless the environment given here holds static keys (tests pass dummy keys this way,
//! without touching the process environment).

use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::config::Credentials;
use scoreboard_shared::config::{ConfigError, Env};
use secrecy::{ExposeSecret, SecretString};

use super::RetryPolicy;

/// `DYNAMODB_TABLE`, `AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `DYNAMODB_SCAN_PAGE_SIZE`, `DYNAMODB_ENSURE_TABLE`, and optionally `AWS_ACCESS_KEY_ID` with
/// `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`).
#[derive(Debug, Clone)]
pub struct DynamoConfig {
    pub table: String,
    /// `None`: the regional AWS endpoint.
    pub endpoint_url: Option<String>,
    /// `None`: the SDK's region chain (profile, instance metadata).
    pub region: Option<String>,
    /// `None`: the SDK's credential chain (env, profile, ECS task role, instance metadata).
    pub credentials: Option<StaticCredentials>,
    /// Items per `Scan` page when rebuilding (`DYNAMODB_SCAN_PAGE_SIZE`, default 1000).
    pub scan_page_size: i32,
    /// Create the table at start-up when missing (`DYNAMODB_ENSURE_TABLE`, default false).
    pub ensure_table: bool,
    /// Bound on one HTTP attempt.
    pub attempt_timeout: Duration,
    /// Retries of throttled and transient failures.
    pub retry: RetryPolicy,
}

/// Fixed AWS keys; the secret parts cannot be printed.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl StaticCredentials {
    /// The SDK's form of these keys.
    pub fn to_sdk(&self) -> Credentials {
        Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose_secret().to_owned(),
            self.session_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            None,
            "scoreboard-config",
        )
    }
}

impl DynamoConfig {
    /// Defaults for `table`: the SDK's region, endpoint and credential chains.
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            endpoint_url: None,
            region: None,
            credentials: None,
            scan_page_size: 1000,
            ensure_table: false,
            attempt_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }

    /// # Errors
    /// When the table name is missing or invalid, the endpoint is not an http(s) URL, a number is out
    /// of range, or only one of the two static keys is set.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let table = env.required("DYNAMODB_TABLE")?;
        let valid_name = (3..=255).contains(&table.len())
            && table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_name {
            return Err(ConfigError::new(
                "DYNAMODB_TABLE",
                "must be 3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'",
            ));
        }
        let endpoint_url = env.optional("AWS_ENDPOINT_URL");
        if let Some(url) = &endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "AWS_ENDPOINT_URL",
                "must start with http:// or https://",
            ));
        }
        let credentials = match (
            env.optional("AWS_ACCESS_KEY_ID"),
            env.optional("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(access_key_id), Some(secret)) => Some(StaticCredentials {
                access_key_id,
                secret_access_key: secret.into(),
                session_token: env.optional("AWS_SESSION_TOKEN").map(Into::into),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "AWS_SECRET_ACCESS_KEY",
                    "is required when AWS_ACCESS_KEY_ID is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "AWS_ACCESS_KEY_ID",
                    "is required when AWS_SECRET_ACCESS_KEY is set",
                ));
            }
        };
        Ok(Self {
            endpoint_url,
            region: env
                .optional("AWS_REGION")
                .or_else(|| env.optional("AWS_DEFAULT_REGION")),
            credentials,
            scan_page_size: env.parse_in("DYNAMODB_SCAN_PAGE_SIZE", 1000, 1..=10_000)?,
            ensure_table: env.flag("DYNAMODB_ENSURE_TABLE", false)?,
            ..Self::new(table)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_table_endpoint_region_and_static_keys() {
        let env = Env::from_pairs([
            ("DYNAMODB_TABLE", "scoreboard"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:8000"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("DYNAMODB_ENSURE_TABLE", "true"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret"),
        ]);
        let cfg = DynamoConfig::from_env(&env).unwrap();
        assert_eq!(cfg.table, "scoreboard");
        assert_eq!(cfg.endpoint_url.as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(cfg.region.as_deref(), Some("eu-west-1"));
        assert!(cfg.ensure_table);
        let keys = cfg.credentials.as_ref().unwrap();
        assert_eq!(
            keys.secret_access_key.expose_secret(),
            "wJalrXUtnFEMI-secret"
        );
        assert!(
            !format!("{cfg:?}").contains("wJalrXUtnFEMI"),
            "secret never printed"
        );
        assert_eq!(keys.to_sdk().access_key_id(), "AKIDEXAMPLE");
    }

    #[test]
    fn defaults_to_the_sdk_chains() {
        let cfg = DynamoConfig::from_env(&Env::from_pairs([("DYNAMODB_TABLE", "scores")])).unwrap();
        assert!(cfg.endpoint_url.is_none() && cfg.region.is_none() && cfg.credentials.is_none());
        assert!(!cfg.ensure_table);
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        let var = |pairs: &[(&str, &str)]| {
            DynamoConfig::from_env(&Env::from_pairs(pairs.iter().copied()))
                .unwrap_err()
                .var
        };
        assert_eq!(var(&[]), "DYNAMODB_TABLE");
        assert_eq!(var(&[("DYNAMODB_TABLE", "a b")]), "DYNAMODB_TABLE");
        assert_eq!(var(&[("DYNAMODB_TABLE", "sb")]), "DYNAMODB_TABLE");
        let with = |k, v| var(&[("DYNAMODB_TABLE", "scores"), (k, v)]);
        assert_eq!(
            with("AWS_ENDPOINT_URL", "localhost:8000"),
            "AWS_ENDPOINT_URL"
        );
        assert_eq!(
            with("DYNAMODB_SCAN_PAGE_SIZE", "0"),
            "DYNAMODB_SCAN_PAGE_SIZE"
        );
        assert_eq!(with("AWS_ACCESS_KEY_ID", "AKID"), "AWS_SECRET_ACCESS_KEY");
    }
}
