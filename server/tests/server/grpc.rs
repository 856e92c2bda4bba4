//! gRPC on the same port: `Filter/Check`, health, reflection, unknown methods.

use crate::harness::Server;
use espresso_server::pb::{CheckRequest, filter_client::FilterClient};
use tonic::Code;

#[tokio::test]
async fn check_answers_like_the_json_api() {
    let server = Server::start("").await;
    let mut client = FilterClient::new(server.channel().await);
    let content = "a BADWORD here";
    let mut request = tonic::Request::new(CheckRequest {
        content: content.into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-request-id", "grpc-call-1".parse().unwrap());
    let response = client.check(request).await.expect("Check succeeds");
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "grpc-call-1"
    );
    let reply = response.into_inner();
    assert_eq!(reply.request_id, "grpc-call-1");
    assert_eq!(reply.verdict, "block");
    assert!(!reply.degraded);
    let hit = &reply.hits[0];
    assert_eq!(hit.level, "danger");
    assert_eq!(hit.word, "badword");
    assert_eq!(&content[hit.start as usize..hit.end as usize], "BADWORD");

    let reply = client
        .check(CheckRequest {
            content: "fine".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!reply.metadata().get("x-request-id").unwrap().is_empty());
    assert_eq!(reply.into_inner().verdict, "pass");
}

#[tokio::test]
async fn health_reports_serving() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let server = Server::start("").await;
    let mut client = HealthClient::new(server.channel().await);
    for service in ["", "espresso.filter.v1.Filter"] {
        let status = client
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
}

#[tokio::test]
async fn a_health_watch_is_never_a_slow_call() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let server = Server::start("[slow_call]\nthreshold_ms = 0\n").await;
    let mut client = HealthClient::new(server.channel().await);
    let mut watch = client
        .watch(HealthCheckRequest { service: "".into() })
        .await
        .unwrap()
        .into_inner();
    watch.message().await.unwrap().expect("the current status");
    drop(watch);
    // a check after it is slow at a threshold of 0: its line shows the log is read
    let mut filter = FilterClient::new(server.channel().await);
    filter
        .check(CheckRequest {
            content: "hello".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    espresso_test_support::eventually(|| async {
        server
            .logs()
            .iter()
            .any(|l| l.contains("slow call") && l.contains("Filter/Check"))
    })
    .await;
    let logs = server.logs();
    assert!(
        !logs
            .iter()
            .any(|l| l.contains("slow call") && l.contains("Health/Watch")),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn unknown_services_and_methods_are_unimplemented_and_say_so() {
    let server = Server::start("").await;
    let mut client = tonic::client::Grpc::new(server.channel().await);
    for (path, says) in [
        (
            "/no.such.Service/Call",
            "no route for POST /no.such.Service/Call",
        ),
        (
            "/espresso.filter.v1.Filter/Frobnicate",
            "espresso.filter.v1.Filter has no such method",
        ),
        (
            "/grpc.health.v1.Health/Frobnicate",
            "grpc.health.v1.Health has no such method",
        ),
    ] {
        client.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<CheckRequest, CheckRequest>::default();
        let status = client
            .unary(
                tonic::Request::new(CheckRequest::default()),
                http::uri::PathAndQuery::from_static(path),
                codec,
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented, "{path}");
        assert!(status.message().contains(says), "{path}: {status:?}");
    }
}

#[tokio::test]
async fn a_request_to_a_grpc_method_that_is_not_grpc_is_refused_415() {
    let server = Server::start("").await;
    for (method, content_type) in [
        ("POST", Some("application/json")),
        ("GET", None),
        ("POST", Some("application/grpc-web+proto")),
        ("POST", Some("application/grpc-web-text")),
    ] {
        let mut request = http::Request::builder()
            .method(method)
            .uri(server.url("/espresso.filter.v1.Filter/Check"));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let body = http_body_util::Full::new(bytes::Bytes::from_static(b"{\"content\": \"x\"}"));
        let reply = server.send(request.body(body).unwrap()).await;
        assert_eq!(
            reply.error_code(http::StatusCode::UNSUPPORTED_MEDIA_TYPE),
            "unsupported_media_type",
            "{method} {content_type:?}"
        );
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        let web = content_type.is_some_and(|t| t.contains("web"));
        assert_eq!(message.contains("gRPC-Web is not served"), web, "{message}");
    }
}
