//! Per-request overhead of `espresso-slow-call` for a fast request whose handler opens 5 nested
//! spans, against tower-http's `TraceLayer` with a `fmt` subscriber writing to `io::sink`, and
//! against no tracing at all, in the same run.
//!
//! Cases (same handler, same request, the response body drained to its end):
//! - `no_tracing`: no layer, no subscriber (the handler's spans are disabled: a branch each).
//! - `slow_call_layer_only`: `SlowCallLayer`, no subscriber (timing, metrics off).
//! - `slow_call_recorder`: `SlowCallLayer` (threshold 1 s, so nothing is logged) and a registry
//!   with `SlowCallRecorder`: every span is recorded, the tree is discarded at the end.
//! - `slow_call_registry_only`: `SlowCallLayer` and a bare registry: what `tracing-subscriber`
//!   itself costs for these spans, before any layer.
//! - `slow_call_recorder_no_busy`: the recorder with `busy_time(false)` (no clock reads on
//!   enter/exit).
//! - `slow_call_recorder_metrics`: the recorder with the Prometheus metrics on.
//! - `trace_layer_fmt`: `TraceLayer::new_for_http()` and a registry with `fmt::layer()` writing to
//!   `io::sink` (spans' fields formatted, request/response events written).
//!
//! The handler never waits, so each iteration polls the service future and the body once with a
//! no-op waker: no runtime is involved.
//!
//! Run: `cargo bench -p espresso-benches --bench slow_call`
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public fn

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use espresso_slow_call::{SlowCallLayer, SlowCallMetrics, SlowCallRecorder};
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use std::{
    convert::Infallible,
    future::Future,
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};
use tower::{Layer, Service, service_fn};
use tower_http::trace::TraceLayer;
use tracing::instrument;
use tracing_subscriber::{filter::LevelFilter, prelude::*};

#[instrument]
async fn handler() -> Bytes {
    cache().await
}

#[instrument]
async fn cache() -> Bytes {
    normalize().await
}

#[instrument]
async fn normalize() -> Bytes {
    matcher().await
}

#[instrument]
async fn matcher() -> Bytes {
    classifier().await
}

#[instrument]
async fn classifier() -> Bytes {
    Bytes::from_static(b"{\"verdict\":\"pass\"}")
}

async fn app(_: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(handler().await)))
}

fn request() -> Request<Full<Bytes>> {
    Request::post("/v1/filter")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"content\":\"hi\"}")))
        .unwrap()
}

/// One request: ready, call, poll the future once, drain the body to its end.
// Never inlined, so callgrind counts each request as one call of `call` (see BENCHMARKS.md).
#[inline(never)]
fn call<S, B>(service: &mut S) -> usize
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: Body<Data = Bytes>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(())) = service.poll_ready(&mut cx) else {
        unreachable!("service_fn is always ready")
    };
    let mut future = pin!(service.call(request()));
    let Poll::Ready(Ok(response)) = future.as_mut().poll(&mut cx) else {
        unreachable!("the handler never waits")
    };
    let mut body = pin!(response.into_body());
    let mut len = 0;
    while let Poll::Ready(Some(frame)) = body.as_mut().poll_frame(&mut cx) {
        if let Ok(data) = frame.map(|f| f.into_data()) {
            len += data.map_or(0, |d| d.len());
        }
    }
    len
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("slow_call/fast_request_5_spans");
    let threshold = Duration::from_secs(1);

    let mut bare = service_fn(app);
    group.bench_function("no_tracing", |b| b.iter(|| black_box(call(&mut bare))));

    let mut layer_only = SlowCallLayer::new(threshold).layer(service_fn(app));
    group.bench_function("slow_call_layer_only", |b| {
        b.iter(|| black_box(call(&mut layer_only)))
    });

    let cases = [
        ("slow_call_registry_only", None, false),
        ("slow_call_recorder", Some(SlowCallRecorder::new()), false),
        (
            "slow_call_recorder_no_busy",
            Some(SlowCallRecorder::new().busy_time(false)),
            false,
        ),
        (
            "slow_call_recorder_metrics",
            Some(SlowCallRecorder::new()),
            true,
        ),
    ];
    for (name, recorder, metrics) in cases {
        let subscriber = tracing_subscriber::registry().with(recorder);
        let _guard = tracing::subscriber::set_default(subscriber);
        let mut layer = SlowCallLayer::new(threshold).route("/v1/filter");
        if metrics {
            layer = layer.metrics(SlowCallMetrics::register(&prometheus::Registry::new()).unwrap());
        }
        let mut service = layer.layer(service_fn(app));
        group.bench_function(name, |b| b.iter(|| black_box(call(&mut service))));
    }

    {
        // The server's setup: the recorder behind its own filter, so no root span is created
        // when no other layer wants one.
        let recorder = SlowCallRecorder::new().filtered(LevelFilter::INFO);
        let subscriber = tracing_subscriber::registry().with(recorder);
        let _guard = tracing::subscriber::set_default(subscriber);
        let mut service = SlowCallLayer::new(threshold)
            .route("/v1/filter")
            .layer(service_fn(app));
        group.bench_function("slow_call_recorder_filtered", |b| {
            b.iter(|| black_box(call(&mut service)))
        });
    }

    {
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::sink);
        let subscriber = tracing_subscriber::registry().with(fmt);
        let _guard = tracing::subscriber::set_default(subscriber);
        let mut service = TraceLayer::new_for_http().layer(service_fn(app));
        group.bench_function("trace_layer_fmt", |b| {
            b.iter(|| black_box(call(&mut service)))
        });
    }

    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
