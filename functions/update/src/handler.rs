//! `POST /api/v1/scores/update` as a Lambda handler (function URL / API Gateway v2 events).

use http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use scoreboard_shared::redis::RedisConn;
use serde_json::json;

use scoreboard_shared::auth::Authenticator;
use scoreboard_shared::config::{ConfigError, Env};
use scoreboard_shared::emf::{self, Outcome};
use scoreboard_shared::http_util::{
    authorization, function_clients, json_response, problem_response,
};
use scoreboard_shared::partition::EventId;
use scoreboard_shared::problem::ApiError;
use scoreboard_shared::request_id;

use crate::body::parse_increment;
use crate::config::UpdateConfig;
use crate::idempotency_key::parse_idempotency_key;
use scoreboard_shared::redis::enqueue::{EnqueueOutcome, EnqueueRequest, Enqueuer};

/// The only route this function serves.
pub const UPDATE_PATH: &str = "/api/v1/scores/update";

/// Everything the update function holds for its lifetime: built once per Lambda instance.
#[derive(Debug)]
pub struct UpdateService {
    auth: Authenticator,
    redis: RedisConn,
    enqueuer: Enqueuer,
    config: UpdateConfig,
}

impl UpdateService {
    /// Reads and validates configuration and prepares (lazy) clients.
    ///
    /// # Errors
    /// The first invalid or missing configuration value.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let (auth, redis) = function_clients(env)?;
        Ok(Self::new(auth, redis, UpdateConfig::from_env(env)?))
    }

    pub fn new(auth: Authenticator, redis: RedisConn, config: UpdateConfig) -> Self {
        Self {
            auth,
            redis,
            enqueuer: Enqueuer::new(config.enqueue_limits(), config.partitions.partitioner())
                .with_replica_wait(config.replica_wait),
            config,
        }
    }

    /// Handles one request. Never fails: every error becomes a problem+json response.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let request_id = request_id::from_headers(request.headers());
        match self.accept(&request, &request_id).await {
            Ok(response) => {
                let replayed = response.headers().contains_key("idempotent-replayed");
                emf::emit(
                    "update",
                    if replayed {
                        Outcome::REPLAYED
                    } else {
                        Outcome::ACCEPTED
                    },
                );
                response
            }
            Err(error) => {
                emf::emit("update", Outcome(error.slug()));
                problem_response(&error, &request_id).map(Body::Text)
            }
        }
    }

    #[tracing::instrument(skip_all, fields(request_id = %request_id, user))]
    async fn accept(
        &self,
        request: &Request,
        request_id: &str,
    ) -> Result<Response<Body>, ApiError> {
        if request.uri().path() != UPDATE_PATH {
            return Err(ApiError::NotFound);
        }
        if request.method() != Method::POST {
            return Err(ApiError::MethodNotAllowed { allow: "POST" });
        }
        let principal = self
            .auth
            .authenticate_header(authorization(request.headers()))
            .await?;
        tracing::Span::current().record("user", principal.user_id.as_str());
        if let Some(scope) = &self.config.required_scope
            && !principal.has_scope(scope)
        {
            return Err(ApiError::InsufficientScope(scope.clone()));
        }
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let increment = parse_increment(
            content_type,
            request.body().as_ref(),
            self.config.max_increment,
        )?;
        let idempotency_key = parse_idempotency_key(request.headers())?;

        let outcome = self
            .enqueuer
            .enqueue(
                &mut self.redis.clone(),
                &EnqueueRequest {
                    user_id: &principal.user_id,
                    display_name: principal.display_name.as_deref(),
                    increment,
                    request_id,
                    idempotency_key: idempotency_key.as_deref(),
                },
            )
            .await?;
        match outcome {
            EnqueueOutcome::Accepted { event_id } => {
                tracing::info!(event_id = %event_id, increment, "update accepted");
                Ok(accepted(&event_id, request_id, false))
            }
            EnqueueOutcome::Replayed { event_id } => Ok(accepted(&event_id, request_id, true)),
            EnqueueOutcome::NotReplicated {
                event_id,
                acknowledged,
            } => Err(ApiError::NotReplicated {
                event_id: event_id.to_string(),
                acknowledged,
                wanted: self.config.replica_wait.map_or(0, |wait| wait.replicas),
            }),
            EnqueueOutcome::IdempotencyConflict => Err(ApiError::IdempotencyKeyReused),
            EnqueueOutcome::Backlogged => Err(ApiError::Backlogged {
                retry_after: std::time::Duration::from_secs(1),
            }),
            EnqueueOutcome::RateLimited { retry_after } => Err(ApiError::RateLimited {
                retry_after,
                policy: self.enqueuer.rate_limit_policy(),
            }),
        }
    }
}

fn accepted(event_id: &EventId, request_id: &str, replayed: bool) -> Response<Body> {
    let mut response = json_response(
        StatusCode::ACCEPTED,
        &json!({"status": "accepted", "eventId": event_id.to_string()}),
        request_id,
    )
    .map(Body::Text);
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            http::HeaderValue::from_static("true"),
        );
    }
    response
}
