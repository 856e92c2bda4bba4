//! All five espresso layers on an axum app and on a tonic service, from one stack function
//! ([`espresso_examples::adopter::Espresso::layers`]), with their defaults: no
//! `HandleErrorLayer`, no `map_err`, no adapter.
//!
//! ```sh
//! cargo run -p espresso-examples --example adopter
//! curl -i localhost:3000/hello                        # a generated x-request-id
//! curl -i -H 'x-request-id: abc-123' localhost:3000/hello   # echoed
//! curl -i localhost:3000/slow                         # one WARN line: the span tree, the id once
//! for i in $(seq 7); do curl -s -o /dev/null -w '%{http_code}\n' localhost:3000/hello; done  # 429s
//! # on a fresh start: 502, 502, then 503 from the open breaker (half the calls it counted failed)
//! curl -i localhost:3000/fail; curl -i localhost:3000/fail; curl -i localhost:3000/hello
//! curl -X POST localhost:3000/admin/degrade/on       # every request shed: 503 (gRPC RESOURCE_EXHAUSTED)
//! curl -X POST localhost:3000/admin/degrade/off
//! curl -s localhost:3000/metrics                      # every layer's families
//! grpcurl -plaintext -v 127.0.0.1:50051 espresso.example.Demo/Hello   # x-request-id in the headers
//! grpcurl -plaintext 127.0.0.1:50051 espresso.example.Demo/Slow       # one WARN line
//! grpcurl -plaintext 127.0.0.1:50051 espresso.example.Demo/Fail       # UNAVAILABLE, then the breaker's
//! grpcurl -plaintext 127.0.0.1:50051 grpc.health.v1.Health/Check
//! ```
//!
//! The gRPC side serves `espresso.example.Demo` (methods `Hello`, `Slow`, `Fail`, empty messages),
//! `grpc.health.v1.Health` and reflection on 127.0.0.1:50051, behind the same stack.

use axum::{Router, extract::State, response::IntoResponse, routing::post};
use espresso_examples::adopter::{Demo, Espresso, demo_descriptor, http_routes};
use espresso_slow_call::SlowCallRecorder;
use prometheus::{Registry, TextEncoder};
use std::net::SocketAddr;
use tonic::transport::{Server, server::TcpIncoming};
use tracing_subscriber::{filter::LevelFilter, prelude::*};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::registry()
        .with(SlowCallRecorder::new().filtered(LevelFilter::INFO))
        .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
        .init();
    let registry = Registry::new();
    let espresso = Espresso::new(&registry)?;

    // The same line for both: the app, then `.layer(espresso.layers(name)?)`.
    let http = http_routes()
        .layer(espresso.layers("http")?)
        .merge(admin(registry, espresso.clone()));
    let (_health_reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_file_descriptor_set(demo_descriptor())
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let grpc = Server::builder()
        .layer(espresso.layers("grpc")?)
        .add_service(Demo::new())
        .add_service(health)
        .add_service(reflection);

    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
    println!("HTTP listening on http://{}", http_listener.local_addr()?);
    println!("gRPC listening on {}", grpc_listener.local_addr()?);
    let grpc = tokio::spawn(grpc.serve_with_incoming(TcpIncoming::from(grpc_listener)));
    // Served with the peer's address, so the rate limit is per client.
    axum::serve(
        http_listener,
        http.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    grpc.await??;
    Ok(())
}

/// `/metrics` and the degrade switch, outside the stack so they answer even when it refuses.
fn admin(registry: Registry, espresso: Espresso) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(registry)
        .route(
            "/admin/degrade/{on}",
            post(
                move |axum::extract::Path(on): axum::extract::Path<String>| {
                    let was = espresso.switch().set(on == "on");
                    async move { format!("degrade forced: {} (was {was})\n", on == "on") }
                },
            ),
        )
}

async fn metrics(State(registry): State<Registry>) -> impl IntoResponse {
    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_default()
}
