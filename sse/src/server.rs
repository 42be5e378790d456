//! The router and the serve loop. `app` is what tests drive; `run` serves a bound listener, runs the Pub/Sub
//! loop beside it, and on [`Shutdown`] ends every stream first so browsers reconnect elsewhere at once.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, Method, header};
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
use crate::{demo, dev, problem, pubsub, telemetry};

/// Every route of the SSE container. Dev routes exist only in dev mode.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route(EVENTS_PATH, get(events))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
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

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({
        "status": "ok",
        "subscribed": state.is_subscribed(),
        "version": state.hub().current().version,
        "connections": state.limiter().open(),
    }))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus().render(),
    )
}

/// Serves `listener` until `shutdown` is triggered, then closes every stream and the Pub/Sub loop and waits
/// for connections to end.
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
    let subscriber = tokio::spawn(pubsub::run(state.clone()));
    let closer = state.clone();
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.triggered().await;
            closer.close();
        })
        .await;
    let _ = subscriber.await;
    served
}
