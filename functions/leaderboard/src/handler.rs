//! `GET /api/v1/scores/leaderboard` and `GET /api/v1/scores/me` as a Lambda handler.

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use scoreboard_shared::redis::RedisConn;

use scoreboard_shared::auth::Authenticator;
use scoreboard_shared::config::{ConfigError, Env};
use scoreboard_shared::emf::{self, Outcome};
use scoreboard_shared::http_util::{
    authorization, function_clients, json_response, problem_response,
};
use scoreboard_shared::problem::ApiError;
use scoreboard_shared::request_id;

use crate::config::Config;
use crate::read::{read_my_rank, read_snapshot};

/// The board.
pub const LEADERBOARD_PATH: &str = "/api/v1/scores/leaderboard";
/// The caller's standing.
pub const ME_PATH: &str = "/api/v1/scores/me";

/// Everything the leaderboard function holds for its lifetime: built once per Lambda instance.
#[derive(Debug)]
pub struct LeaderboardService {
    auth: Authenticator,
    redis: RedisConn,
    config: Config,
}

impl LeaderboardService {
    /// Reads and validates configuration and prepares (lazy) clients.
    ///
    /// # Errors
    /// The first invalid or missing configuration value.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let config = Config::from_env(env)?;
        let (auth, redis) = function_clients(env)?;
        Ok(Self {
            auth,
            redis,
            config,
        })
    }

    /// Handles one request. Never fails: every error becomes a problem+json response.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let request_id = request_id::from_headers(request.headers());
        match self.answer(&request, &request_id).await {
            Ok(response) => {
                emf::emit("leaderboard", Outcome::SERVED);
                response
            }
            Err(error) => {
                emf::emit("leaderboard", Outcome(error.slug()));
                problem_response(&error, &request_id).map(Body::Text)
            }
        }
    }

    async fn answer(
        &self,
        request: &Request,
        request_id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let path = request.uri().path();
        if path != LEADERBOARD_PATH && path != ME_PATH {
            return Err(ApiError::NotFound);
        }
        if request.method() != Method::GET {
            return Err(ApiError::MethodNotAllowed { allow: "GET" });
        }
        let principal = self
            .auth
            .authenticate_header(authorization(request.headers()))
            .await?;
        let mut conn = self.redis.clone();
        if path == ME_PATH {
            let mine = read_my_rank(
                &mut conn,
                self.config.partitions.partitioner(),
                &principal.user_id,
            )
            .await?;
            return Ok(json_response(StatusCode::OK, &mine, request_id).map(Body::Text));
        }
        let snapshot = read_snapshot(
            &mut conn,
            self.config.partitions.partitioner(),
            self.config.board.size,
        )
        .await?;
        let etag = format!("\"{}\"", snapshot.version);
        let mut response = if if_none_match(request.headers(), &etag) {
            let mut not_modified = Response::new(Body::Empty);
            *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
            not_modified
        } else {
            json_response(StatusCode::OK, &snapshot, request_id).map(Body::Text)
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(value) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, value);
        }
        Ok(response)
    }
}

/// Whether `If-None-Match` lists `etag` (weak or strong) or `*`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static(r#""3", W/"7""#),
        );
        assert!(if_none_match(&headers, "\"7\""));
        assert!(if_none_match(&headers, "\"3\""));
        assert!(!if_none_match(&headers, "\"8\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&headers, "\"1\""));
        assert!(!if_none_match(&HeaderMap::new(), "\"1\""));
    }
}
