//! HS256 test tokens signed with the stack's secret.

use std::time::{SystemTime, UNIX_EPOCH};

/// A token for `sub` with display name `name`, valid for an hour.
pub fn mint(secret: &str, sub: &str, name: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let claims = serde_json::json!({"sub": sub, "name": name, "iat": now, "exp": now + 3600});
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).expect("hmac key");
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("sign token")
}
