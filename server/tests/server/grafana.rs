//! `examples/grafana/espresso.json` only queries metrics the server really exports: every
//! metric name in its panels must appear in a scrape of `/metrics` after traffic that touches
//! every stage.

use crate::harness::Server;
use std::collections::BTreeSet;

/// Metric names in a PromQL expression: identifiers with an underscore that are not functions,
/// label names or Grafana variables.
fn metric_names(expr: &str) -> Vec<String> {
    const FUNCTIONS: [&str; 1] = ["histogram_quantile"];
    let mut names = Vec::new();
    let mut token = String::new();
    let mut previous = ' ';
    for c in expr.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            token.push(c);
            continue;
        }
        let variable = previous == '$';
        let metric = !token.is_empty() && token.contains('_') && !token.starts_with('_');
        if metric && !variable && !FUNCTIONS.contains(&token.as_str()) {
            names.push(token.clone());
        }
        previous = c;
        token.clear();
    }
    names
}

#[test]
fn metric_names_are_found_in_promql() {
    let names = metric_names(
        "histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{job=~\"$job\"}[$__rate_interval])))",
    );
    assert_eq!(names, ["http_server_request_duration_seconds_bucket"]);
}

/// Every PromQL expression of the shipped dashboard's panels.
fn dashboard_queries() -> Vec<String> {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/grafana/espresso.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap().iter())
        .map(|target| target["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 10, "{} queries", exprs.len());
    exprs
}

/// A server with a classifier nobody answers (its stage, breaker and metrics exist), every
/// request slow.
async fn server_with_a_classifier() -> Server {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    Server::start(&format!(
        "[classifier]\nendpoint = \"{endpoint}\"\n[slow_call]\nthreshold_ms = 0\n"
    ))
    .await
}

/// The metric names the dashboard queries that a scrape of `server` lacks.
async fn missing_from_scrape(server: &Server) -> (Vec<String>, String) {
    let scrape = String::from_utf8(server.get("/metrics").await.body.to_vec()).unwrap();
    let exported: BTreeSet<&str> = scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let missing = dashboard_queries()
        .iter()
        .flat_map(|expr| metric_names(expr))
        .filter(|name| !exported.contains(name.as_str()))
        .collect();
    (missing, scrape)
}

#[tokio::test]
async fn every_dashboard_query_names_an_exported_metric() {
    let server = server_with_a_classifier().await;
    server.touch_every_counter().await;

    let (missing, scrape) = missing_from_scrape(&server).await;
    assert!(missing.is_empty(), "not exported: {missing:?}\n{scrape}");
}

#[tokio::test]
async fn a_fresh_server_exports_every_family_the_dashboard_queries_before_any_request() {
    let server = server_with_a_classifier().await;
    // The scrape itself is the first request: what it shows was there before it.
    let (missing, scrape) = missing_from_scrape(&server).await;
    assert!(missing.is_empty(), "not exported: {missing:?}\n{scrape}");
    // the success series of every check route, single and batch, HTTP and gRPC
    for (method, route, status) in [
        ("POST", "/v1/filter", "200"),
        ("POST", "/v1/filter:batch", "200"),
        ("POST", "/espresso.filter.v1.Filter/Check", "OK"),
        ("POST", "/espresso.filter.v1.Filter/CheckBatch", "OK"),
    ] {
        let series = format!(
            "http_server_request_duration_seconds_count{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} 0"
        );
        assert!(scrape.contains(&series), "{series} missing from\n{scrape}");
    }
}
