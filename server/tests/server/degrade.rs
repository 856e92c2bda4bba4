//! `[degrade]`: under overload, or while forced, filter requests are answered from the word
//! lists alone with `degraded: true`; probes and metrics are never shed.

use crate::harness::{Server, write_atomically};
use espresso_filter_stages::classifier::rules::RuleClassifier;
use espresso_server::pb::{CheckRequest, filter_client::FilterClient};
use http::StatusCode;
use std::time::Duration;

#[tokio::test]
async fn forced_degradation_answers_locally_and_flips_on_reload() {
    let server = Server::start("[degrade]\nforce = true\n").await;
    let json = server.filter("a badword").await.json();
    assert_eq!(
        (json["verdict"].as_str(), json["degraded"].as_bool()),
        (Some("block"), Some(true))
    );
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(server.get("/metrics").await.status, StatusCode::OK);

    let channel = tonic::transport::Channel::from_shared(server.url(""))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let reply = FilterClient::new(channel)
        .check(CheckRequest {
            content: "spam".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.degraded);
    assert_eq!(reply.verdict, "review");

    let config = server.path("espresso.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    write_atomically(&config, text.replace("force = true", "force = false"));
    for _ in 0..100 {
        if server.filter("fine").await.json()["degraded"] == false {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the switch never flipped back");
}

#[tokio::test]
async fn requests_over_the_limit_skip_the_remote_stages() {
    // The classifier takes 3 s of a 5 s budget: with one slot and no queue, the other requests
    // must not wait for it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let rules = RuleClassifier::default();
    rules.set_delay(Duration::from_secs(3));
    tokio::spawn(rules.clone().serve(listener));
    let server = Server::start(&format!(
        "[classifier]\nendpoint = \"{endpoint}\"\ntimeout_ms = 5000\n\
         [degrade]\nlimit = \"fixed\"\nmin_limit = 1\nmax_limit = 1\nqueue = 0\n"
    ))
    .await;
    let server = std::sync::Arc::new(server);
    let slow = tokio::spawn({
        let server = server.clone();
        async move { server.filter("first in").await.json() }
    });
    // Wait until the first request holds the only slot (the classifier has seen it).
    for _ in 0..100 {
        if rules.calls() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let json = server.filter("buy spam").await.json();
        assert_eq!(
            (json["verdict"].as_str(), json["degraded"].as_bool()),
            (Some("review"), Some(true))
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shed requests waited"
    );
    let first = slow.await.unwrap();
    assert_eq!(first["degraded"], false, "{first}");
    let shed = r#"espresso_filter_verdicts_total{degraded="true",verdict="review"}"#;
    assert_eq!(server.metric(shed).await, Some(5.0));
}
