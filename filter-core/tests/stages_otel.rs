//! With the `otel` feature the classifier stage forwards the caller's W3C trace context.
//!
//! The subscriber (an OpenTelemetry layer over an SDK tracer that exports nothing) is installed
//! for this thread only, and the runtime is single-threaded, so the stage runs under it.

use espresso_filter_core::stages::ClassifierLayer;
use espresso_filter_core::stages::classifier::rules::RuleClassifier;
use espresso_filter_core::{Engine, FilterRequest, FilterService, Verdict};
use opentelemetry::trace::TracerProvider as _;
use std::time::Duration;
use tower::{ServiceBuilder, ServiceExt};
use tracing::Instrument;
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

    // outside any span: nothing to forward
    let r = service
        .clone()
        .oneshot(FilterRequest::new("xxx"))
        .await
        .unwrap();
    assert_eq!(r.verdict, Verdict::Block);
    assert_eq!(rules.last_request().unwrap().traceparent, None);

    let span = tracing::info_span!("request");
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
    assert_eq!(parts[1].len(), 32);
    assert_ne!(parts[1], "0".repeat(32));
}
