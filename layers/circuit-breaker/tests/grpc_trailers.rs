//! A gRPC failure sent in the trailers, after streamed messages, reaches the breaker.
//!
//! The backend is a tonic `HealthServer` whose `Watch` stream sends two messages and then ends
//! with `UNAVAILABLE` (`espresso_test_support::FailsInTrailers`): the status travels in the
//! trailers, so the response head looked healthy.
//! The breaker sits inside the tonic `Server` and decides when the body ends. Everything runs on
//! 127.0.0.1.

use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, SlidingWindow, State};
use espresso_test_support::{
    FailsInTrailers, TRAILERS_MESSAGE, health_client_of, health_request, serving,
};
use std::time::Duration;
use tonic::{Code, transport::Server};
use tonic_health::pb::health_server::HealthServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_in_the_trailers_after_streamed_messages_opens_the_breaker() {
    let breaker = CircuitBreaker::builder("watch")
        .sliding_window(SlidingWindow::count(3))
        .minimum_number_of_calls(3)
        .failure_rate_threshold(60.0)
        .wait_in_open(Duration::from_secs(60))
        .build()
        .unwrap();
    let layer = CircuitBreakerLayer::new(breaker.clone());
    let mut client = health_client_of(|incoming| {
        Server::builder()
            .layer(layer)
            .add_service(HealthServer::new(FailsInTrailers))
            .serve_with_incoming(incoming)
    })
    .await;

    // A unary call ends with OK in its trailers: a success, decided when its body ends.
    client.check(health_request()).await.unwrap();
    assert_eq!(breaker.snapshot().calls, 1);
    assert_eq!(breaker.snapshot().failed_calls, 0);

    for watch in 1..=2 {
        let mut stream = client.watch(health_request()).await.unwrap().into_inner();
        // The head said nothing wrong, and the messages arrive...
        assert_eq!(stream.message().await.unwrap(), Some(serving()));
        assert_eq!(stream.message().await.unwrap(), Some(serving()));
        // ...then the status, in the trailers.
        let status = stream.message().await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), TRAILERS_MESSAGE);
        if watch == 1 {
            let window = breaker.snapshot();
            assert_eq!((window.calls, window.failed_calls), (2, 1));
        }
    }
    // 2 of the last 3 calls failed: 66 % >= 60 %.
    assert_eq!(breaker.state(), State::Open);

    // Open: the next call is refused by the breaker, in gRPC terms.
    let status = client.watch(health_request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "circuit breaker is open");
}
