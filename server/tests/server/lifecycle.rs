//! Health, readiness, metrics, hot reload and graceful shutdown.

use crate::harness::{self, DANGER, Server, write_atomically};
use espresso_test_support::eventually;
use http::StatusCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = Server::start("").await;
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(server.get("/readyz").await.status, StatusCode::OK);
    server.filter("a badword").await;
    server.filter("fine").await;
    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let block = r#"espresso_filter_verdicts_total{degraded="false",verdict="block"}"#;
    assert_eq!(server.metric(block).await, Some(1.0));
    let pass = r#"espresso_filter_verdicts_total{degraded="false",verdict="pass"}"#;
    assert_eq!(server.metric(pass).await, Some(1.0));
}

#[tokio::test]
async fn word_list_changes_apply_without_restart() {
    let server = Server::start("").await;
    assert_eq!(
        server.filter("new evil here").await.json()["verdict"],
        "pass"
    );
    write_atomically(&server.path("words/danger.txt"), format!("{DANGER}evil\n"));
    eventually(|| async { server.filter("new evil here").await.json()["verdict"] == "block" })
        .await;
    let applied = r#"espresso_config_reloads_total{result="applied"}"#;
    assert_eq!(server.metric(applied).await, Some(1.0));
}

#[tokio::test]
async fn list_entries_that_cannot_be_as_written_are_logged_and_the_rest_applies() {
    let server = Server::start("").await;
    write_atomically(
        &server.path("words/danger.txt"),
        format!("{DANGER}evil\n🙂\nBADWORD\tslur\n"),
    );
    eventually(|| async { server.filter("new evil here").await.json()["verdict"] == "block" })
        .await;
    let logs = server.logs();
    let warned = |needle: &str| {
        logs.iter()
            .any(|l| l.contains("WARN") && l.contains("word lists: ") && l.contains(needle))
    };
    assert!(
        warned("danger.txt:5: `🙂` normalizes to nothing"),
        "{logs:#?}"
    );
    assert!(
        warned(
            "danger.txt:6: `BADWORD` is already in list `danger` as `badword` with category `abuse`"
        ),
        "{logs:#?}"
    );
    let hit = &server.filter("a BADWORD").await.json()["hits"][0];
    assert_eq!(hit["category"], "abuse");
}

#[tokio::test]
async fn sighup_applies_changes_at_once_with_polling_off() {
    let config =
        harness::config("", "").replace("reload_interval_ms = 100", "reload_interval_ms = 0");
    let server = Server::start_in(harness::folder(&config)).await;
    write_atomically(&server.path("words/danger.txt"), format!("{DANGER}evil\n"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.filter("new evil here").await.json()["verdict"],
        "pass"
    );
    server.signal("HUP");
    eventually(|| async { server.filter("new evil here").await.json()["verdict"] == "block" })
        .await;
    // and the process lives on
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_invalid_change_keeps_the_running_config() {
    let server = Server::start("").await;
    let config = server.path("espresso.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    write_atomically(&config, format!("{good}\n[rate_limit]\nburst = \"lots\"\n"));
    let invalid = r#"espresso_config_reloads_total{result="invalid"}"#;
    eventually(|| async { server.metric(invalid).await == Some(1.0) }).await;
    // Still serving with the old lists.
    assert_eq!(server.filter("a badword").await.json()["verdict"], "block");

    // A list file that disappears is invalid too, and changes nothing.
    write_atomically(&config, &good);
    std::fs::remove_file(server.path("words/normal.txt")).unwrap();
    eventually(|| async { server.metric(invalid).await == Some(2.0) }).await;
    assert_eq!(server.filter("buy spam").await.json()["verdict"], "review");
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight() {
    let mut server = Server::start("").await;
    let body = br#"{"content": "a badword in flight"}"#;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // A first, whole request proves the connection is being served.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 512];
    let n = stream.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    // Then a request whose body is not fully sent: it is in flight when SIGTERM lands.
    let head = format!(
        "POST /v1/filter HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    // Let the server read the head before the signal (ordering only, nothing is timed).
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.terminate();
    // New connections are refused while the old request is still served.
    eventually(|| async { tokio::net::TcpStream::connect(server.addr).await.is_err() }).await;

    stream.write_all(&body[10..]).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"verdict\":\"block\""), "{response}");
    assert!(server.wait().await, "clean exit");
}

#[tokio::test]
async fn sigterm_the_moment_the_server_listens_is_a_clean_exit() {
    // The signals are caught before the listener opens: a signal that lands while the server
    // starts serving is a graceful shutdown, not the process killed under its first requests.
    let mut server = Server::start("").await;
    server.terminate();
    assert!(server.wait().await, "clean exit");
}

#[tokio::test]
async fn a_shutdown_delay_turns_away_new_work_before_closing() {
    let mut server = Server::start_with("shutdown_delay_ms = 1500", "").await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut ask = async |request: &[u8]| {
        stream.write_all(request).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = stream.read(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer[..n]).to_lowercase()
    };
    let before = ask(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(before.starts_with("http/1.1 200") && !before.contains("connection: close"));

    server.terminate();
    // Not ready any more, but still serving, for the delay.
    eventually(|| async { server.get("/readyz").await.status == StatusCode::SERVICE_UNAVAILABLE })
        .await;
    assert_eq!(server.filter("still served").await.status, StatusCode::OK);
    // A keep-alive connection gets its answer, and is told to go.
    let during = ask(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(during.starts_with("http/1.1 200"), "{during}");
    assert!(during.contains("connection: close"), "{during}");
    // Then the listener closes and the process exits cleanly.
    eventually(|| async { tokio::net::TcpStream::connect(server.addr).await.is_err() }).await;
    assert!(server.wait().await, "clean exit");
}

#[tokio::test]
async fn slow_calls_are_logged_with_their_tree_and_measured() {
    // With a zero threshold every request is slow; the tree shows the remote stages.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let rules = espresso_filter_stages::classifier::rules::RuleClassifier::default();
    tokio::spawn(rules.serve(listener));
    let server = Server::start(&format!(
        "[slow_call]\nthreshold_ms = 0\n[classifier]\nendpoint = \"{endpoint}\"\ntimeout_ms = 2000\n"
    ))
    .await;
    let reply = server.filter("a plain line").await;
    let id = reply.request_id().to_owned();
    eventually(|| async {
        server.logs().iter().any(|l| {
            l.contains("slow call")
                && l.contains(&id)
                && l.contains("tree=\"cache ")
                && l.contains("classifier ")
        })
    })
    .await;
    let count = r#"http_server_request_duration_seconds_count{method="POST",route="/v1/filter",status="200"}"#;
    assert_eq!(server.metric(count).await, Some(1.0));
}
