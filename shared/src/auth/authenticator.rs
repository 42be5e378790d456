//! Verifies a bearer token against the configured keys and claim rules and yields a [`Principal`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;

use super::claims::Claims;
use super::jwks::{JwksCache, VerifyingKey};
use super::{AuthError, Principal};
use crate::config::{AuthConfig, ConfigError, JwtKeySource};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

enum Keys {
    Static(VerifyingKey),
    Jwks(JwksCache),
}

/// Verifies bearer tokens. Built once per process and shared.
pub struct Authenticator {
    keys: Keys,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// # Errors
    /// When the configured key cannot be parsed (the error names the variable, not the key).
    pub fn new(config: &AuthConfig) -> Result<Self, ConfigError> {
        let keys = match &config.key {
            JwtKeySource::Hs256(secret) => Keys::Static(VerifyingKey {
                key: DecodingKey::from_secret(secret.expose_secret().as_bytes())
                    .map_err(|_| ConfigError::new("JWT_SECRET", "is not usable as an HMAC key"))?,
                algorithm: Algorithm::HS256,
            }),
            JwtKeySource::PublicKeyPem(pem) => Keys::Static(parse_public_pem(pem)?),
            JwtKeySource::Jwks { url, min_refresh } => {
                Keys::Jwks(JwksCache::new(url.clone(), *min_refresh))
            }
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        match &config.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                validation.required_spec_claims.insert("iss".into());
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        Ok(Self { keys, validation })
    }

    /// Authenticates an `Authorization` header value.
    ///
    /// # Errors
    /// Any [`AuthError`]: missing or non-Bearer header, malformed, unsigned, wrongly signed or
    /// expired token, wrong issuer or audience, unusable subject.
    pub async fn authenticate_header(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let (scheme, token) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        self.authenticate_token(token.trim()).await
    }

    /// Authenticates a bare token (e.g. from `?access_token=`).
    ///
    /// # Errors
    /// As [`Self::authenticate_header`].
    pub async fn authenticate_token(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Malformed);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        let header = read_header(token)?;
        let key = match &self.keys {
            Keys::Static(key) => key.clone(),
            Keys::Jwks(cache) => {
                cache
                    .key(header.kid.as_deref().ok_or(AuthError::UnknownKey)?)
                    .await?
            }
        };
        // The key decides the algorithm; a token naming another one (e.g. HS256 against an RSA key) is refused.
        if header.alg != key.algorithm {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![key.algorithm];
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(map_jwt_error)?;
        Principal::try_from(data.claims)
    }
}

struct TokenHeader {
    alg: Algorithm,
    kid: Option<String>,
}

/// Reads the JOSE header by hand so `alg: none` in any spelling gets its own answer.
fn read_header(token: &str) -> Result<TokenHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(head)
        .map_err(|_| AuthError::Malformed)?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    let alg = json
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or(AuthError::Malformed)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(AuthError::AlgorithmNone);
    }
    let alg: Algorithm = alg.parse().map_err(|_| AuthError::AlgorithmNotAllowed)?;
    let kid = json.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
    Ok(TokenHeader { alg, kid })
}

fn parse_public_pem(pem: &str) -> Result<VerifyingKey, ConfigError> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
        return Ok(VerifyingKey {
            key,
            algorithm: Algorithm::RS256,
        });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
        return Ok(VerifyingKey {
            key,
            algorithm: Algorithm::ES256,
        });
    }
    Err(ConfigError::new(
        "JWT_PUBLIC_KEY",
        "is not a PEM RSA or P-256 public key",
    ))
}

fn map_jwt_error(error: jsonwebtoken::errors::Error) -> AuthError {
    match error.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => AuthError::AlgorithmNotAllowed,
        ErrorKind::MissingRequiredClaim(claim) if claim == "sub" => AuthError::InvalidSubject,
        ErrorKind::MissingRequiredClaim(_) => AuthError::MissingClaim,
        _ => AuthError::Malformed,
    }
}
