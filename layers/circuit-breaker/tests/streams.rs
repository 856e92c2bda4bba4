//! Long gRPC streams, whose status comes in the trailers after the caller has read every
//! message: the call's time is its time to the response head, and a stream taken as a
//! half-open probe does not hold the breaker half-open.
//!
//! The inner service answers at once with a gRPC head and a body the test feeds by hand
//! (`http_body_util::channel`). Time is paused, so "90 s later" is exact.

use bytes::Bytes;
use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, SlidingWindow, State};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, channel::Channel};
use std::{convert::Infallible, time::Duration};
use tokio::sync::mpsc;
use tower::{Layer, Service, ServiceExt, service_fn};

type Body = Channel<Bytes, Infallible>;
type Sender = http_body_util::channel::Sender<Bytes, Infallible>;

/// A service that answers `"stream"` with a gRPC head and a body whose sender it hands to the
/// test, and anything else with a plain `200`.
fn backend() -> (
    impl Service<Request<&'static str>, Response = Response<Body>, Error = Infallible> + Clone,
    mpsc::UnboundedReceiver<Sender>,
) {
    let (senders, received) = mpsc::unbounded_channel();
    let service = service_fn(move |request: Request<&'static str>| {
        let (sender, body) = Channel::new(4);
        let mut response = Response::new(body);
        if *request.body() == "stream" {
            senders.send(sender).unwrap();
            response
                .headers_mut()
                .insert("content-type", "application/grpc".parse().unwrap());
        }
        async move { Ok(response) }
    });
    (service, received)
}

/// A breaker half-open, one probe at a time.
fn half_open_with_one_probe() -> CircuitBreaker {
    let breaker = CircuitBreaker::builder("watch")
        .permitted_calls_in_half_open(1)
        .build()
        .unwrap();
    breaker.transition_to(State::HalfOpen);
    breaker
}

fn grpc_status(code: &str) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", code.parse().unwrap());
    trailers
}

#[tokio::test(start_paused = true)]
async fn a_long_stream_that_ends_well_is_not_a_slow_call() {
    let breaker = CircuitBreaker::builder("watch")
        .sliding_window(SlidingWindow::count(2))
        .minimum_number_of_calls(2)
        .slow_call_duration_threshold(Duration::from_secs(60))
        .build()
        .unwrap();
    let (backend, mut senders) = backend();
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(backend);
    for _ in 0..2 {
        let response = service
            .clone()
            .oneshot(Request::new("stream"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut sender = senders.recv().await.unwrap();
        // The caller reads for 90 s, then the stream ends with OK.
        let read = tokio::spawn(response.into_body().collect());
        tokio::time::advance(Duration::from_secs(90)).await;
        sender.send_data(Bytes::from_static(b"msg")).await.unwrap();
        sender.send_trailers(grpc_status("0")).await.unwrap();
        drop(sender);
        read.await.unwrap().unwrap();
    }
    let window = breaker.snapshot();
    assert_eq!((window.calls, window.slow_calls), (2, 0));
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_stream_taken_as_a_probe_does_not_hold_the_breaker_half_open() {
    let breaker = half_open_with_one_probe();
    let (backend, mut senders) = backend();
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(backend);

    // The first call after the wait is a stream the caller keeps open.
    let stream = service
        .clone()
        .oneshot(Request::new("stream"))
        .await
        .unwrap();
    let _sender = senders.recv().await.unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);

    // A plain call is the probe that decides.
    let response = service.clone().oneshot(Request::new("x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(breaker.state(), State::Closed);
    drop(stream);
}

#[tokio::test(start_paused = true)]
async fn a_stream_probe_dropped_after_its_head_gives_its_slot_back_once() {
    let breaker = half_open_with_one_probe();
    let (backend, mut senders) = backend();
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(backend);

    let stream = service
        .clone()
        .oneshot(Request::new("stream"))
        .await
        .unwrap();
    let sender = senders.recv().await.unwrap();
    // The caller goes away before the end: ignored, and the slot was given back at the head.
    drop(stream);
    drop(sender);
    assert_eq!(breaker.state(), State::HalfOpen);

    // Given back once: one probe at a time still.
    let probe = breaker.try_acquire().expect("the slot is free");
    assert!(breaker.try_acquire().is_err(), "one probe at a time");
    drop(probe);

    // A stream probe that ends with UNAVAILABLE in its trailers decides the round: it failed.
    let stream = service
        .clone()
        .oneshot(Request::new("stream"))
        .await
        .unwrap();
    let mut sender = senders.recv().await.unwrap();
    let read = tokio::spawn(stream.into_body().collect());
    sender.send_trailers(grpc_status("14")).await.unwrap();
    drop(sender);
    read.await.unwrap().unwrap();
    assert_eq!(breaker.state(), State::Open);
}
