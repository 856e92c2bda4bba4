//! The slow-call WARN line as a log reader sees it: formatted by `tracing_subscriber::fmt`
//! behind the request-id layer, the request id appears once.

mod support;

use bytes::Bytes;
use espresso_request_id::RequestIdLayer;
use espresso_slow_call::{SlowCallLayer, SlowCallRecorder};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use std::{convert::Infallible, time::Duration};
use support::Lines;
use tokio::time::sleep;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tracing::instrument;
use tracing_subscriber::prelude::*;

#[instrument]
async fn classifier() {
    sleep(Duration::from_millis(30)).await;
}

/// Sends one slow request through `request_id` then the slow-call layer and returns the log.
async fn slow_line(request_id: RequestIdLayer) -> String {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::registry()
        .with(SlowCallRecorder::new())
        .with(lines.fmt_layer());
    let _guard = tracing::subscriber::set_default(subscriber);
    let service = ServiceBuilder::new()
        .layer(request_id)
        .layer(SlowCallLayer::new(Duration::from_millis(10)).route("/v1/filter"))
        .service(service_fn(|_: Request<Full<Bytes>>| async {
            classifier().await;
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::from("ok")))
        }));
    let request = Request::post("/v1/filter")
        .header("x-request-id", "req-7f3a")
        .body(Full::default())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
    lines.text()
}

#[tokio::test(start_paused = true)]
async fn behind_the_request_id_span_the_line_names_the_id_once() {
    let log = slow_line(RequestIdLayer::new()).await;
    let line = log
        .lines()
        .map(str::trim_start)
        .find(|l| l.contains("slow call"))
        .expect("a slow-call line");
    assert_eq!(line.matches("req-7f3a").count(), 1, "{line}");
    assert_eq!(
        line,
        "WARN request{request_id=req-7f3a}:request{method=POST path=\"/v1/filter\" \
         route=\"/v1/filter\"}: espresso_slow_call: slow call: POST /v1/filter took 30.0ms \
         status=\"200\" duration_ms=30.0 threshold_ms=10.0 cancelled=false \
         tree=\"classifier 30.0ms (busy 0µs)\""
    );
}

#[tokio::test(start_paused = true)]
async fn without_the_request_id_span_the_root_span_names_the_id_once() {
    let log = slow_line(RequestIdLayer::new().without_span()).await;
    let line = log
        .lines()
        .map(str::trim_start)
        .find(|l| l.contains("slow call"))
        .expect("a slow-call line");
    assert_eq!(line.matches("req-7f3a").count(), 1, "{line}");
    assert!(
        line.starts_with(
            "WARN request{method=POST path=\"/v1/filter\" route=\"/v1/filter\" \
             request_id=req-7f3a}: espresso_slow_call: slow call:"
        ),
        "{line}"
    );
}
