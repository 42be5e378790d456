//! A JWKS key cache: keys by `kid`, fetched on an unknown `kid`, one fetch at a time.
//!
//! After a good answer the set is refetched at most once per `min_refresh`. A failed fetch — the endpoint
//! down, an error status, an answer that is not a key set or holds no usable key (`{"keys":[]}`) — keeps
//! the keys already held and is retried with a backoff measured in seconds, not `min_refresh`: a timeout
//! at a cold start costs a moment of `503`, not a minute, and a bad answer never wipes good keys.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use super::AuthError;
use crate::backoff::Backoff;

/// First retry after a failed fetch (jittered in `[base/2, base]`), doubling per further failure.
const RETRY_BASE: Duration = Duration::from_millis(250);
/// Longest wait between retries while the endpoint keeps failing.
const RETRY_CAP: Duration = Duration::from_secs(4);

/// A verification key and the one algorithm it may be used with.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

struct Held {
    keys: HashMap<String, VerifyingKey>,
    /// When the last good set was stored: governs `min_refresh`.
    fetched_at: Option<Instant>,
    /// Set after a failed fetch: no new fetch before it.
    retry_at: Option<Instant>,
    backoff: Backoff,
}

impl Held {
    fn new() -> Self {
        Self {
            keys: HashMap::new(),
            fetched_at: None,
            retry_at: None,
            backoff: Backoff::new(RETRY_BASE, RETRY_CAP),
        }
    }

    /// Whether a fetch may start at `now`: after a failure once its backoff has passed, otherwise once
    /// `min_refresh` has passed since the last good set (at once when there never was one).
    fn may_fetch(&self, min_refresh: Duration, now: Instant) -> bool {
        match self.retry_at {
            Some(retry_at) => now >= retry_at,
            None => self
                .fetched_at
                .is_none_or(|at| now.saturating_duration_since(at) >= min_refresh),
        }
    }

    fn stored(&mut self, keys: HashMap<String, VerifyingKey>, now: Instant) {
        self.keys = keys;
        self.fetched_at = Some(now);
        self.retry_at = None;
        self.backoff.reset();
    }

    /// Records a failed fetch; returns the wait before the next one.
    fn failed(&mut self, now: Instant) -> Duration {
        let delay = self.backoff.next_delay();
        self.retry_at = Some(now + delay);
        delay
    }

    /// The answer for a `kid` that is not held: no keys at all is an outage (503), otherwise a bad token.
    fn miss(&self) -> AuthError {
        if self.keys.is_empty() {
            AuthError::KeysUnavailable
        } else {
            AuthError::UnknownKey
        }
    }
}

pub(crate) struct JwksCache {
    url: String,
    client: reqwest::Client,
    min_refresh: Duration,
    held: RwLock<Held>,
    /// Held for the whole of a fetch: at most one in flight; waiters re-check the cache after it.
    fetching: Mutex<()>,
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

/// Why a fetch gave no usable key set.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the answer is not a JWKS document: {0}")]
    NotJwks(#[from] serde_json::Error),
    #[error("the answer holds no usable signing key (of {0})")]
    NoUsableKey(usize),
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
            held: RwLock::new(Held::new()),
            fetching: Mutex::new(()),
        }
    }

    /// The key for `kid`, fetching the set when the id is unknown and a fetch is due.
    pub async fn key(&self, kid: &str) -> Result<VerifyingKey, AuthError> {
        if let Some(key) = self.held.read().await.keys.get(kid) {
            return Ok(key.clone());
        }
        let _fetching = self.fetching.lock().await;
        {
            // A fetch that finished while this caller waited decides its answer.
            let held = self.held.read().await;
            if let Some(key) = held.keys.get(kid) {
                return Ok(key.clone());
            }
            if !held.may_fetch(self.min_refresh, Instant::now()) {
                return Err(held.miss());
            }
        }
        let fetched = self.fetch().await;
        let mut held = self.held.write().await;
        match fetched {
            Ok(keys) => held.stored(keys, Instant::now()),
            Err(error) => {
                let retry_in = held.failed(Instant::now());
                tracing::warn!(
                    url = %self.url,
                    %error,
                    cached_keys = held.keys.len(),
                    retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
                    "JWKS fetch failed; keeping the cached keys"
                );
            }
        }
        held.keys.get(kid).cloned().ok_or_else(|| held.miss())
    }

    async fn fetch(&self) -> Result<HashMap<String, VerifyingKey>, FetchError> {
        let body = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        parse_set(&body)
    }
}

/// The usable keys of a JWKS document; an empty result is an error, so it never replaces held keys.
fn parse_set(body: &[u8]) -> Result<HashMap<String, VerifyingKey>, FetchError> {
    let set: RawSet = serde_json::from_slice(body)?;
    let offered = set.keys.len();
    let keys: HashMap<_, _> = set.keys.into_iter().filter_map(parse_key).collect();
    if keys.is_empty() {
        return Err(FetchError::NoUsableKey(offered));
    }
    Ok(keys)
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

#[cfg(test)]
mod tests {
    use super::*;

    const MIN_REFRESH: Duration = Duration::from_secs(60);

    #[test]
    fn a_failed_fetch_is_retried_after_a_backoff_of_at_most_seconds_not_min_refresh() {
        let mut held = Held::new();
        let start = Instant::now();
        assert!(held.may_fetch(MIN_REFRESH, start), "cold: fetch at once");
        let mut at = start;
        for _ in 0..20 {
            let wait = held.failed(at);
            assert!(wait <= RETRY_CAP, "{wait:?}");
            assert!(!held.may_fetch(MIN_REFRESH, at));
            at += wait;
            assert!(held.may_fetch(MIN_REFRESH, at), "due again after {wait:?}");
        }
    }

    #[test]
    fn a_good_set_holds_off_refetching_for_min_refresh_and_resets_the_backoff() {
        let mut held = Held::new();
        let start = Instant::now();
        for _ in 0..10 {
            held.failed(start);
        }
        held.stored(HashMap::new(), start);
        assert!(!held.may_fetch(MIN_REFRESH, start + Duration::from_secs(59)));
        assert!(held.may_fetch(MIN_REFRESH, start + MIN_REFRESH));
        assert!(held.failed(start) <= RETRY_BASE, "backoff starts over");
    }

    #[test]
    fn empty_unusable_or_malformed_sets_are_errors() {
        assert!(matches!(
            parse_set(br#"{"keys":[]}"#),
            Err(FetchError::NoUsableKey(0))
        ));
        let oct = br#"{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0"}]}"#;
        assert!(matches!(parse_set(oct), Err(FetchError::NoUsableKey(1))));
        assert!(matches!(parse_set(b"<html>"), Err(FetchError::NotJwks(_))));
        assert!(matches!(parse_set(b"{}"), Err(FetchError::NotJwks(_))));
    }
}
