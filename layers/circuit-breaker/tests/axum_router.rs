//! With its defaults the layer goes into axum's `Router::layer` as it is, and an open breaker
//! answers with the JSON rejection.

use axum::{Router, body::Body, routing::get};
use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, State};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn the_default_layer_fits_router_layer_and_answers_when_open() {
    let breaker = CircuitBreaker::builder("route")
        .minimum_number_of_calls(1)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { StatusCode::BAD_GATEWAY }))
        .layer(CircuitBreakerLayer::new(breaker.clone()));

    let response = app
        .clone()
        .oneshot(Request::new(Body::empty()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(breaker.state(), State::Open);

    let response = app.oneshot(Request::new(Body::empty())).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-circuit-breaker"], "route");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "circuit_open");
}
