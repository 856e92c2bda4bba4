//! A tonic gRPC service gaining espresso's layers: the same types as under axum, because gRPC
//! is HTTP/2 underneath. Rejections arrive as gRPC statuses (RESOURCE_EXHAUSTED when rate
//! limited), request ids as metadata.
//!
//! ```sh
//! cargo run -p espresso-examples --example tonic_app
//! ```
//!
//! It serves `grpc.health.v1.Health` on a free port, then calls it five times as a client would
//! and prints what came back.

use espresso_rate_limit::{Global, Quota, RateLimitLayer};
use espresso_request_id::RequestIdLayer;
use espresso_slow_call::{SlowCallLayer, SlowCallRecorder};
use std::time::Duration;
use tonic::transport::{Channel, Server};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tower::ServiceBuilder;
use tracing_subscriber::{filter::LevelFilter, prelude::*};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::registry()
        .with(SlowCallRecorder::new().filtered(LevelFilter::INFO))
        .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
        .init();
    let (_reporter, health) = tonic_health::server::health_reporter();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let layers = ServiceBuilder::new()
        .layer(RequestIdLayer::new())
        .layer(SlowCallLayer::new(Duration::from_millis(100)).route("/grpc.health.v1.Health"))
        .layer(RateLimitLayer::new(Quota::per_second(1).burst(3)).key(Global::new()))
        .into_inner();
    tokio::spawn(
        Server::builder()
            .layer(layers)
            .add_service(health)
            .serve_with_incoming(tokio_stream_listener(listener)),
    );

    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = HealthClient::new(channel);
    for i in 0..5 {
        match client.check(HealthCheckRequest::default()).await {
            Ok(response) => println!(
                "call {i}: {:?}, x-request-id {:?}",
                response.get_ref().status(),
                response.metadata().get("x-request-id"),
            ),
            Err(status) => println!("call {i}: {:?} {:?}", status.code(), status.message()),
        }
    }
    Ok(())
}

/// Accepted connections as the stream tonic's `serve_with_incoming` takes.
fn tokio_stream_listener(
    listener: tokio::net::TcpListener,
) -> impl futures_core::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}
