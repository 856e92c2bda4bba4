//! An existing axum app gaining espresso's layers with one `ServiceBuilder`.
//!
//! ```sh
//! cargo run -p espresso-examples --example axum_app
//! curl -i localhost:3000/hello                 # x-request-id on every response
//! for i in $(seq 5); do curl -s -o /dev/null -w '%{http_code}\n' localhost:3000/hello; done
//! curl -i localhost:3000/flaky                 # 502, 502, then 503 from the open breaker
//! curl -s localhost:3000/metrics               # request durations, rate-limit decisions, breaker state
//! ```

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, CircuitBreakerMetrics};
use espresso_rate_limit::{PeerIp, Quota, RateLimitLayer, RateLimitMetrics};
use espresso_request_id::RequestIdLayer;
use espresso_slow_call::{SlowCallLayer, SlowCallMetrics, SlowCallRecorder};
use prometheus::{Registry, TextEncoder};
use std::{net::SocketAddr, time::Duration};
use tower::ServiceBuilder;
use tracing_subscriber::{filter::LevelFilter, prelude::*};

/// The app as it was before espresso: two routes and a metrics page.
fn app(registry: Registry) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/metrics", get(metrics))
        .with_state(registry)
}

#[tracing::instrument]
async fn hello() -> String {
    // The request id is reachable anywhere inside the request, without the request.
    let id = espresso_request_id::current().map(|id| id.to_string());
    format!("hello, request {}\n", id.unwrap_or_default())
}

async fn metrics(State(registry): State<Registry>) -> impl IntoResponse {
    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_default()
}

/// An upstream that always fails: the breaker opens after two failures.
async fn flaky() -> StatusCode {
    StatusCode::BAD_GATEWAY
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::registry()
        .with(SlowCallRecorder::new().filtered(LevelFilter::INFO))
        .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
        .init();
    let registry = Registry::new();

    // One breaker guards the flaky route only; by default an open breaker answers 503 (gRPC:
    // UNAVAILABLE) itself, so the layer goes into the router as it is.
    let breaker = CircuitBreaker::builder("flaky")
        .minimum_number_of_calls(2)
        .wait_in_open(Duration::from_secs(10))
        .metrics(CircuitBreakerMetrics::register(&registry)?)
        .build()?;
    let flaky_route = Router::new().route(
        "/flaky",
        get(flaky).layer(CircuitBreakerLayer::new(breaker)),
    );

    // The whole app gains request ids, slow-call logs and a per-client rate limit: outermost
    // first, as a ServiceBuilder reads.
    let app = app(registry.clone()).merge(flaky_route).layer(
        ServiceBuilder::new()
            .layer(RequestIdLayer::new())
            .layer(
                SlowCallLayer::new(Duration::from_millis(100))
                    .route("/hello")
                    .route("/flaky")
                    .metrics(SlowCallMetrics::register(&registry)?),
            )
            .layer(
                RateLimitLayer::new(Quota::per_second(2).burst(3))
                    .key(PeerIp::new())
                    .metrics(RateLimitMetrics::register(&registry)?),
            ),
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
