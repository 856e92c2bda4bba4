//! Feature `axum`: behind axum's router, a path no known route matches is labelled with the
//! route the router matched, as the rate limiter keys it; known routes still win.

mod support;

use axum::{Router, routing::get};
use espresso_slow_call::{SlowCallLayer, SlowCallMetrics, UNMATCHED_ROUTE};
use http::Request;
use http_body_util::BodyExt;
use std::time::Duration;
use support::histogram;
use tower::ServiceExt;

#[tokio::test]
async fn an_undeclared_path_is_labelled_with_the_route_axum_matched() {
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(Duration::from_secs(1))
        .route("/health")
        .metrics(SlowCallMetrics::register(&registry).unwrap());
    let app = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/health", get(|| async { "ok" }))
        .layer(layer);
    for path in ["/users/1", "/users/2", "/health", "/nowhere"] {
        let request = Request::get(path).body(axum::body::Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        // the call is counted when its body ends
        response.into_body().collect().await.unwrap();
    }
    assert_eq!(histogram(&registry, "GET", "/users/{id}", "200").0, 2);
    assert_eq!(histogram(&registry, "GET", "/health", "200").0, 1);
    // no route matched: axum's fallback answers 404 under the unmatched label
    assert_eq!(histogram(&registry, "GET", UNMATCHED_ROUTE, "404").0, 1);
}
