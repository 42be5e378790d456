//! The routers and the serve loop. `app` is the public router (stream, demo page, `/healthz`; `/metrics` is
//! `404` there); `metrics_app` is the private one (`/metrics` only, for `METRICS_ADDR`, which the load
//! balancer does not route). `run_with_metrics` serves both listeners, runs the Pub/Sub loop and the shared
//! heartbeat beside them, and on [`Shutdown`] ends every stream first so browsers reconnect elsewhere at
//! once; `run` is the same without the metrics listener.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use scoreboard_shared::shutdown::Shutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::config::CorsOrigins;
use crate::events::{EVENTS_PATH, events};
use crate::state::AppState;
use crate::{demo, dev, direct, heartbeat, problem, pubsub, telemetry};

/// Every public route of the SSE container. Dev routes exist only in dev mode; `/metrics` is not here.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route(EVENTS_PATH, get(events))
        .route("/healthz", get(healthz))
        .route("/", get(demo::index))
        .route("/assets/app.js", get(demo::script))
        .route("/assets/app.css", get(demo::stylesheet))
        .route("/demo/config.json", get(demo::config));
    if state.config().dev.is_some() {
        router = router
            .route("/dev/token", post(dev::token))
            .route("/dev/update", post(dev::update));
    }
    let cors = cors_layer(&state.config().cors);
    let router = router
        .fallback(problem::not_found)
        .with_state(state)
        .layer(TraceLayer::new_for_http().make_span_with(telemetry::request_span));
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The private router of `METRICS_ADDR`: `GET /metrics` (Prometheus text), `404` for anything else.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(problem::not_found)
        .with_state(state)
}

fn cors_layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow = match origins {
        CorsOrigins::Off => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static("idempotency-key"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// `200` while the process can serve live boards; `503` (same body, `"status":"unavailable"`) once it has
/// been without a live Pub/Sub subscription for longer than `SSE_UNHEALTHY_AFTER_SECS`, so the load
/// balancer routes around it until it resubscribes.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let healthy = state.is_healthy();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Json(json!({
        "status": if healthy { "ok" } else { "unavailable" },
        "subscribed": state.is_subscribed(),
        "version": state.hub().current().version,
        "connections": state.limiter().open(),
    }));
    (status, [(header::CACHE_CONTROL, "no-store")], body)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    telemetry::refresh();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus().render(),
    )
}

/// Serves the public `listener` until `shutdown` is triggered, then closes every stream and the Pub/Sub loop
/// and waits for connections to end. `/metrics` is served nowhere: use [`run_with_metrics`] for that.
///
/// Keep the [`ShutdownTrigger`](scoreboard_shared::shutdown::ShutdownTrigger) of `shutdown` alive while
/// serving: a dropped trigger closes the signal, and `run` then shuts down at once.
///
/// # Errors
/// When the listener fails.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    serve(listener, None, state, shutdown).await
}

/// [`run`], plus `/metrics` on `metrics_listener` (bound to `METRICS_ADDR`), which the load balancer does
/// not route. Both stop on `shutdown`.
///
/// # Errors
/// When either listener fails.
pub async fn run_with_metrics(
    listener: TcpListener,
    metrics_listener: TcpListener,
    state: AppState,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    serve(listener, Some(metrics_listener), state, shutdown).await
}

async fn serve(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let subscriber = tokio::spawn(pubsub::run(state.clone()));
    let ticker = tokio::spawn(heartbeat::run(
        state.heartbeat().clone(),
        state.config().heartbeat,
        state.closing(),
    ));
    let metrics = metrics_listener.map(|metrics_listener| {
        let router = metrics_app(state.clone());
        let closing = state.closing();
        tokio::spawn(async move {
            axum::serve(metrics_listener, router)
                .with_graceful_shutdown(closing.triggered())
                .await
        })
    });
    let closer = state.clone();
    let served = direct::serve(listener, app(state.clone()), state.closing(), async move {
        shutdown.triggered().await;
        closer.close();
    })
    .await;
    // However serving ended, everything beside it ends too (closing twice is harmless).
    state.close();
    let _ = subscriber.await;
    let _ = ticker.await;
    let metrics_served = match metrics {
        Some(task) => task.await.unwrap_or(Ok(())),
        None => Ok(()),
    };
    served.and(metrics_served)
}
