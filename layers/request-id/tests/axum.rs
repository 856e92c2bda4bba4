//! Real round trips through an axum 0.8 `Router` served on 127.0.0.1, with a hyper client and,
//! for bytes no well-behaved client would send, a raw TCP socket.

use axum::{Extension, Router, http::StatusCode, routing::get};
use bytes::Bytes;
use espresso_request_id::{RequestId, RequestIdLayer, current, scope};
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::net::SocketAddr;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Handlers report the id three ways: the extension, `current()`, and `current()` in a task
/// spawned with the id forwarded.
async fn report(Extension(id): Extension<RequestId>) -> String {
    let spawned = tokio::spawn(scope(id.clone(), async { current() }))
        .await
        .unwrap();
    format!(
        "{} {} {}",
        id,
        current().map(|c| c.to_string()).unwrap_or_default(),
        spawned.map(|c| c.to_string()).unwrap_or_default()
    )
}

async fn fail() -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn serve() -> SocketAddr {
    let app = Router::new()
        .route("/id", get(report))
        .route("/fail", get(fail))
        .layer(RequestIdLayer::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn get_with(addr: SocketAddr, path: &str, id: Option<HeaderValue>) -> (Response<()>, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut request = Request::get(format!("http://{addr}{path}"))
        .body(Empty::new())
        .unwrap();
    if let Some(id) = id {
        request.headers_mut().insert("x-request-id", id);
    }
    let (parts, body) = client.request(request).await.unwrap().into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, ()),
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn header(response: &Response<()>) -> &str {
    response.headers()["x-request-id"].to_str().unwrap()
}

#[tokio::test]
async fn generated_id_reaches_the_handler_and_the_client() {
    let addr = serve().await;
    let (response, body) = get_with(addr, "/id", None).await;
    let id = header(&response);
    assert_eq!(id.len(), 36);
    // Extension, current() in the handler, and current() in a forwarded spawned task agree.
    assert_eq!(body, format!("{id} {id} {id}"));
}

#[tokio::test]
async fn valid_incoming_id_is_kept() {
    let addr = serve().await;
    let (response, body) = get_with(addr, "/id", Some(HeaderValue::from_static("client-7"))).await;
    assert_eq!(header(&response), "client-7");
    assert_eq!(body, "client-7 client-7 client-7");
}

#[tokio::test]
async fn invalid_incoming_ids_are_replaced() {
    let addr = serve().await;
    for bad in [
        HeaderValue::from_bytes("ünïcode".as_bytes()).unwrap(),
        HeaderValue::from_bytes(b"a\tb").unwrap(),
        HeaderValue::from_static(""),
        HeaderValue::from_str(&"z".repeat(129)).unwrap(),
    ] {
        let (response, body) = get_with(addr, "/id", Some(bad.clone())).await;
        let id = header(&response);
        assert_ne!(id.as_bytes(), bad.as_bytes());
        assert_eq!(id.len(), 36, "{bad:?}");
        assert_eq!(body, format!("{id} {id} {id}"));
    }
}

#[tokio::test]
async fn error_responses_carry_the_id() {
    let addr = serve().await;
    let (response, _) = get_with(addr, "/fail", Some(HeaderValue::from_static("e-500"))).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(header(&response), "e-500");
    // The router's own 404 goes through the layer too.
    let (response, _) = get_with(addr, "/missing", Some(HeaderValue::from_static("e-404"))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&response), "e-404");
}

/// Sends raw bytes and returns the raw response head.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    text.split("\r\n\r\n").next().unwrap().to_owned()
}

fn raw_header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

#[tokio::test]
async fn raw_control_bytes_never_come_back() {
    let addr = serve().await;

    // CR/LF injection: the "id" ends at CRLF, the rest is a separate header the id never absorbs.
    let head = raw(
        addr,
        b"GET /id HTTP/1.1\r\nhost: x\r\nx-request-id: abc\r\nx-injected: 1\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(raw_header(&head, "x-request-id"), Some("abc"));
    assert_eq!(raw_header(&head, "x-injected"), None);

    // Bytes hyper accepts in a header value but the layer must not: a tab and obs-text bytes (0x80-0xFF).
    let head = raw(
        addr,
        b"GET /id HTTP/1.1\r\nhost: x\r\nx-request-id: a\tb\xff\xfe\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let id = raw_header(&head, "x-request-id").unwrap();
    assert_eq!(id.len(), 36, "{head}");

    // A bare CR or a NUL inside the value: hyper refuses the request before it reaches the layer,
    // so nothing is echoed.
    for bad in [&b"a\rb"[..], b"a\0b"] {
        let mut request = b"GET /id HTTP/1.1\r\nhost: x\r\nx-request-id: ".to_vec();
        request.extend_from_slice(bad);
        request.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
        let head = raw(addr, &request).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{head:?}");
        assert!(!head.contains("a\rb") && !head.contains('\0'), "{head:?}");
    }
}
