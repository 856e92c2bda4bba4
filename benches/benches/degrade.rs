//! Per-request cost of an admitting `espresso-degrade` layer against tower's own overload
//! protection (`ConcurrencyLimit` behind `LoadShed`: a fixed limit, excess refused at once), and
//! against the bare service, in the same run.
//!
//! Each iteration polls readiness, calls, polls the response future to completion with a no-op
//! waker and drops the response (degrade holds its permit until the body ends). The inner service
//! answers at once, so every request is admitted and each call is the hot path: take a slot,
//! call, classify the answer, give the slot back and (for the adaptive limits) feed the latency
//! sample to the limit. Cases: `fixed` (the same limit as tower's, 1,000), `gradient2` (adaptive)
//! and `gradient2_queue_switch` (the demo server's shape: a queue of 64, a manual switch and the
//! `x-priority` header read per request).
//!
//! Run: `cargo bench -p espresso-benches --bench degrade -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public fn

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use espresso_degrade::{
    DegradeLayer, DegradeSwitch, PriorityHeader,
    limit::{Fixed, Gradient2},
};
use http::{Request, Response};
use http_body_util::Empty;
use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
};
use tower::{Layer, Service, ServiceBuilder, service_fn, util::ServiceFn};

type Reply = Response<Empty<Bytes>>;
type Trivial = ServiceFn<fn(Request<()>) -> Ready<Result<Reply, Infallible>>>;

fn trivial() -> Trivial {
    service_fn((|_| ready(Ok(Response::new(Empty::new())))) as fn(_) -> _)
}

/// Calls the service once, drives the response future to completion and drops the answer.
// Never inlined, so callgrind counts each request as one call of `call` (see BENCHMARKS.md).
#[inline(never)]
fn call<S>(service: &mut S) -> bool
where
    S: Service<Request<()>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    while service.poll_ready(&mut cx).is_pending() {
        std::hint::spin_loop();
    }
    let mut future = pin!(service.call(Request::new(())));
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(result) => return result.is_ok(),
            Poll::Pending => std::hint::spin_loop(),
        }
    }
}

fn bench(c: &mut Criterion) {
    // Degrade reads tokio's clock for its latency samples.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let _guard = runtime.enter();
    let mut group = c.benchmark_group("degrade/admitted");

    let mut bare = trivial();
    group.bench_function("bare", |b| b.iter(|| black_box(call(&mut bare))));

    let mut fixed = DegradeLayer::new(Fixed::new(1000))
        .return_error()
        .layer(trivial());
    group.bench_function("espresso_fixed", |b| b.iter(|| black_box(call(&mut fixed))));

    let mut gradient = DegradeLayer::new(Gradient2::new())
        .return_error()
        .layer(trivial());
    group.bench_function("espresso_gradient2", |b| {
        b.iter(|| black_box(call(&mut gradient)))
    });

    let mut server_shape = DegradeLayer::new(Gradient2::new())
        .queue(64)
        .switch(DegradeSwitch::new())
        .priority(PriorityHeader::x_priority())
        .return_error()
        .layer(trivial());
    group.bench_function("espresso_gradient2_queue_switch", |b| {
        b.iter(|| black_box(call(&mut server_shape)))
    });

    let mut peer = ServiceBuilder::new()
        .load_shed()
        .concurrency_limit(1000)
        .service(trivial());
    group.bench_function("tower_load_shed_concurrency_limit", |b| {
        b.iter(|| black_box(call(&mut peer)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
