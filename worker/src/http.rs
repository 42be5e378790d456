//! The worker's small HTTP port: `/healthz` (Redis and the store answer) and `/metrics` (Prometheus).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use redis::aio::ConnectionManager;
use scoreboard_shared::store::ScoreStore;

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct HealthState {
    pub redis: ConnectionManager,
    pub store: Arc<dyn ScoreStore>,
    pub metrics: PrometheusHandle,
}

/// `GET /healthz` and `GET /metrics`.
pub fn app(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(state)
}

async fn healthz(State(state): State<HealthState>) -> (StatusCode, &'static str) {
    let redis_ok = redis::cmd("PING")
        .query_async::<String>(&mut state.redis.clone())
        .await
        .is_ok();
    let store_ok = state.store.ping().await.is_ok();
    match (redis_ok, store_ok) {
        (true, true) => (StatusCode::OK, "ok\n"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable\n"),
        (true, false) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n"),
    }
}

async fn render_metrics(State(state): State<HealthState>) -> String {
    state.metrics.run_upkeep();
    state.metrics.render()
}
