//! `[classifier]` and `[cache]`: the remote stages behind the word lists. A real gRPC
//! TextClassifier (the rule-based one the examples run) answers on a free port; when it is slow
//! or gone, answers keep coming with `degraded: true`.

use crate::harness::Server;
use espresso_filter_stages::classifier::rules::RuleClassifier;
use http::StatusCode;
use std::time::{Duration, Instant};

async fn classifier() -> (RuleClassifier, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let rules = RuleClassifier::default();
    tokio::spawn(rules.clone().serve(listener));
    (rules, endpoint)
}

fn config(endpoint: &str, extra: &str) -> String {
    format!("[classifier]\nendpoint = \"{endpoint}\"\ntimeout_ms = 200\n{extra}")
}

#[tokio::test]
async fn classifier_labels_map_to_verdicts() {
    let (rules, endpoint) = classifier().await;
    let server = Server::start(&config(
        &endpoint,
        "[classifier.labels]\nADVERTISEMENT = \"block\"\n",
    ))
    .await;
    let json = server.filter("Click here for a DISCOUNT").await.json();
    assert_eq!(json["verdict"], "block", "{json}");
    assert_eq!(json["degraded"], false);
    assert_eq!(json["hits"], serde_json::json!([]));
    // The request id travels to the classifier.
    let seen = rules.last_request().expect("the classifier was called");
    assert_eq!(seen.request_id, json["request_id"].as_str().unwrap());

    let json = server.filter("a quiet afternoon").await.json();
    assert_eq!(
        (json["verdict"].as_str(), json["degraded"].as_bool()),
        (Some("pass"), Some(false))
    );
}

#[tokio::test]
async fn a_cached_verdict_skips_the_classifier() {
    let (rules, endpoint) = classifier().await;
    let server = Server::start(&config(&endpoint, "")).await;
    server.filter("Click here for a DISCOUNT").await;
    let calls = rules.calls();
    let json = server.filter("Click here for a DISCOUNT").await.json();
    assert_eq!(json["verdict"], "review", "{json}");
    assert_eq!(rules.calls(), calls, "second answer came from the cache");
}

#[tokio::test]
async fn a_slow_classifier_degrades_within_the_timeout() {
    let (rules, endpoint) = classifier().await;
    rules.set_delay(Duration::from_secs(5));
    let server = Server::start(&config(&endpoint, "")).await;
    let started = Instant::now();
    let reply = server.filter("a badword and a DISCOUNT").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    // The local verdict still applies.
    assert_eq!(
        (json["verdict"].as_str(), json["degraded"].as_bool()),
        (Some("block"), Some(false))
    );
    let json = server.filter("just a DISCOUNT").await.json();
    assert_eq!(json["degraded"], true, "{json}");
    assert_eq!(json["verdict"], "pass");
}

#[tokio::test]
async fn a_missing_classifier_degrades_instead_of_failing() {
    // A port nobody listens on.
    let endpoint = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let server = Server::start(&config(&endpoint, "")).await;
    for _ in 0..10 {
        let reply = server.filter("hello spam").await;
        assert_eq!(reply.status, StatusCode::OK);
        let json = reply.json();
        assert_eq!(
            (json["verdict"].as_str(), json["degraded"].as_bool()),
            (Some("review"), Some(true))
        );
    }
    let degraded = r#"espresso_filter_verdicts_total{degraded="true",verdict="review"}"#;
    assert_eq!(server.metric(degraded).await, Some(10.0));
}
