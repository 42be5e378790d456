//! The one test-token minter: signed JWTs for tests, the e2e harness and the benchmarks. Test code only;
//! the SSE server's dev endpoint mints its own demo tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Standard claims for `sub` named `name`, valid for `ttl_secs` (negative: already expired).
pub fn claims(sub: &str, name: &str, ttl_secs: i64) -> Value {
    let now = now_secs() as i64;
    json!({"sub": sub, "name": name, "iat": now, "exp": now + ttl_secs})
}

/// Signs `claims` with `alg` and `key`, with an optional `kid` header.
pub fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign token")
}

/// An HS256 token over `claims`.
pub fn hs256_with(secret: &str, claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).expect("hmac key");
    sign(Algorithm::HS256, &key, None, claims)
}

/// An HS256 token for `sub` named `name`, valid for an hour.
pub fn hs256(secret: &str, sub: &str, name: &str) -> String {
    hs256_with(secret, &claims(sub, name, 3600))
}
