//! The dashboard page, its script and style (compiled into the binary: no CDN, no files to
//! install) and its JSON data endpoint.

use super::series::Series;
use axum::{
    Json, Router,
    extract::{Query, State},
    http::header,
    response::IntoResponse,
    routing::get,
};
use serde::Deserialize;

const PAGE: &str = include_str!("../../assets/dashboard.html");
const SCRIPT: &str = include_str!("../../assets/dashboard.js");
const STYLE: &str = include_str!("../../assets/dashboard.css");

pub(super) fn routes(series: Series) -> Router {
    Router::new()
        .route("/debug/dashboard", get(page))
        .route("/debug/dashboard/", get(page))
        .route("/debug/dashboard/dashboard.js", get(script))
        .route("/debug/dashboard/dashboard.css", get(style))
        .route("/debug/dashboard/data", get(data).with_state(series))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
}

#[derive(Debug, Deserialize)]
struct DataQuery {
    #[serde(default)]
    since: u64,
}

async fn data(State(series): State<Series>, Query(query): Query<DataQuery>) -> impl IntoResponse {
    let (samples, gauges) = series.snapshot(query.since);
    let body = serde_json::json!({
        "interval_ms": 1000,
        "capacity": super::series::CAPACITY,
        "samples": samples,
        "breakers": gauges.breakers,
        "adaptive_limits": gauges.adaptive_limits,
        "top_categories": gauges.top_categories,
        "requests_total": gauges.requests_total,
    });
    ([(header::CACHE_CONTROL, "no-store")], Json(body))
}
