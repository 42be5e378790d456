//! How tokens are verified: one key source (HS256 secret, PEM public key or JWKS URL) and the claim checks,
//! including the rule that a public-key source is bound to one issuer and audience.

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

impl JwtKeySource {
    /// Whether the keys are public: anyone the provider issues tokens to holds a token they verify.
    pub fn is_public(&self) -> bool {
        !matches!(self, Self::Hs256(_))
    }
}

/// Token verification settings shared by every endpoint.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub key: JwtKeySource,
    /// `JWT_ISSUER`: checked when set; required with a public-key source (see [`Self::check_binding`]).
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: checked when set; required with a public-key source (see [`Self::check_binding`]).
    pub audience: Option<String>,
    /// `JWT_ALLOW_ANY_AUDIENCE` (default false): lets a public-key source run without `JWT_ISSUER` or
    /// `JWT_AUDIENCE`, accepting tokens the provider issued to any client.
    pub allow_any_audience: bool,
    /// `JWT_REQUIRED_TYP` (e.g. `at+jwt`, RFC 9068): when set, the token header's `typ` must match
    /// (case-insensitively, with or without `application/`).
    pub required_typ: Option<String>,
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
        let required_typ = env.optional("JWT_REQUIRED_TYP");
        if let Some(typ) = &required_typ
            && !typ.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ConfigError::new(
                "JWT_REQUIRED_TYP",
                "must be a media type such as at+jwt (printable ASCII, no spaces)",
            ));
        }
        Ok(Self {
            key,
            issuer: env.optional("JWT_ISSUER"),
            audience: env.optional("JWT_AUDIENCE"),
            allow_any_audience: env.flag("JWT_ALLOW_ANY_AUDIENCE", false)?,
            required_typ,
            leeway: Duration::from_secs(env.parse_in("JWT_LEEWAY_SECS", 30u64, 0..=300)?),
        })
    }

    /// A public-key source (`JWT_PUBLIC_KEY`, `JWT_JWKS_URL`) verifies every token its provider signs, for
    /// every client of that provider (any Google ID token, when the JWKS is Google's): it must be bound to
    /// one issuer and one audience unless `JWT_ALLOW_ANY_AUDIENCE=true` says otherwise. `JWT_SECRET` is
    /// private to this service, so issuer and audience stay optional with it.
    ///
    /// Checked where the verifier is built ([`crate::auth::Authenticator::new`]), which every component
    /// does at start.
    ///
    /// # Errors
    /// Naming `JWT_ISSUER` or `JWT_AUDIENCE`, whichever is missing first.
    pub fn check_binding(&self) -> Result<(), ConfigError> {
        if !self.key.is_public() || self.allow_any_audience {
            return Ok(());
        }
        let reason = "is required with JWT_PUBLIC_KEY or JWT_JWKS_URL (or set \
                      JWT_ALLOW_ANY_AUDIENCE=true to accept tokens issued to any client)";
        if self.issuer.is_none() {
            return Err(ConfigError::new("JWT_ISSUER", reason));
        }
        if self.audience.is_none() {
            return Err(ConfigError::new("JWT_AUDIENCE", reason));
        }
        Ok(())
    }

    /// Whether `JWT_ALLOW_ANY_AUDIENCE` is what lets this configuration start (for the start-up warning).
    pub fn waives_binding(&self) -> bool {
        self.key.is_public()
            && self.allow_any_audience
            && (self.issuer.is_none() || self.audience.is_none())
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

    const JWKS: (&str, &str) = ("JWT_JWKS_URL", "https://example.com/jwks.json");
    const PEM: (&str, &str) = ("JWT_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----");
    const ISSUER: (&str, &str) = ("JWT_ISSUER", "https://id.example.com");
    const AUDIENCE: (&str, &str) = ("JWT_AUDIENCE", "scoreboard");

    fn binding(pairs: &[(&str, &str)]) -> Result<(), ConfigError> {
        AuthConfig::from_env(&Env::from_pairs(pairs.iter().copied()))?.check_binding()
    }

    #[test]
    fn public_key_sources_require_issuer_and_audience() {
        for source in [JWKS, PEM] {
            assert_eq!(binding(&[source]).unwrap_err().var, "JWT_ISSUER");
            assert_eq!(binding(&[source, AUDIENCE]).unwrap_err().var, "JWT_ISSUER");
            assert_eq!(binding(&[source, ISSUER]).unwrap_err().var, "JWT_AUDIENCE");
            assert_eq!(binding(&[source, ISSUER, AUDIENCE]), Ok(()));
        }
    }

    #[test]
    fn allow_any_audience_waives_the_binding_explicitly() {
        let allow = ("JWT_ALLOW_ANY_AUDIENCE", "true");
        assert_eq!(binding(&[JWKS, allow]), Ok(()));
        let config = AuthConfig::from_env(&Env::from_pairs([JWKS, allow, ISSUER])).unwrap();
        assert!(config.waives_binding());
        let bound =
            AuthConfig::from_env(&Env::from_pairs([JWKS, allow, ISSUER, AUDIENCE])).unwrap();
        assert!(
            !bound.waives_binding(),
            "nothing is waived when both are set"
        );
        let garbage = Env::from_pairs([JWKS, ("JWT_ALLOW_ANY_AUDIENCE", "sure")]);
        assert_eq!(
            AuthConfig::from_env(&garbage).unwrap_err().var,
            "JWT_ALLOW_ANY_AUDIENCE"
        );
    }

    #[test]
    fn hs256_keeps_issuer_and_audience_optional() {
        let secret = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
        assert_eq!(binding(&[secret]), Ok(()));
        let config = AuthConfig::from_env(&Env::from_pairs([secret])).unwrap();
        assert!(!config.waives_binding());
    }

    #[test]
    fn required_typ_must_be_a_token() {
        let secret = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let env = Env::from_pairs([secret, ("JWT_REQUIRED_TYP", "at jwt")]);
        assert_eq!(
            AuthConfig::from_env(&env).unwrap_err().var,
            "JWT_REQUIRED_TYP"
        );
        let env = Env::from_pairs([secret, ("JWT_REQUIRED_TYP", "at+jwt")]);
        assert_eq!(
            AuthConfig::from_env(&env).unwrap().required_typ.as_deref(),
            Some("at+jwt")
        );
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
