//! With its defaults the layer goes into axum's `Router::layer` as it is, and shed requests get
//! the JSON rejection; with `return_error`, it goes in behind a `HandleErrorLayer`.

use axum::{Router, body::Body, routing::get};
use espresso_degrade::{DegradeLayer, DegradeSwitch, limit::Fixed};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn the_default_layer_fits_router_layer_and_answers_shed_requests_with_json() {
    let switch = DegradeSwitch::new();
    let app = Router::new()
        .route("/", get(|| async { "primary" }))
        .layer(DegradeLayer::new(Fixed::new(4)).switch(switch.clone()));

    let response = app
        .clone()
        .oneshot(Request::new(Body::empty()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "primary"
    );

    switch.set(true);
    let response = app.oneshot(Request::new(Body::empty())).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "overloaded");
}

/// `return_error` fails shed requests, which `Router::layer` does not accept from a service; a
/// `HandleErrorLayer` outside the layer turns the error into a response.
#[tokio::test]
async fn return_error_fits_router_layer_behind_a_handle_error_layer() {
    use axum::error_handling::HandleErrorLayer;
    use espresso_degrade::Shed;
    use tower::{BoxError, ServiceBuilder};

    let switch = DegradeSwitch::new();
    let app = Router::new().route("/", get(|| async { "primary" })).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|error: BoxError| async move {
                let shed = error.downcast_ref::<Shed>().is_some();
                (StatusCode::SERVICE_UNAVAILABLE, format!("shed: {shed}"))
            }))
            .layer(
                DegradeLayer::new(Fixed::new(4))
                    .switch(switch.clone())
                    .return_error(),
            ),
    );

    switch.set(true);
    let response = app.oneshot(Request::new(Body::empty())).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "shed: true");
}
