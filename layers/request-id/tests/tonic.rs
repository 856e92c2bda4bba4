//! Real gRPC round trips: tonic 0.14's server with the standard health service behind
//! `RequestIdLayer`, and tonic's generated health client reading the response metadata.

use espresso_request_id::RequestIdLayer;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tonic::{Code, Request, metadata::MetadataValue, transport::server::TcpIncoming};
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, health_check_response, health_client::HealthClient},
};

async fn serve() -> SocketAddr {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("espresso.Test", ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(RequestIdLayer::new())
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    addr
}

async fn client(addr: SocketAddr) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

fn check(service: &str, id: Option<&'static str>) -> Request<HealthCheckRequest> {
    let mut request = Request::new(HealthCheckRequest {
        service: service.into(),
    });
    if let Some(id) = id {
        request
            .metadata_mut()
            .insert("x-request-id", MetadataValue::from_static(id));
    }
    request
}

#[tokio::test]
async fn successful_calls_carry_the_id_in_response_metadata() {
    let mut client = client(serve().await).await;

    let response = client
        .check(check("espresso.Test", Some("grpc-7")))
        .await
        .unwrap();
    assert_eq!(
        response.get_ref().status,
        health_check_response::ServingStatus::Serving as i32
    );
    assert_eq!(response.metadata().get("x-request-id").unwrap(), "grpc-7");

    let response = client.check(check("espresso.Test", None)).await.unwrap();
    let generated = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(generated.len(), 36);
}

#[tokio::test]
async fn failed_calls_carry_the_id_in_the_trailers_only_status() {
    let mut client = client(serve().await).await;
    // The health service answers NOT_FOUND for an unknown service: a trailers-only response.
    let status = client
        .check(check("no.Such", Some("grpc-8")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.metadata().get("x-request-id").unwrap(), "grpc-8");
}

#[tokio::test]
async fn invalid_ids_in_metadata_are_replaced() {
    let mut client = client(serve().await).await;
    let response = client
        .check(check("espresso.Test", Some("has spaces; and=more")))
        .await
        .unwrap();
    let id = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_ne!(id, "has spaces; and=more");
    assert_eq!(id.len(), 36);
}
