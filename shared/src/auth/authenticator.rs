//! Verifies a bearer token against the configured keys and claim rules (issuer, audience, `typ`) and
//! yields a [`Principal`].

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
    /// `JWT_REQUIRED_TYP`, normalised by [`normalize_typ`].
    required_typ: Option<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// # Errors
    /// When the configured key cannot be parsed (the error names the variable, not the key), or a public
    /// key source is not bound to an issuer and audience ([`AuthConfig::check_binding`]).
    pub fn new(config: &AuthConfig) -> Result<Self, ConfigError> {
        config.check_binding()?;
        if config.waives_binding() {
            tracing::warn!(
                issuer_checked = config.issuer.is_some(),
                audience_checked = config.audience.is_some(),
                "JWT_ALLOW_ANY_AUDIENCE=true: accepting tokens the key source's provider issued to any \
                 client; set JWT_ISSUER and JWT_AUDIENCE to bind tokens to this service"
            );
        }
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
        Ok(Self {
            keys,
            validation,
            required_typ: config.required_typ.as_deref().map(normalize_typ),
        })
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
        if let Some(required) = &self.required_typ
            && header.typ.as_deref().map(normalize_typ).as_ref() != Some(required)
        {
            return Err(AuthError::WrongType);
        }
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
    typ: Option<String>,
}

/// A `typ` value in the form it is compared: lower case, without the `application/` prefix that
/// RFC 7515 §4.1.9 lets senders omit (RFC 8725 §3.11).
fn normalize_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
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
    let typ = match json.get("typ") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(typ)) => Some(typ.clone()),
        Some(_) => return Err(AuthError::Malformed),
    };
    Ok(TokenHeader { alg, kid, typ })
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

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::config::Env;

    const SECRET: &str = "unit-test-secret-that-is-at-least-32-bytes";
    const RSA_PEM: &str = include_str!("../../../testkit/fixtures/rsa1.pub.pem");
    const ISSUER: &str = "https://id.example.com";
    const AUDIENCE: &str = "scoreboard";

    fn authenticator(pairs: &[(&str, &str)]) -> Authenticator {
        Authenticator::new(&AuthConfig::from_env(&Env::from_pairs(pairs.iter().copied())).unwrap())
            .unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn hs256(typ: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = typ.map(str::to_owned);
        let exp = jsonwebtoken::get_current_timestamp() + 3600;
        let claims = json!({"sub": "u1", "exp": exp, "iss": ISSUER, "aud": AUDIENCE});
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_public_key_without_issuer_or_audience_does_not_start() {
        let err = Authenticator::new(
            &AuthConfig::from_env(&Env::from_pairs([("JWT_PUBLIC_KEY", RSA_PEM)])).unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.var, "JWT_ISSUER");
        assert!(!err.to_string().contains("BEGIN"), "never echoes the key");
        let waived = authenticator(&[
            ("JWT_PUBLIC_KEY", RSA_PEM),
            ("JWT_ALLOW_ANY_AUDIENCE", "true"),
        ]);
        assert!(waived.required_typ.is_none());
    }

    #[test]
    fn typ_compares_case_insensitively_with_or_without_the_application_prefix() {
        assert_eq!(normalize_typ("application/AT+JWT"), "at+jwt");
        assert_eq!(normalize_typ("At+Jwt"), "at+jwt");
        assert_eq!(normalize_typ("JWT"), "jwt");
        let rt = runtime();
        for required in ["at+jwt", "application/at+jwt", "AT+JWT"] {
            let auth = authenticator(&[("JWT_SECRET", SECRET), ("JWT_REQUIRED_TYP", required)]);
            for typ in [
                "at+jwt",
                "AT+JWT",
                "application/at+jwt",
                "Application/At+Jwt",
            ] {
                let accepted = rt.block_on(auth.authenticate_token(&hs256(Some(typ))));
                assert_eq!(accepted.map(|p| p.user_id).as_deref(), Ok("u1"), "{typ}");
            }
            for typ in [Some("JWT"), Some("at+jwt2"), Some("application/jwt"), None] {
                let refused = rt.block_on(auth.authenticate_token(&hs256(typ)));
                assert_eq!(refused, Err(AuthError::WrongType), "{typ:?}");
            }
        }
        // Without JWT_REQUIRED_TYP any typ (or none) is fine.
        let auth = authenticator(&[("JWT_SECRET", SECRET)]);
        for typ in [Some("JWT"), Some("whatever"), None] {
            assert!(rt.block_on(auth.authenticate_token(&hs256(typ))).is_ok());
        }
    }

    /// Authenticators over every static key kind and claim rule, for the fuzz tests.
    fn fuzz_targets() -> Vec<Authenticator> {
        vec![
            authenticator(&[("JWT_SECRET", SECRET)]),
            authenticator(&[
                ("JWT_SECRET", SECRET),
                ("JWT_ISSUER", ISSUER),
                ("JWT_AUDIENCE", AUDIENCE),
                ("JWT_REQUIRED_TYP", "at+jwt"),
            ]),
            authenticator(&[
                ("JWT_PUBLIC_KEY", RSA_PEM),
                ("JWT_ISSUER", ISSUER),
                ("JWT_AUDIENCE", AUDIENCE),
            ]),
        ]
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A JOSE header that gets past the parser often: real and bogus `alg`s, sometimes a `kid` and `typ`.
    fn header_json() -> impl Strategy<Value = Vec<u8>> {
        let alg = prop_oneof![
            Just(json!("HS256")),
            Just(json!("RS256")),
            Just(json!("ES256")),
            Just(json!("HS512")),
            Just(json!("none")),
            Just(json!("nOnE")),
            Just(json!(null)),
            Just(json!(256)),
            ".{0,12}".prop_map(serde_json::Value::from),
        ];
        let text = prop::option::of(".{0,12}");
        (alg, text.clone(), text).prop_map(|(alg, kid, typ)| {
            let mut header = json!({ "alg": alg });
            if let Some(kid) = kid {
                header["kid"] = kid.into();
            }
            if let Some(typ) = typ {
                header["typ"] = typ.into();
            }
            header.to_string().into_bytes()
        })
    }

    /// Claims that pass every claim check, so only the signature stands between them and acceptance.
    fn claims_json() -> impl Strategy<Value = Vec<u8>> {
        (".{0,20}", any::<bool>()).prop_map(|(sub, bound)| {
            let exp = jsonwebtoken::get_current_timestamp() + 3600;
            let mut claims = json!({"sub": sub, "exp": exp, "name": sub});
            if bound {
                claims["iss"] = ISSUER.into();
                claims["aud"] = AUDIENCE.into();
            }
            claims.to_string().into_bytes()
        })
    }

    fn segment(json: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = String> {
        prop_oneof![
            json.prop_map(|bytes| b64(&bytes)),
            prop::collection::vec(any::<u8>(), 0..96).prop_map(|bytes| b64(&bytes)),
            "[A-Za-z0-9_=+/-]{0,48}",
        ]
    }

    fn three_part_tokens() -> impl Strategy<Value = String> {
        (
            segment(header_json()),
            segment(claims_json()),
            segment(prop::collection::vec(any::<u8>(), 0..300)),
        )
            .prop_map(|(h, c, s)| format!("{h}.{c}.{s}"))
    }

    #[test]
    fn arbitrary_input_never_panics_and_is_never_accepted() {
        let rt = runtime();
        let targets = fuzz_targets();
        let check = |token: &str| -> Result<(), TestCaseError> {
            for auth in &targets {
                let bare = rt.block_on(auth.authenticate_token(token));
                prop_assert!(bare.is_err(), "accepted {token:?}: {bare:?}");
                let header = format!("Bearer {token}");
                let bearer = rt.block_on(auth.authenticate_header(Some(&header)));
                prop_assert!(bearer.is_err(), "accepted {header:?}: {bearer:?}");
            }
            Ok(())
        };
        proptest!(ProptestConfig::with_cases(400), |(bytes in prop::collection::vec(any::<u8>(), 0..600))| {
            check(&String::from_utf8_lossy(&bytes))?;
        });
        proptest!(ProptestConfig::with_cases(400), |(token in three_part_tokens())| {
            check(&token)?;
        });
        proptest!(ProptestConfig::with_cases(200), |(header in ".{0,200}")| {
            for auth in &targets {
                prop_assert!(rt.block_on(auth.authenticate_header(Some(&header))).is_err());
            }
        });
    }
}
