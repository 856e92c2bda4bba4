//! Connection-level limits, one test per attack of issue 22: each starts the server with short
//! timeouts (a few hundred milliseconds) and plays the attack with real sockets, then checks
//! that the connection closes within its timeout, the counter that says why, and that the
//! server keeps serving. The long runs with attack tools are `benches/attacks.sh`.

use crate::harness::Server;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::{Duration, Instant};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Reads until the server closes the connection (or `limit` passes): what it sent, how long
/// the close took, and whether the connection ended with a reset instead of a clean close.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (String, Duration, bool) {
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let reset = loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the connection stayed open {limit:?}; got {:?}",
                String::from_utf8_lossy(&answer)
            ),
            Ok(Ok(0)) => break false,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break true,
        }
    };
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
        reset,
    )
}

/// A port nothing listens on now, for `ops_listen`.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The value of `sample` in the `/metrics` text at `url`.
async fn scrape(url: &str, sample: &str) -> Option<f64> {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
}

fn timeouts(timeout: &str) -> String {
    format!(r#"espresso_connection_timeouts_total{{listener="public",timeout="{timeout}"}}"#)
}

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed_within_the_header_read_timeout() {
    let server = Server::start_with("header_read_timeout_ms = 300", "").await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let (answer, took, _) = read_to_close(&mut silent, Duration::from_secs(5)).await;
    assert!(answer.is_empty(), "{answer}");
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    // Half an HTTP/2 preface is no protocol yet: the same timeout.
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    read_to_close(&mut half, Duration::from_secs(5)).await;
    assert_eq!(server.metric(&timeouts("first_byte")).await, Some(1.0));
    assert_eq!(server.metric(&timeouts("header_read")).await, Some(1.0));
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_idle_http2_connection_that_answers_pings_is_closed_at_the_idle_timeout() {
    let server = Server::start_with("idle_timeout_ms = 500", "").await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    // hyper's client answers the server's pings and settings like any live client.
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = Request::get(server.url("/healthz"))
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap();
    let started = Instant::now();
    // The server says GOAWAY and closes: the client's connection ends cleanly.
    tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("the idle connection is closed")
        .unwrap()
        .expect("a clean GOAWAY, not an error");
    assert!(started.elapsed() >= Duration::from_millis(400));
    drop(sender);
    assert!(server.metric(&timeouts("idle")).await >= Some(1.0));
}

#[tokio::test]
async fn an_http1_keep_alive_connection_waits_the_idle_timeout_not_the_header_read_timeout() {
    let server =
        Server::start_with("header_read_timeout_ms = 300\nidle_timeout_ms = 1500", "").await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let get = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    for _ in 0..2 {
        stream.write_all(get).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        // Longer than the header-read timeout, shorter than the idle one: still open.
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let (_, took, reset) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(took <= Duration::from_millis(1500), "closed after {took:?}");
    assert!(!reset, "an idle connection is closed cleanly");
    assert_eq!(server.metric(&timeouts("idle")).await, Some(1.0));
}

#[tokio::test]
async fn a_stream_whose_client_opens_no_window_is_reset_after_the_send_timeout() {
    let server = Server::start_with("send_timeout_ms = 500", "").await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    // A client that reads nothing: its streams' flow-control windows are 0.
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(0)
        .handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let body = serde_json::json!({ "content": "badword ".repeat(500) }).to_string();
    let request = Request::post(server.url("/v1/filter"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "headers need no window");
    let started = Instant::now();
    let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
        .await
        .expect("the stream ends");
    assert!(body.is_err(), "the stream is reset, not finished");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(server.metric(&timeouts("send")).await, Some(1.0));
    // The connection itself still serves a client that reads.
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_request_head_over_max_header_bytes_is_answered_431() {
    let server = Server::start("").await;
    let big = "j".repeat(40 * 1024);
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-junk: {big}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let (answer, _, _) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // HTTP/2: the header list over the advertised limit.
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::get(server.url("/healthz"))
        .header("x-junk", big)
        .body(Full::<Bytes>::default())
        .unwrap();
    match sender.send_request(request).await {
        Ok(response) => assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        ),
        // The client may refuse to send over the server's advertised limit itself.
        Err(error) => assert!(format!("{error:?}").contains("header"), "{error:?}"),
    }
    // Just under the limit is fine.
    let request = Request::get(server.url("/healthz"))
        .header("x-junk", "j".repeat(30 * 1024))
        .body(Full::default())
        .unwrap();
    assert_eq!(server.send(request).await.status, StatusCode::OK);
}

#[tokio::test]
async fn past_max_connections_the_server_stops_accepting_until_one_closes() {
    let ops = free_port();
    let server = Server::start_with(
        &format!("max_connections = 2\nops_listen = \"127.0.0.1:{ops}\""),
        "",
    )
    .await;
    let first = TcpStream::connect(server.addr).await.unwrap();
    let _second = TcpStream::connect(server.addr).await.unwrap();
    // The third completes in the kernel's backlog, but nobody reads it.
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third
        .write_all(b"GET /v1/filter HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "answered past the limit");
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("accepted once a connection closed")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 405"));
    let metrics = format!("http://127.0.0.1:{ops}/metrics");
    let reached = r#"espresso_connections_limit_reached_total{listener="public"}"#;
    assert!(scrape(&metrics, reached).await >= Some(1.0));
    let max = r#"espresso_connections_max{listener="public"}"#;
    assert_eq!(scrape(&metrics, max).await, Some(2.0));
    // the log is read from the server's stderr on a thread of its own
    espresso_test_support::eventually(|| async {
        server
            .logs()
            .iter()
            .any(|line| line.contains("connection limit reached"))
    })
    .await;
}

/// Sends raw bytes and reads everything until the server closes the connection.
async fn exchange(server: &Server, request: &[u8]) -> (String, Duration, bool) {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_to_close(&mut stream, Duration::from_secs(5)).await
}

/// The JSON body of a raw HTTP/1.1 answer with a `content-length`.
fn json_of(answer: &str) -> serde_json::Value {
    let body = &answer[answer.find("\r\n\r\n").expect("a head") + 4..];
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[tokio::test]
async fn a_missing_duplicate_or_invalid_host_is_a_400_with_the_error_json() {
    let server = Server::start("").await;
    for head in [
        "GET /healthz HTTP/1.1\r\n",
        "GET /healthz HTTP/1.1\r\nhost: a\r\nhost: b\r\n",
        "GET /healthz HTTP/1.1\r\nhost: a b@c\r\n",
        "POST /v1/filter HTTP/1.1\r\nhost: x:port\r\n",
    ] {
        let request = format!("{head}x-request-id: host-1\r\nconnection: close\r\n\r\n");
        let (answer, _, _) = exchange(&server, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{head:?}: {answer}");
        let json = json_of(&answer);
        assert_eq!(json["error"]["code"], "invalid_host", "{json}");
        assert_eq!(json["request_id"], "host-1", "{json}");
    }
    // HTTP/1.0 may leave it out.
    let (answer, _, _) = exchange(&server, b"GET /healthz HTTP/1.0\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert_eq!(
        server
            .metric(r#"espresso_http_errors_total{code="invalid_host"}"#)
            .await,
        Some(4.0)
    );
}

#[tokio::test]
async fn a_body_announced_over_max_body_bytes_is_refused_at_once_without_100_continue() {
    let server = Server::start("").await;
    let started = Instant::now();
    let (answer, _, reset) = exchange(
        &server,
        b"POST /v1/filter HTTP/1.1\r\nhost: x\r\nx-request-id: big-1\r\n\
          content-type: application/json\r\ncontent-length: 1000000000\r\n\
          expect: 100-continue\r\n\r\n{\"content\": \"x\"}",
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(3), "not at once");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(!reset, "closed cleanly");
    let json = json_of(&answer);
    assert_eq!(json["error"]["code"], "payload_too_large");
    assert_eq!(json["request_id"], "big-1");
}

#[tokio::test]
async fn pipelined_requests_behind_a_429_end_in_a_clean_close_not_a_reset() {
    let server = Server::start("[rate_limit]\nper_second = 1\nburst = 1\n").await;
    // Bodies larger than the read buffer: hyper cannot skip the refused one's body.
    let body = serde_json::json!({ "content": "x".repeat(48 * 1024) }).to_string();
    let one = format!(
        "POST /v1/filter HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let pipelined = one.repeat(3);
    let connections: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.addr;
            let pipelined = pipelined.clone();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let (mut read, mut write) = stream.split();
                let writer = async {
                    // The server may close before it read everything: that is its right.
                    let _ = write.write_all(pipelined.as_bytes()).await;
                };
                let reader = async {
                    let mut answer = Vec::new();
                    let reset = read.read_to_end(&mut answer).await.is_err();
                    (String::from_utf8_lossy(&answer).into_owned(), reset)
                };
                let ((), (answer, reset)) = tokio::join!(writer, reader);
                (answer, reset)
            })
        })
        .collect();
    let mut refused = 0;
    for connection in connections {
        let (answer, reset) = connection.await.unwrap();
        assert!(!reset, "reset after {answer:?}");
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
        refused += answer.matches("HTTP/1.1 429").count();
    }
    assert!(refused >= 7, "{refused} refusals read");
}

#[tokio::test]
async fn an_answer_lists_at_most_max_hits_and_counts_the_rest() {
    let server = Server::start_with_filter("max_hits = 5").await;
    let content = "badword ".repeat(20);
    let reply = server.filter(&content).await.json();
    assert_eq!(reply["hits"].as_array().unwrap().len(), 5, "{reply}");
    assert_eq!(reply["hits_truncated"], 15);
    assert_eq!(reply["verdict"], "block");
    assert_eq!(
        reply["masked"].as_str().unwrap(),
        "******* ".repeat(20),
        "every hit is masked"
    );
    // Not truncated: no field, the answer as before.
    let reply = server.filter("badword spam").await.json();
    assert!(reply.get("hits_truncated").is_none(), "{reply}");
    assert_eq!(
        server.metric("espresso_filter_hits_truncated_total").await,
        Some(15.0)
    );
    // gRPC says the same.
    let mut client = espresso_server::pb::filter_client::FilterClient::new(server.channel().await);
    let reply = client
        .check(espresso_server::pb::CheckRequest {
            content,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reply.hits.len(), reply.hits_truncated), (5, 15));
}

#[tokio::test]
async fn an_answer_is_a_bounded_multiple_of_its_request() {
    // The amplification attack: 64 KB of a short listed word, repeated.
    let server = Server::start_with_filter("max_hits = 1000").await;
    let content = "badword ".repeat(8 * 1024 - 16);
    let request = serde_json::json!({ "content": content }).to_string();
    let reply = server.post_json("/v1/filter", request.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["hits_truncated"], 8 * 1024 - 16 - 1000);
    // The documented bound: the request + max_hits × (80 + word + category + list) + 200.
    let bound =
        request.len() + 1000 * (80 + "badword".len() + "abuse".len() + "danger".len()) + 200;
    assert!(reply.body.len() <= bound, "{} > {bound}", reply.body.len());
}

#[tokio::test]
async fn a_batch_shares_one_max_hits_so_its_answer_is_bounded_too() {
    // 100 items of short listed words: 100 × max_hits hits without a shared cap.
    let server = Server::start_with_filter("max_hits = 50").await;
    let content = "badword ".repeat(30);
    let items = vec![serde_json::json!({ "content": content }); 100];
    let request = serde_json::json!({ "items": items }).to_string();
    let reply = server.post_json("/v1/filter:batch", request.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    let results = json["results"].as_array().unwrap();
    // In order: the first item keeps 30, the second 20, the others none; all are blocked
    // and fully masked.
    let listed: Vec<usize> = results
        .iter()
        .map(|r| r["hits"].as_array().unwrap().len())
        .collect();
    assert_eq!(&listed[..3], [30, 20, 0]);
    assert_eq!(listed.iter().sum::<usize>(), 50);
    assert!(results[0].get("hits_truncated").is_none(), "{}", results[0]);
    assert_eq!(results[1]["hits_truncated"], 10);
    assert_eq!(results[99]["hits_truncated"], 30);
    for result in results {
        assert_eq!(result["verdict"], "block");
        assert_eq!(result["masked"].as_str().unwrap(), "******* ".repeat(30));
    }
    assert_eq!(
        server.metric("espresso_filter_hits_truncated_total").await,
        Some((100 * 30 - 50) as f64)
    );
    // The documented bound: the request + max_hits × (80 + word + category + list) + 200 an item.
    let hits = 50 * (80 + "badword".len() + "abuse".len() + "danger".len());
    let bound = request.len() + hits + 200 * 100;
    assert!(reply.body.len() <= bound, "{} > {bound}", reply.body.len());
    // gRPC's CheckBatch shares it alike.
    let mut client = espresso_server::pb::filter_client::FilterClient::new(server.channel().await);
    let item = espresso_server::pb::CheckRequest {
        content,
        ..Default::default()
    };
    let reply = client
        .check_batch(espresso_server::pb::CheckBatchRequest {
            items: vec![item; 3],
        })
        .await
        .unwrap()
        .into_inner();
    let cut: Vec<_> = reply
        .results
        .iter()
        .map(|r| (r.hits.len(), r.hits_truncated))
        .collect();
    assert_eq!(cut, [(30, 0), (20, 10), (0, 30)]);
}

#[tokio::test]
async fn large_texts_take_turns_in_the_large_lane_and_every_one_is_answered() {
    // One turn for texts of 1 KiB or more: twenty at once queue and are all answered, short
    // texts beside them too.
    let server =
        Server::start_with_filter("large_content_bytes = 1024\nlarge_max_in_flight = 1").await;
    let large = "badword ".repeat(512);
    let calls = (0..20).map(|i| {
        let content = if i % 2 == 0 {
            large.clone()
        } else {
            "badword spam".to_owned()
        };
        let server = &server;
        async move { (content.len(), server.filter(&content).await.json()) }
    });
    for (len, reply) in futures_util::future::join_all(calls).await {
        assert_eq!(reply["verdict"], "block", "{len} bytes: {reply}");
        assert_eq!(reply["masked"].as_str().unwrap().len(), len);
    }
}

#[tokio::test]
async fn with_an_operator_port_the_public_port_serves_the_api_only() {
    let ops = free_port();
    let server = Server::start_with(&format!("ops_listen = \"127.0.0.1:{ops}\""), "").await;
    for path in ["/metrics", "/healthz", "/readyz", "/debug/dashboard"] {
        assert_eq!(
            server.get(path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(server.filter("badword").await.status, StatusCode::OK);
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    for (path, status) in [
        ("/metrics", StatusCode::OK),
        ("/healthz", StatusCode::OK),
        ("/readyz", StatusCode::OK),
        ("/debug/dashboard", StatusCode::OK),
        ("/v1/filter", StatusCode::NOT_FOUND),
    ] {
        let url = format!("http://127.0.0.1:{ops}{path}");
        let response = client.get(url.parse().unwrap()).await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert!(response.headers().contains_key("x-request-id"));
    }
    let ops_open = r#"espresso_connections_open{listener="ops"}"#;
    let metrics = format!("http://127.0.0.1:{ops}/metrics");
    assert!(scrape(&metrics, ops_open).await >= Some(1.0));
}
