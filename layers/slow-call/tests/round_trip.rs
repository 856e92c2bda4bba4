//! Real round trips on 127.0.0.1: an axum `Router` served by hyper, and tonic's server with the
//! standard health service. The threshold is zero so that every request is logged: these tests
//! check what is logged and counted, never how fast anything is.
//!
//! The runtime is single-threaded so that the server's tasks run on the test's thread, where the
//! capturing subscriber is installed.

mod support;

use axum::{Router, routing::post};
use bytes::Bytes;
use espresso_common::RequestId;
use espresso_slow_call::{SlowCallLayer, SlowCallMetrics};
use espresso_test_support::{FailsInTrailers, health_client_of, health_request};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::{net::SocketAddr, time::Duration};
use support::{capture, histogram};
use tokio::net::TcpListener;
use tonic_health::pb::{HealthCheckRequest, health_server::HealthServer};
use tower::ServiceBuilder;
use tracing::instrument;

#[instrument]
async fn lookup() {
    tokio::task::yield_now().await;
}

#[instrument(skip_all)]
async fn filter(body: String) -> String {
    lookup().await;
    body.to_uppercase()
}

async fn stall() -> &'static str {
    std::future::pending::<()>().await;
    "never"
}

/// Stands in for the request-id layer, which runs outside the slow-call layer.
fn with_request_id<B>(mut request: Request<B>) -> Request<B> {
    let id = RequestId::new(HeaderValue::from_static("rt-1")).unwrap();
    request.extensions_mut().insert(id);
    request
}

async fn serve_axum(metrics: SlowCallMetrics) -> SocketAddr {
    let app = Router::new()
        .route("/v1/filter", post(filter))
        .route("/stall", post(stall))
        .layer(
            ServiceBuilder::new().map_request(with_request_id).layer(
                SlowCallLayer::new(Duration::ZERO)
                    .route("/v1/filter")
                    .route("/stall")
                    .metrics(metrics),
            ),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "current_thread")]
async fn axum_requests_are_logged_with_their_tree() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let addr = serve_axum(SlowCallMetrics::register(&registry).unwrap()).await;

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::post(format!("http://{addr}/v1/filter"))
        .body(Full::from("hello"))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "HELLO");

    let events = events.wait_for(1).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.get("request_id"), "rt-1");
    assert_eq!(event.get("route"), "/v1/filter");
    assert_eq!(event.get("status"), "200");
    let tree = event.get("tree");
    assert!(tree.starts_with("filter "), "{tree}");
    assert!(tree.contains(" > lookup "), "{tree}");
    assert_eq!(histogram(&registry, "POST", "/v1/filter", "200").0, 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_disconnect_is_accounted_as_cancelled() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let addr = serve_axum(SlowCallMetrics::register(&registry).unwrap()).await;

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::post(format!("http://{addr}/stall"))
        .body(Full::default())
        .unwrap();
    let call = tokio::spawn(async move { client.request(request).await });
    // Let the request reach the handler, then hang up.
    while support::value(&registry, "http_server_active_requests", &[]) < 1.0 {
        tokio::task::yield_now().await;
    }
    call.abort();

    let events = events.wait_for(1).await;
    assert_eq!(events[0].get("status"), "cancelled");
    assert_eq!(events[0].get("cancelled"), "true");
    assert_eq!(histogram(&registry, "POST", "/stall", "cancelled").0, 1);
    assert_eq!(
        support::value(&registry, "http_server_active_requests", &[]),
        0.0
    );
}

#[tokio::test(flavor = "current_thread")]
async fn grpc_calls_are_logged_with_their_grpc_status() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let layer = SlowCallLayer::new(Duration::ZERO)
        .route("/grpc.health.v1.Health/Check")
        .metrics(SlowCallMetrics::register(&registry).unwrap());
    let mut client = health_client_of(|incoming| {
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(health)
            .serve_with_incoming(incoming)
    })
    .await;

    let ok = client
        .check(HealthCheckRequest { service: "".into() })
        .await;
    assert!(ok.is_ok());
    let missing = client
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);

    let events = events.wait_for(2).await;
    let statuses: Vec<_> = events.iter().map(|e| e.get("status")).collect();
    assert_eq!(statuses, ["OK", "NOT_FOUND"]);
    assert_eq!(events[0].get("route"), "/grpc.health.v1.Health/Check");
    let route = "/grpc.health.v1.Health/Check";
    assert_eq!(histogram(&registry, "POST", route, "OK").0, 1);
    assert_eq!(histogram(&registry, "POST", route, "NOT_FOUND").0, 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_stream_that_fails_in_its_trailers_is_logged_and_counted_with_that_status() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(Duration::ZERO)
        .route("/grpc.health.v1.Health/Watch")
        .metrics(SlowCallMetrics::register(&registry).unwrap());
    let mut client = health_client_of(|incoming| {
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(HealthServer::new(FailsInTrailers))
            .serve_with_incoming(incoming)
    })
    .await;
    let mut stream = client
        .watch(health_request())
        .await
        .expect("the head says OK")
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    assert!(stream.message().await.unwrap().is_some());
    let end = stream.message().await.unwrap_err();
    assert_eq!(end.code(), tonic::Code::Unavailable);

    let events = events.wait_for(1).await;
    assert_eq!(events[0].get("status"), "UNAVAILABLE");
    let route = "/grpc.health.v1.Health/Watch";
    assert_eq!(histogram(&registry, "POST", route, "UNAVAILABLE").0, 1);
    assert_eq!(histogram(&registry, "POST", route, "OK").0, 0);
}
