//! The worker's small HTTP port: `/healthz` (liveness, with Redis and store reachability as detail) and
//! `/metrics` (Prometheus).
//!
//! `/healthz` answers 200 while the process runs even when a dependency is down: the worker already rides
//! outages out in-process, and restarting it would only move its partitions. A store error that retrying
//! cannot fix is the exception: the worker exits non-zero by itself (see `partition/balancer.rs`).

use std::sync::Arc;

use crate::store::WatermarkStore;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use scoreboard_shared::redis::RedisConn;

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct HealthState {
    pub redis: RedisConn,
    pub store: Arc<dyn WatermarkStore>,
    pub metrics: PrometheusHandle,
}

/// `GET /healthz` and `GET /metrics`.
pub fn app(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(state)
}

async fn healthz(State(state): State<HealthState>) -> Json<serde_json::Value> {
    let redis_ok = redis::cmd("PING")
        .query_async::<String>(&mut state.redis.clone())
        .await
        .is_ok();
    let store_ok = state.store.ping().await.is_ok();
    Json(serde_json::json!({"status": "ok", "redis": redis_ok, "store": store_ok}))
}

async fn render_metrics(State(state): State<HealthState>) -> String {
    state.metrics.run_upkeep();
    state.metrics.render()
}
