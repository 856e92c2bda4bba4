//! Every error the API documents: status, JSON shape, request id.

use crate::harness::Server;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;

#[tokio::test]
async fn bad_bodies_are_400_with_a_code() {
    let server = Server::start("").await;
    for (body, code) in [
        (&b"{not json"[..], "invalid_json"),
        (b"[\"content\"]", "invalid_json"),
        (b"{\"text\": \"hi\"}", "missing_content"),
        (b"{\"content\": 42}", "invalid_content"),
        (b"{\"content\": null}", "invalid_content"),
        (b"{\"content\": \"\xff\xfe\"}", "invalid_utf8"),
        (b"", "invalid_json"),
    ] {
        let reply = server
            .post_json("/v1/filter", Bytes::from_static(body))
            .await;
        assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), code, "{body:?}");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let server = Server::start_with("max_body_bytes = 1024", "").await;
    let content = "a".repeat(2000);
    let reply = server.filter(&content).await;
    assert_eq!(
        reply.error_code(StatusCode::PAYLOAD_TOO_LARGE),
        "payload_too_large"
    );
    // Just under the limit is fine.
    let reply = server.filter(&"a".repeat(900)).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn non_json_bodies_are_415() {
    let server = Server::start("").await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = Request::post(server.url("/v1/filter"));
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let request = request.body(Full::new(Bytes::from_static(b"{\"content\":\"x\"}")));
        let reply = server.send(request.unwrap()).await;
        assert_eq!(
            reply.error_code(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            "unsupported_media_type"
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let server = Server::start("").await;
    let reply = server.get("/nope").await;
    assert_eq!(reply.error_code(StatusCode::NOT_FOUND), "not_found");
    let reply = server.get("/v1/filter").await;
    assert_eq!(
        reply.error_code(StatusCode::METHOD_NOT_ALLOWED),
        "method_not_allowed"
    );
}

#[tokio::test]
async fn incoming_request_ids_are_kept_when_valid_and_replaced_when_not() {
    let server = Server::start("").await;
    let request = |id: &'static str| {
        Request::post(server.url("/v1/filter"))
            .header("content-type", "application/json")
            .header("x-request-id", id)
            .body(Full::new(Bytes::from_static(b"{\"content\":\"hi\"}")))
            .unwrap()
    };
    let reply = server.send(request("client-42")).await;
    assert_eq!(reply.request_id(), "client-42");
    assert_eq!(reply.json()["request_id"], "client-42");

    let long: &'static str = "x".repeat(500).leak();
    for bad in [long, "has space", "semi;colon"] {
        let reply = server.send(request(bad)).await;
        assert_ne!(reply.request_id(), bad);
        assert!(!reply.request_id().is_empty());
        assert_eq!(reply.json()["request_id"], reply.request_id());
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let server = Server::start("").await;
    for path in ["/healthz", "/readyz", "/metrics", "/missing"] {
        let reply = server.get(path).await;
        assert!(!reply.request_id().is_empty(), "{path}");
    }
}
