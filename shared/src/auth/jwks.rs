//! A JWKS key cache: keys by `kid`, refreshed on an unknown `kid` at most once per interval.
//!
//! A failed refresh keeps the keys already held, so a JWKS endpoint that is down does not
//! lock out users whose tokens were signed with a cached key.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use super::AuthError;

/// A verification key and the one algorithm it may be used with.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

#[derive(Default)]
struct Held {
    keys: HashMap<String, VerifyingKey>,
    last_fetch: Option<Instant>,
}

pub(crate) struct JwksCache {
    url: String,
    client: reqwest::Client,
    min_refresh: Duration,
    held: RwLock<Held>,
    refreshing: Mutex<()>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl JwksCache {
    pub fn new(url: String, min_refresh: Duration) -> Self {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            url,
            client,
            min_refresh,
            held: RwLock::new(Held::default()),
            refreshing: Mutex::new(()),
        }
    }

    /// The key for `kid`, fetching the set when the id is unknown and the last fetch is old enough.
    pub async fn key(&self, kid: &str) -> Result<VerifyingKey, AuthError> {
        if let Some(key) = self.held.read().await.keys.get(kid) {
            return Ok(key.clone());
        }
        // One refresh at a time; callers that waited see its result.
        let _guard = self.refreshing.lock().await;
        {
            let held = self.held.read().await;
            if let Some(key) = held.keys.get(kid) {
                return Ok(key.clone());
            }
            if held
                .last_fetch
                .is_some_and(|t| t.elapsed() < self.min_refresh)
            {
                return Err(if held.keys.is_empty() {
                    AuthError::KeysUnavailable
                } else {
                    AuthError::UnknownKey
                });
            }
        }
        let fetched = self.fetch().await;
        let mut held = self.held.write().await;
        held.last_fetch = Some(Instant::now());
        match fetched {
            Ok(keys) => held.keys = keys,
            Err(error) => {
                tracing::warn!(url = %self.url, %error, "JWKS refresh failed; keeping cached keys");
                if held.keys.is_empty() {
                    return Err(AuthError::KeysUnavailable);
                }
            }
        }
        held.keys.get(kid).cloned().ok_or(AuthError::UnknownKey)
    }

    async fn fetch(&self) -> Result<HashMap<String, VerifyingKey>, reqwest::Error> {
        let set: RawSet = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(set.keys.into_iter().filter_map(parse_key).collect())
    }
}

/// Accepts RSA (RS256) and P-256 (ES256) signing keys with a `kid`; anything else is skipped.
/// Symmetric (`oct`) keys are never taken from a JWKS.
fn parse_key(value: serde_json::Value) -> Option<(String, VerifyingKey)> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    let kid = jwk.common.key_id.clone()?;
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some((kid, VerifyingKey { key, algorithm }))
}
