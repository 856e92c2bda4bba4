//! Hostile and broken input: each case gets a sane answer and the server keeps serving.

use crate::harness::Server;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Duration;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Sends raw bytes on a fresh connection and returns everything the server answers before it
/// closes the connection or goes quiet for `quiet`.
async fn raw(server: &Server, bytes: &[u8], quiet: Duration) -> String {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(quiet, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// An HTTP/2 connection to the server (h2c), for gRPC requests with hand-made bodies.
async fn h2<B>(server: &Server) -> hyper::client::conn::http2::SendRequest<B>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

async fn still_serving(server: &Server) {
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn odd_but_valid_content_is_filtered() {
    let server = Server::start("").await;
    let nul = server
        .post_json("/v1/filter", r#"{"content": "a\u0000badword\u0000b"}"#)
        .await;
    assert_eq!(nul.status, StatusCode::OK);
    let empty = server.filter("").await;
    assert_eq!(empty.json()["verdict"], "pass");
    let big = "汉字与emoji😀 ".repeat(3000);
    let reply = server.filter(&big).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json()["masked"].as_str().unwrap().chars().count(),
        big.chars().count()
    );
    still_serving(&server).await;
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let server = Server::start_with("header_read_timeout_ms = 300", "").await;
    let started = std::time::Instant::now();
    // Half a request head, then silence: the server closes the connection by itself.
    let answer = raw(
        &server,
        b"POST /v1/filter HTTP/1.1\r\nhost: x\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "connection held open"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    still_serving(&server).await;
}

#[tokio::test]
async fn a_slow_body_gets_the_timeout_error() {
    let server = Server::start_with("request_timeout_ms = 300", "").await;
    // The head and half the body, then silence: the request timeout answers, as JSON.
    let answer = raw(
        &server,
        b"POST /v1/filter HTTP/1.1\r\nhost: x\r\nx-request-id: slow-1\r\n\
          content-type: application/json\r\ncontent-length: 40\r\n\r\n{\"content\": ",
        Duration::from_secs(3),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // the server closes the connection after it, and says so
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["error"]["code"], "request_timeout", "{json}");
    assert_eq!(json["request_id"], "slow-1", "{json}");

    // The same over gRPC: DEADLINE_EXCEEDED.
    let mut sender = h2(&server).await;
    // Five bytes of a frame header that promises 16, then nothing.
    let frame = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(
        hyper::body::Frame::data(Bytes::from_static(b"\x00\x00\x00\x00\x10")),
    )]);
    let body = http_body_util::StreamBody::new(futures_util::StreamExt::chain(
        frame,
        futures_util::stream::pending(),
    ));
    let request = Request::post(server.url("/espresso.filter.v1.Filter/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.headers()["grpc-status"], "4");
    still_serving(&server).await;
}

#[tokio::test]
async fn huge_and_broken_headers_do_not_hurt() {
    let server = Server::start("").await;
    // 100 KB of header.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-junk: {}\r\nconnection: close\r\n\r\n",
        "j".repeat(100 * 1024)
    );
    let answer = raw(&server, big.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    // A 10 KB request id is replaced, not echoed.
    let id = "i".repeat(10 * 1024);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-request-id: {id}\r\nconnection: close\r\n\r\n"
    );
    let answer = raw(&server, request.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.contains(&id[..200]));
    // A bare CR inside a header value is a protocol error: 400, never a header injection.
    let answer = raw(
        &server,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-request-id: a\rinjected: 1\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    assert!(!answer.to_ascii_lowercase().contains("injected"));
    // Garbage instead of HTTP.
    let answer = raw(
        &server,
        b"\x00\x01\x02 not http at all\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    still_serving(&server).await;
}

#[tokio::test]
async fn unknown_methods_get_json_errors() {
    let server = Server::start("").await;
    let answer = raw(
        &server,
        b"BREW /v1/filter HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(answer.contains("\"method_not_allowed\""), "{answer}");
    still_serving(&server).await;
}

#[tokio::test]
async fn malformed_grpc_frames_get_a_grpc_error() {
    let server = Server::start("").await;
    let mut sender = h2(&server).await;
    for body in [
        &b"\x00\x00\x00\x00\x05\x0a\x01"[..], // says 5 bytes, carries 2
        b"\x00\x00\x00\x00\x02\xff\xff",      // not a protobuf message
        b"\x07",                              // not even a frame header
    ] {
        let request = Request::post(server.url("/espresso.filter.v1.Filter/Check"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from_static(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let from_headers = response.headers().get("grpc-status").cloned();
        let collected = response.into_body().collect().await.unwrap();
        let status = from_headers
            .or_else(|| {
                collected
                    .trailers()
                    .and_then(|t| t.get("grpc-status").cloned())
            })
            .expect("a grpc-status");
        assert_ne!(status, "0", "{body:?} was accepted");
    }
    still_serving(&server).await;
}
