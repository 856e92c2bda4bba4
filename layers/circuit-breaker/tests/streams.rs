//! Long gRPC streams, whose status comes in the trailers after the caller has read every
//! message: the call's time is its time to the response head, and a stream taken as a
//! half-open probe does not hold the breaker half-open.
//!
//! The inner service answers at once with a gRPC head and a body the test feeds by hand
//! (`espresso_test_support::streaming_backend`). Time is paused, so "90 s later" is exact.

use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, SlidingWindow, State};
use espresso_test_support::{open_stream, read_stream, streaming_backend};
use http::{Request, StatusCode};
use std::time::Duration;
use tower::{Layer, ServiceExt};

#[tokio::test(start_paused = true)]
async fn a_long_stream_that_ends_well_is_not_a_slow_call() {
    let breaker = CircuitBreaker::builder("watch")
        .sliding_window(SlidingWindow::count(2))
        .minimum_number_of_calls(2)
        .slow_call_duration_threshold(Duration::from_secs(60))
        .build()
        .unwrap();
    let (backend, mut senders) = streaming_backend();
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(backend);
    for _ in 0..2 {
        let (response, sender) = open_stream(&service, &mut senders).await;
        assert_eq!(response.status(), StatusCode::OK);
        // The caller reads for 90 s, then the stream ends with OK.
        read_stream(response.into_body(), sender, Duration::from_secs(90), "0").await;
    }
    let window = breaker.snapshot();
    assert_eq!((window.calls, window.slow_calls), (2, 0));
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_stream_taken_as_a_probe_counts_at_its_head() {
    let breaker = CircuitBreaker::builder("watch")
        .permitted_calls_in_half_open(1)
        .build()
        .unwrap();
    breaker.transition_to(State::HalfOpen);
    let (backend, mut senders) = streaming_backend();
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(backend);

    // The first call after the wait is a stream the caller keeps open: its head decides the
    // round, instead of the breaker staying half-open for as long as it lives.
    let (stream, sender) = open_stream(&service, &mut senders).await;
    assert_eq!(breaker.state(), State::Closed);
    let response = service.clone().oneshot(Request::new("x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // What its trailers say later is not counted again.
    read_stream(stream.into_body(), sender, Duration::ZERO, "14").await;
    let window = breaker.snapshot();
    assert_eq!(
        (window.calls, window.failed_calls),
        (1, 0),
        "the plain call only"
    );
}
