//! The demo page at `/`: plain HTML, CSS and JS embedded in the binary (no build step), plus the small
//! JSON the page reads to know whether dev mode is on.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::events::EVENTS_PATH;
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Names offered on the dev panel.
const DEMO_NAMES: [&str; 12] = [
    "Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Dennis", "Frances", "Ken", "Radia",
    "Guido", "Hedy",
];

pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_JS,
    )
}

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_CSS,
    )
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageConfig {
    dev_mode: bool,
    events_path: &'static str,
    can_update: bool,
    demo_names: &'static [&'static str],
}

/// `GET /demo/config.json`.
pub async fn config(State(state): State<AppState>) -> Json<PageConfig> {
    let dev = state.config().dev.as_ref();
    Json(PageConfig {
        dev_mode: dev.is_some(),
        events_path: EVENTS_PATH,
        can_update: dev.is_some_and(|d| d.update_url.is_some()),
        demo_names: if dev.is_some() { &DEMO_NAMES } else { &[] },
    })
}
