//! Slow-call traces, latency metrics and OpenTelemetry export, as a Tower layer.
//!
//! [`SlowCallLayer`] times every request until its response body ends. When a request is slower
//! than its threshold (global, per route, or per gRPC method), it emits one WARN event, target
//! `espresso_slow_call`, with the status, duration, threshold and the tree of the `tracing` spans
//! the request opened, with their durations. The event sits in the request's root span, which
//! names the method, path and route, and the request id unless the request-id layer's span
//! around it already does: the id appears once. Behind `RequestIdLayer` and
//! `tracing_subscriber::fmt`:
//!
//! ```text
//! WARN request{request_id=7f3a…}:request{method=POST path="/v1/filter" route="/v1/filter"}:
//!   espresso_slow_call: slow call: POST /v1/filter took 312.4ms status="200" duration_ms=312.4
//!   threshold_ms=200.0 cancelled=false
//!   tree="handler 312.1ms (busy 1.2ms) > [cache 3.0ms (busy 0µs), classifier 308.0ms (busy 0µs)]"
//! ```
//!
//! Before, the line repeated the id in the event and in both spans
//! (`request{request_id=7f3a…}:request{… request_id="7f3a…"}: … request_id="7f3a…" method=…`).
//! When no layer wants the root span (see [`SlowCallRecorder::filtered`]), the event carries
//! `request_id`, `method`, `route` and `path` itself.
//!
//! A gRPC stream is timed until its body ends, so a watch stream held open for minutes is a
//! slow call, logged when it ends, and lands in the histogram's `+Inf` bucket. Give such
//! methods a threshold of their own, `Duration::MAX` to never log them
//! (`.route_threshold("/pkg.Service/Watch", Duration::MAX)`); they stay in the histogram
//! under their own `route` label.
//!
//! `#[tracing::instrument]` on a function puts it in the tree: its span opens when the function
//! is entered and closes when it returns, and so does a call to another service wrapped in a
//! span (`client.call(request).instrument(tracing::info_span!("downstream"))`, or tower-http's
//! `TraceLayer` on the client). The layer itself times served requests: it belongs on a server,
//! where its histogram counts requests served, not on a client. The tree is recorded by [`SlowCallRecorder`], a
//! `tracing_subscriber::Layer` added to the server's subscriber: it keeps each span's name,
//! parent, start, busy and total time in storage owned by the request, and the layer renders it
//! only for slow requests (a tail decision: fast requests throw their records away).
//!
//! ```
//! use espresso_slow_call::{SlowCallLayer, SlowCallRecorder};
//! use http::{Request, Response};
//! use std::{convert::Infallible, time::Duration};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tracing_subscriber::prelude::*;
//!
//! #[tracing::instrument]
//! async fn classify(text: &str) -> bool {
//!     text.contains("spam")
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! tracing_subscriber::registry()
//!     .with(SlowCallRecorder::new())
//!     .with(tracing_subscriber::fmt::layer())
//!     .init();
//!
//! let service = ServiceBuilder::new()
//!     .layer(
//!         SlowCallLayer::new(Duration::from_millis(200))
//!             .route_threshold("/v1/filter", Duration::from_millis(50)),
//!     )
//!     .service_fn(|req: Request<String>| async move {
//!         let spam = classify(req.body()).await;
//!         Ok::<_, Infallible>(Response::new(format!("spam: {spam}")))
//!     });
//!
//! let response = service.oneshot(Request::new("hello".to_owned())).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```
//!
//! # What is timed
//!
//! From the moment the request enters the layer to the end of the response body: its last frame,
//! its trailers, or an error. A request whose future or body is dropped first (the client went
//! away) is still counted, with status `cancelled`, and logged as such if it was slow.
//!
//! # The root span
//!
//! Each request gets a root span (target `espresso_slow_call`, name `request`) with the fields
//! `method`, `path`, `route`, `request_id` (read from [`espresso_common::RequestId`] in the
//! request extensions, set by the request-id layer, which must run outside this one (an answer
//! that carries `x-request-id` for a request that came without the id logs one WARN saying so);
//! left empty
//! when the span the request arrives in already declares `request_id`, as the request-id layer's
//! own span does) and `trace_id` (with the `otel` feature). The response future and the body are polled inside it,
//! so log lines and exported spans carry the request's context. The call tree does not need it:
//! spans opened while the request is polled become the tree's top-level spans. Behind
//! [`SlowCallRecorder::filtered`], a request whose root span no other layer wants skips creating
//! it, which is most of the layer's cost per request. A filter in front of every layer that drops
//! it, with every other INFO span of its target, is reported once, at the first request, by a
//! WARN naming the fix (see [Filtering](SlowCallRecorder#filtering)).
//!
//! # gRPC
//!
//! gRPC requests (content type `application/grpc*`) work as HTTP ones; their status is the
//! `grpc-status` from the response headers or, usually, the trailers when the body ends. Give a
//! method its own threshold with its path: `.route_threshold("/pkg.Service/Method", ..)`. Declare
//! the methods to label them: `.route("/pkg.Service/Method")` for one, `.route("/pkg.Service")`
//! for all of a service's under one label. An undeclared method is `route="unmatched"`, in the
//! line and the metrics: paths come from clients, so only declared ones become labels.
//!
//! # Metrics
//!
//! With the default feature `metrics`, see [`SlowCallMetrics`]: register them once with
//! [`SlowCallMetrics::register`], then hand them to [`SlowCallLayer::metrics`]. Without the
//! feature the crate does not depend on `prometheus`. Route labels come from the routes the layer knows
//! ([`SlowCallLayer::route`], [`SlowCallLayer::route_threshold`], [`SlowCallLayer::route_label`]);
//! any other path is labelled [`UNMATCHED_ROUTE`], or, with feature `axum` behind axum's router,
//! the route the router matched (`/users/{id}`; a route of the layer's still wins).
//!
//! # OpenTelemetry (feature `otel`)
//!
//! The `otel` module extracts W3C `traceparent` from incoming requests onto the root span,
//! injects it into outgoing requests, and exports spans over OTLP when the standard
//! `OTEL_EXPORTER_OTLP_*` variables say where (nothing is exported otherwise).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod call;
mod future;
mod layer;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "otel")]
pub mod otel;
mod policy;
mod recorder;
mod service;
mod tree;

pub use body::SlowCallBody;
pub use future::ResponseFuture;
pub use layer::{DEFAULT_MAX_SPANS, SlowCallLayer};
#[cfg(feature = "metrics")]
pub use metrics::{DEFAULT_BUCKETS, SlowCallMetrics};
pub use policy::UNMATCHED_ROUTE;
pub use recorder::{ROOT_SPAN_NAME, ROOT_SPAN_TARGET, RecordedSpans, SlowCallRecorder};
pub use service::SlowCall;

// The README is the crate page on crates.io; its example runs as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
