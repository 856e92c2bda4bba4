//! With the `otel` feature the classifier stage forwards its span's W3C trace context: the
//! caller's trace when there is a caller span.
//!
//! The subscriber (an OpenTelemetry layer over an SDK tracer that exports nothing) is installed
//! for this thread only, and the runtime is single-threaded, so the stage runs under it.

use espresso_filter_core::{Engine, FilterRequest, FilterService, Verdict};
use espresso_filter_stages::ClassifierLayer;
use espresso_filter_stages::classifier::rules::RuleClassifier;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use std::time::Duration;
use tower::{ServiceBuilder, ServiceExt};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::prelude::*;

#[tokio::test(flavor = "current_thread")]
async fn the_trace_context_reaches_the_classifier() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("stages-test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let rules = RuleClassifier::default();
    tokio::spawn(rules.clone().serve(listener));
    let service = ServiceBuilder::new()
        .layer(
            ClassifierLayer::lazy(&endpoint)
                .unwrap()
                .timeout(Duration::from_secs(1)),
        )
        .service(FilterService::new(Engine::builtin()));

    // Outside any span the stage's own span starts a trace of its own.
    let r = service
        .clone()
        .oneshot(FilterRequest::new("xxx"))
        .await
        .unwrap();
    assert_eq!(r.verdict, Verdict::Block);
    let alone = rules.last_request().unwrap().traceparent;
    let alone = alone.expect("the stage's span is forwarded");

    // Inside a caller's span the classifier joins the caller's trace.
    let span = tracing::info_span!("request");
    let trace_id = span.context().span().span_context().trace_id().to_string();
    let r = service
        .oneshot(FilterRequest::new("xxx"))
        .instrument(span)
        .await
        .unwrap();
    assert!(!r.degraded);
    let traceparent = rules.last_request().unwrap().traceparent.unwrap();
    // version-traceid-spanid-flags
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], trace_id, "the caller's trace");
    assert_ne!(alone.split('-').nth(1), Some(trace_id.as_str()));
}
