//! Secrets the Lambdas read once at init through the AWS Parameters and Secrets Lambda Extension (its local
//! HTTP API; no AWS SDK in the functions): `JWT_SECRET_ARN` and `REDIS_URL_SECRET_ARN` become `JWT_SECRET`
//! and `REDIS_URL` in the [`Env`] the configuration is then parsed from. The values live only in the
//! instance's memory for its lifetime, never in the function's environment, and are never logged.
//!
//! A secret's `SecretString` is either the value itself (the HS256 secret; the whole
//! `rediss://:password@host:6379` URL) or a JSON object holding it under the variable's name
//! (`{"JWT_SECRET":"…"}`, `{"REDIS_URL":"…"}`: the console's key/value form). Binary secrets are not read.
//!
//! The extension API: `GET http://localhost:$PARAMETERS_SECRETS_EXTENSION_HTTP_PORT/secretsmanager/get?secretId=<arn>`
//! (port 2773 by default) with the header `X-Aws-Parameters-Secrets-Token: $AWS_SESSION_TOKEN`, answering the
//! `GetSecretValue` JSON. The extension starts alongside the function, so a refused connection, a `400`
//! (not ready yet), a `429` or a `5xx` is retried a few times with a short backoff; anything else fails init
//! at once with an error naming the ARN variable.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::backoff::Backoff;
use crate::config::{ConfigError, Env};

/// Each variable holding a secret's ARN, and the variable its value fills.
pub const SECRET_VARS: [(&str, &str); 2] = [
    ("JWT_SECRET_ARN", "JWT_SECRET"),
    ("REDIS_URL_SECRET_ARN", "REDIS_URL"),
];

/// The extension's port variable (set by the extension's configuration; the default is [`DEFAULT_PORT`]).
pub const PORT_VAR: &str = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT";
/// The extension's documented default port.
pub const DEFAULT_PORT: u16 = 2773;
/// The header the extension authenticates callers by: the value of [`SESSION_TOKEN_VAR`].
pub const TOKEN_HEADER: &str = "X-Aws-Parameters-Secrets-Token";
/// Set by Lambda in every function's environment.
pub const SESSION_TOKEN_VAR: &str = "AWS_SESSION_TOKEN";

/// Tries per secret (the first and three retries); with [`ATTEMPT_TIMEOUT`] this stays inside Lambda's
/// 10 s init phase.
const ATTEMPTS: u32 = 4;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Most of an error answer's body quoted in the error (never the body of a success, which holds the secret).
const ERROR_BODY_CHARS: usize = 300;

/// Reads every secret named by an ARN variable through the extension and returns `env` with the values
/// set. Without ARN variables (local runs, tests) `env` comes back unchanged and nothing is called.
///
/// # Errors
/// A variable set together with its ARN variable (`JWT_SECRET` and `JWT_SECRET_ARN`), no
/// `AWS_SESSION_TOKEN`, an unusable port, or a secret that cannot be read (the error names its ARN
/// variable and never holds a secret).
pub async fn resolve(env: Env) -> Result<Env, ConfigError> {
    let [jwt, redis] = SECRET_VARS.map(|(arn_var, target)| {
        env.optional(arn_var).map(|arn| Wanted {
            arn_var,
            target,
            arn,
        })
    });
    for wanted in [&jwt, &redis].into_iter().flatten() {
        if env.optional(wanted.target).is_some() {
            return Err(ConfigError::new(
                wanted.target,
                format!(
                    "must not be set together with {}: the value comes from Secrets Manager",
                    wanted.arn_var
                ),
            ));
        }
    }
    let Some(first) = jwt.as_ref().or(redis.as_ref()) else {
        return Ok(env);
    };
    let extension = Extension::from_env(&env, first.arn_var)?;
    // Both at once: each is a local call, but a cold one waits for Secrets Manager.
    let (jwt_value, redis_value) = tokio::join!(extension.read(jwt), extension.read(redis));
    let mut env = env;
    let mut read = Vec::new();
    for resolved in [jwt_value?, redis_value?].into_iter().flatten() {
        read.push(resolved.target);
        env = env.with(resolved.target, resolved.value);
    }
    tracing::info!(variables = ?read, "read secrets through the Parameters and Secrets extension");
    Ok(env)
}

#[derive(Debug)]
struct Wanted {
    arn_var: &'static str,
    target: &'static str,
    arn: String,
}

struct Resolved {
    target: &'static str,
    value: String,
}

/// The extension's local endpoint and the caller token it requires.
#[derive(Debug)]
struct Extension {
    client: reqwest::Client,
    endpoint: String,
    token: SecretString,
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    retry: bool,
    reason: String,
}

#[derive(Deserialize)]
struct GetSecretValue {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

impl Extension {
    fn from_env(env: &Env, arn_var: &str) -> Result<Self, ConfigError> {
        let token = env.optional(SESSION_TOKEN_VAR).ok_or_else(|| {
            ConfigError::new(
                arn_var,
                format!(
                    "{SESSION_TOKEN_VAR} is not set; the Parameters and Secrets extension requires it"
                ),
            )
        })?;
        let port = env.parse_in(PORT_VAR, DEFAULT_PORT, 1..=u16::MAX)?;
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(|e| ConfigError::new(arn_var, format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            client,
            endpoint: format!("http://localhost:{port}/secretsmanager/get"),
            token: token.into(),
        })
    }

    async fn read(&self, wanted: Option<Wanted>) -> Result<Option<Resolved>, ConfigError> {
        let Some(wanted) = wanted else {
            return Ok(None);
        };
        let fail = |reason: String| {
            ConfigError::new(
                wanted.arn_var,
                format!(
                    "cannot read the secret through the Parameters and Secrets extension: {reason}"
                ),
            )
        };
        let url = reqwest::Url::parse_with_params(&self.endpoint, [("secretId", &wanted.arn)])
            .map_err(|e| fail(e.to_string()))?;
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut failures = 0;
        let secret_string = loop {
            match self.attempt(&url).await {
                Ok(secret_string) => break secret_string,
                Err(failure) if failure.retry && failures + 1 < ATTEMPTS => {
                    tracing::warn!(
                        variable = wanted.arn_var,
                        reason = %failure.reason,
                        "secret not read yet; retrying"
                    );
                    tokio::time::sleep(backoff.delay_after(failures)).await;
                    failures += 1;
                }
                Err(failure) => return Err(fail(failure.reason)),
            }
        };
        let value = value_of(&secret_string, wanted.target).map_err(fail)?;
        Ok(Some(Resolved {
            target: wanted.target,
            value,
        }))
    }

    /// One `GET`: the `SecretString`, or why not.
    async fn attempt(&self, url: &reqwest::Url) -> Result<String, Failure> {
        let response = self
            .client
            .get(url.clone())
            .header(TOKEN_HEADER, self.token.expose_secret())
            .send()
            .await
            .map_err(|e| Failure {
                retry: true,
                reason: format!("the extension did not answer: {}", with_sources(&e)),
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let body: String = body
                .chars()
                .take(ERROR_BODY_CHARS)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            return Err(Failure {
                retry: status.is_server_error()
                    || status == reqwest::StatusCode::BAD_REQUEST
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS,
                reason: format!("the extension answered {status}: {}", body.trim()),
            });
        }
        let bytes = response.bytes().await.map_err(|e| Failure {
            retry: true,
            reason: format!("the answer was cut short: {e}"),
        })?;
        // serde_json's messages quote no input, so the secret cannot leak through them.
        let answer: GetSecretValue = serde_json::from_slice(&bytes).map_err(|e| Failure {
            retry: false,
            reason: format!("the answer is not GetSecretValue JSON: {e}"),
        })?;
        answer.secret_string.ok_or_else(|| Failure {
            retry: false,
            reason: "the secret has no SecretString (binary secrets are not supported)".to_owned(),
        })
    }
}

/// An error and its causes on one line (`reqwest`'s own message leaves out why a connection failed).
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The value in a `SecretString`: the string itself, or the `target` key of a JSON object.
fn value_of(secret_string: &str, target: &str) -> Result<String, String> {
    let trimmed = secret_string.trim();
    if trimmed.is_empty() {
        return Err("the secret is empty".to_owned());
    }
    if trimmed.starts_with('{')
        && let Ok(object) =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(trimmed)
    {
        return match object.get(target).and_then(serde_json::Value::as_str) {
            Some(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
            _ => Err(format!(
                "the secret is a JSON object without a non-empty string key {target:?}"
            )),
        };
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_secret_string_is_the_value() {
        assert_eq!(
            value_of(" rediss://:pw@cache:6379 \n", "REDIS_URL").as_deref(),
            Ok("rediss://:pw@cache:6379")
        );
    }

    #[test]
    fn a_json_secret_string_holds_the_value_under_the_variable_name() {
        let secret = r#"{"JWT_SECRET":"0123456789abcdef0123456789abcdef","other":1}"#;
        assert_eq!(
            value_of(secret, "JWT_SECRET").as_deref(),
            Ok("0123456789abcdef0123456789abcdef")
        );
        let err = value_of(r#"{"jwt":"hunter2hunter2"}"#, "JWT_SECRET").unwrap_err();
        assert!(err.contains("JWT_SECRET"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_value_that_merely_starts_with_a_brace_is_kept_whole() {
        assert_eq!(
            value_of("{not json", "JWT_SECRET").as_deref(),
            Ok("{not json")
        );
    }

    #[test]
    fn an_empty_secret_is_refused() {
        assert!(value_of("  ", "JWT_SECRET").is_err());
    }

    #[tokio::test]
    async fn without_arn_variables_nothing_changes_and_nothing_is_called() {
        let env = Env::from_pairs([("JWT_SECRET", "s"), ("REDIS_URL", "redis://x")]);
        let resolved = resolve(env).await.unwrap();
        assert_eq!(resolved.optional("JWT_SECRET").as_deref(), Some("s"));
    }

    #[tokio::test]
    async fn a_value_and_its_arn_together_are_a_config_error_naming_the_variable() {
        let env = Env::from_pairs([
            ("REDIS_URL", "redis://:hunter2@x"),
            (
                "REDIS_URL_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:r",
            ),
        ]);
        let err = resolve(env).await.unwrap_err();
        assert_eq!(err.var, "REDIS_URL");
        assert!(err.to_string().contains("REDIS_URL_SECRET_ARN"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn an_arn_without_a_session_token_names_the_arn_variable() {
        let env = Env::from_pairs([(
            "JWT_SECRET_ARN",
            "arn:aws:secretsmanager:eu-west-1:1:secret:j",
        )]);
        let err = resolve(env).await.unwrap_err();
        assert_eq!(err.var, "JWT_SECRET_ARN");
        assert!(err.to_string().contains(SESSION_TOKEN_VAR), "{err}");
    }
}
