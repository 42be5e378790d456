//! How tokens are verified: one key source (HS256 secret, PEM public key or JWKS URL) and the claim checks.

use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, Env};

/// Where verification keys come from. Exactly one is configured.
#[derive(Debug, Clone)]
pub enum JwtKeySource {
    /// `JWT_SECRET`: an HS256 shared secret (at least 32 bytes).
    Hs256(SecretString),
    /// `JWT_PUBLIC_KEY`: a PEM public key; RS256 for RSA, ES256 for P-256.
    PublicKeyPem(String),
    /// `JWT_JWKS_URL`: a JWKS document, keys selected by `kid`.
    Jwks {
        url: String,
        /// Least time between two fetches (`JWT_JWKS_MIN_REFRESH_SECS`, default 60).
        min_refresh: Duration,
    },
}

/// Token verification settings shared by every endpoint.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub key: JwtKeySource,
    /// `JWT_ISSUER`: checked when set.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: checked when set.
    pub audience: Option<String>,
    /// `JWT_LEEWAY_SECS`: clock skew allowed on `exp`/`nbf` (default 30, at most 300).
    pub leeway: Duration,
}

impl AuthConfig {
    /// # Errors
    /// When no key source or more than one is set, or a value is unusable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let secret = env.optional("JWT_SECRET");
        let pem = env.optional("JWT_PUBLIC_KEY");
        let jwks = env.optional("JWT_JWKS_URL");
        let key = match (secret, pem, jwks) {
            (Some(secret), None, None) => {
                if secret.len() < 32 {
                    return Err(ConfigError::new("JWT_SECRET", "must be at least 32 bytes"));
                }
                JwtKeySource::Hs256(secret.into())
            }
            (None, Some(pem), None) => {
                // Environment files often carry PEMs with literal "\n".
                JwtKeySource::PublicKeyPem(pem.replace("\\n", "\n"))
            }
            (None, None, Some(url)) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(ConfigError::new("JWT_JWKS_URL", "must be an http(s) URL"));
                }
                let secs = env.parse_in("JWT_JWKS_MIN_REFRESH_SECS", 60u64, 1..=86_400)?;
                JwtKeySource::Jwks {
                    url,
                    min_refresh: Duration::from_secs(secs),
                }
            }
            (None, None, None) => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    "one of JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL is required",
                ));
            }
            _ => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    "set only one of JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL",
                ));
            }
        };
        Ok(Self {
            key,
            issuer: env.optional("JWT_ISSUER"),
            audience: env.optional("JWT_AUDIENCE"),
            leeway: Duration::from_secs(env.parse_in("JWT_LEEWAY_SECS", 30u64, 0..=300)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_exactly_one_key_source() {
        assert!(AuthConfig::from_env(&Env::default()).is_err());
        let both = Env::from_pairs([
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("JWT_JWKS_URL", "https://example.com/jwks.json"),
        ]);
        assert!(AuthConfig::from_env(&both).is_err());
    }

    #[test]
    fn short_secret_is_rejected_without_echoing_it() {
        let env = Env::from_pairs([("JWT_SECRET", "hunter2")]);
        let err = AuthConfig::from_env(&env).unwrap_err();
        assert_eq!(err.var, "JWT_SECRET");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn leeway_is_bounded() {
        let env = Env::from_pairs([
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("JWT_LEEWAY_SECS", "3600"),
        ]);
        assert_eq!(
            AuthConfig::from_env(&env).unwrap_err().var,
            "JWT_LEEWAY_SECS"
        );
    }
}
