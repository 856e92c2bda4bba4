//! Per-call cost of a CLOSED `espresso-circuit-breaker` against `tower-resilience`'s circuit
//! breaker with the same configuration, and against the bare service, in the same run.
//!
//! Configuration on both sides: a count window of the last 100 calls, at least 100 calls before
//! deciding, opens at 50 % failures, 60 s in OPEN. Every call succeeds, so the breakers stay
//! CLOSED and each call is the hot path: ask for permission, call, record the outcome in the
//! window, check the thresholds. The inner service is a `service_fn` answering at once; each
//! iteration polls readiness and the response future to completion with a no-op waker, so no
//! executor cost is measured (a pending future is polled again until ready). `core` is espresso's breaker without Tower (`try_acquire` +
//! `Permit::complete`).
//!
//! `*_2_threads`: two OS threads call clones of the same service (one shared breaker) at once;
//! the figure is the time per call on one thread while the other hammers the same breaker.
//!
//! Run: `cargo bench -p espresso-benches --bench circuit_breaker -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public fn

use criterion::{Criterion, criterion_group, criterion_main};
use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, Outcome, SlidingWindow};
use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};
use tower::BoxError;
use tower::{Layer, Service, service_fn, util::ServiceFn};

type Trivial = ServiceFn<fn(u64) -> Ready<Result<u64, Infallible>>>;

fn trivial() -> Trivial {
    service_fn((|n| ready(Ok(n))) as fn(_) -> _)
}

fn espresso_breaker() -> CircuitBreaker {
    CircuitBreaker::builder("bench")
        .sliding_window(SlidingWindow::count(100))
        .minimum_number_of_calls(100)
        .failure_rate_threshold(50.0)
        .wait_in_open(Duration::from_secs(60))
        .build()
        .expect("a valid configuration")
}

/// The classifier sees the service's results as the refusal policy types them: with
/// `.return_error()`, errors are boxed.
fn errors_fail(result: Result<&u64, &BoxError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

/// Calls the service once and drives the response future to completion.
///
/// The trivial service answers at once; a breaker's future may still be pending under
/// contention (tower-resilience takes an async mutex), so it is polled again until ready, as a
/// spinning executor would: waiting for a contended lock is part of the cost measured.
// Never inlined, so callgrind counts each request as one call of `call` (see BENCHMARKS.md).
#[inline(never)]
fn call<S>(service: &mut S, n: u64) -> bool
where
    S: Service<u64>,
{
    let mut cx = Context::from_waker(Waker::noop());
    while service.poll_ready(&mut cx).is_pending() {
        std::hint::spin_loop();
    }
    let mut future = pin!(service.call(n));
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(result) => return result.is_ok(),
            Poll::Pending => std::hint::spin_loop(),
        }
    }
}

/// `iters` calls on each of two threads sharing one breaker; the slower thread's time.
fn two_threads<S>(service: &S, iters: u64) -> Duration
where
    S: Service<u64> + Clone + Send,
{
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let mut service = service.clone();
                scope.spawn(move || {
                    let start = Instant::now();
                    for n in 0..iters {
                        black_box(call(&mut service, n));
                    }
                    start.elapsed()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("circuit_breaker_closed");

    let mut bare = trivial();
    group.bench_function("bare", |b| b.iter(|| black_box(call(&mut bare, 1))));

    let breaker = espresso_breaker();
    group.bench_function("espresso_core", |b| {
        b.iter(|| {
            let permit = breaker.try_acquire().expect("closed");
            permit.complete(Outcome::Success);
        })
    });

    let mut espresso = CircuitBreakerLayer::new(espresso_breaker())
        .classify(errors_fail)
        .return_error()
        .layer(trivial());
    group.bench_function("espresso", |b| b.iter(|| black_box(call(&mut espresso, 1))));

    let peer_layer = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .minimum_number_of_calls(100)
        .wait_duration_in_open(Duration::from_secs(60))
        .build()
        .expect("a valid configuration");
    let mut peer = peer_layer.layer(trivial());
    group.bench_function("tower_resilience", |b| {
        b.iter(|| black_box(call(&mut peer, 1)))
    });

    let bare = trivial();
    group.bench_function("bare_2_threads", |b| {
        b.iter_custom(|iters| two_threads(&bare, iters))
    });
    let espresso = CircuitBreakerLayer::new(espresso_breaker())
        .classify(errors_fail)
        .return_error()
        .layer(trivial());
    group.bench_function("espresso_2_threads", |b| {
        b.iter_custom(|iters| two_threads(&espresso, iters))
    });
    let peer = peer_layer.layer(trivial());
    group.bench_function("tower_resilience_2_threads", |b| {
        b.iter_custom(|iters| two_threads(&peer, iters))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
