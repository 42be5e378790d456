//! Dev-only routes, mounted only when `DEV_MODE=true`: mint a demo user's HS256 token and forward the demo
//! button's update to the update function (same origin, so the browser needs no CORS from the emulator).
//! With dev mode off these paths do not exist (`404`). Tokens are returned, never logged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{EncodingKey, Header};
use scoreboard_shared::problem::ApiError;
use scoreboard_shared::request_id;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::config::DevConfig;
use crate::problem::{OrProblem, Problem};
use crate::state::AppState;

/// Longest demo name, in characters.
const MAX_NAME_CHARS: usize = 24;
/// Headers copied from the browser to the update function and back.
const FORWARDED_REQUEST: [&str; 3] = ["authorization", "content-type", "idempotency-key"];
const FORWARDED_RESPONSE: [&str; 5] = [
    "content-type",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "x-request-id",
];

#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    token: String,
    user_id: String,
    name: String,
    expires_in: u64,
}

#[derive(Serialize)]
struct DemoClaims<'a> {
    sub: &'a str,
    name: &'a str,
    scope: &'static str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// `POST /dev/token {"name":"Ada"}` → a token for user `demo-ada`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<TokenRequest>,
) -> Result<Json<TokenResponse>, Problem> {
    let request_id = request_id::from_headers(&headers);
    let dev = state
        .config()
        .dev
        .as_ref()
        .ok_or(ApiError::NotFound)
        .or_problem(&request_id)?;
    let (user_id, name) = demo_user(&request.name)
        .ok_or_else(|| {
            let detail = format!("name must be 1–{MAX_NAME_CHARS} letters, digits, spaces, - or _");
            ApiError::Validation(detail)
        })
        .or_problem(&request_id)?;
    let token = mint(dev, &state, &user_id, &name)
        .map_err(|error| ApiError::Internal(error.to_string()))
        .or_problem(&request_id)?;
    Ok(Json(TokenResponse {
        token,
        user_id,
        name,
        expires_in: dev.token_ttl.as_secs(),
    }))
}

/// The user id and display name for a demo name, or `None` when the name is unusable.
pub fn demo_user(raw: &str) -> Option<(String, String)> {
    let name = raw.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'));
    if !ok {
        return None;
    }
    let slug: String = name
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-");
    Some((format!("demo-{slug}"), name.to_owned()))
}

fn mint(
    dev: &DevConfig,
    state: &AppState,
    user_id: &str,
    name: &str,
) -> jsonwebtoken::errors::Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let auth = &state.config().auth;
    let claims = DemoClaims {
        sub: user_id,
        name,
        scope: "scores:write",
        iat: now,
        exp: now + dev.token_ttl.as_secs(),
        iss: auth.issuer.as_deref(),
        aud: auth.audience.as_deref(),
    };
    let key = EncodingKey::from_secret(dev.jwt_secret.expose_secret().as_bytes())?;
    jsonwebtoken::encode(&Header::default(), &claims, &key)
}

/// `POST /dev/update`: forwards the body and auth headers to `DEV_UPDATE_URL` and relays the answer.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let request_id = request_id::from_headers(&headers);
    let url = state
        .config()
        .dev
        .as_ref()
        .and_then(|d| d.update_url.clone())
        .ok_or(ApiError::NotFound)
        .or_problem(&request_id)?;
    let mut upstream = state.http().post(url).header("x-request-id", &request_id);
    for name in FORWARDED_REQUEST {
        if let Some(value) = headers.get(name) {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream
        .body(body)
        .send()
        .await
        .map_err(|error| ApiError::Unavailable(format!("update function: {error}")))
        .or_problem(&request_id)?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::builder().status(status);
    for name in FORWARDED_RESPONSE {
        if let Some(value) = answer.headers().get(name) {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    Ok(response
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(bytes))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_names_become_stable_user_ids() {
        assert_eq!(
            demo_user("  Grace Hopper "),
            Some(("demo-grace-hopper".into(), "Grace Hopper".into()))
        );
        assert_eq!(demo_user(""), None);
        assert_eq!(demo_user("a<script>"), None);
        assert_eq!(demo_user(&"x".repeat(25)), None);
    }
}
