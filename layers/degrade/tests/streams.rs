//! Long gRPC streams, whose status comes in the trailers after the caller has read every
//! message: a stream frees its place in the limit at its response head, and its round trip is
//! its time to that head, so open watch streams neither starve other calls nor shrink the limit.
//!
//! The inner service answers at once with a gRPC head and a body the test feeds by hand
//! (`espresso_test_support::streaming_backend`). Time is paused, so "5 minutes later" is exact.

use espresso_degrade::{
    DegradeLayer,
    limit::{Aimd, Fixed},
};
use espresso_test_support::{open_stream, read_stream, streaming_backend};
use http::{Request, StatusCode};
use std::time::Duration;
use tower::{Layer, ServiceExt};

#[tokio::test(start_paused = true)]
async fn an_open_stream_does_not_hold_a_place_in_the_limit() {
    let layer = DegradeLayer::new(Fixed::new(1));
    let (backend, mut senders) = streaming_backend();
    let service = layer.layer(backend);
    let (stream, _sender) = open_stream(&service, &mut senders).await;
    assert_eq!(layer.inflight(), 0, "freed at its head");
    // A limit of one, and the stream still open: the next call is admitted.
    let response = service.oneshot(Request::new("x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(stream);
    assert_eq!(layer.inflight(), 0, "freed once only");
}

#[tokio::test(start_paused = true)]
async fn a_long_healthy_stream_is_a_short_round_trip_and_a_failure_in_its_trailers_still_counts() {
    // AIMD counts a round trip over its 5 s timeout as overload, and multiplies the limit by
    // 0.9 on each overload signal.
    let layer = DegradeLayer::new(Aimd::new().initial_limit(10).min_limit(1));
    let (backend, mut senders) = streaming_backend();
    let service = layer.layer(backend);
    for (status, limit) in [("0", 10), ("14", 9)] {
        let (stream, sender) = open_stream(&service, &mut senders).await;
        read_stream(stream.into_body(), sender, Duration::from_secs(300), status).await;
        assert_eq!(
            layer.current_limit(),
            limit,
            "after a stream ending {status}"
        );
    }
    assert_eq!(layer.inflight(), 0);
}

#[cfg(feature = "metrics")]
#[tokio::test(start_paused = true)]
async fn a_stream_that_raises_the_limit_as_it_ends_shows_the_waiters_it_admits_in_flight() {
    use bytes::Bytes;
    use espresso_degrade::DegradeMetrics;
    use espresso_test_support::grpc_status;
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    let registry = prometheus::Registry::new();
    let layer = DegradeLayer::new(Aimd::new().initial_limit(1).min_limit(1).max_limit(4))
        .queue(4)
        .name("api")
        .metrics(DegradeMetrics::register(&registry).unwrap());
    let (backend, mut senders) = streaming_backend();
    let streams = layer.layer(backend);
    // calls answered when the test lets them
    let open = Arc::new(Semaphore::new(0));
    let held = layer.layer(tower::service_fn({
        let open = open.clone();
        move |_: Request<&'static str>| {
            let open = open.clone();
            async move {
                open.acquire().await.unwrap().forget();
                Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
            }
        }
    }));
    let (stream, mut sender) = open_stream(&streams, &mut senders).await;
    let first = tokio::spawn(held.clone().oneshot(Request::new("a")));
    let second = tokio::spawn(held.clone().oneshot(Request::new("b")));
    tokio::task::yield_now().await;
    assert_eq!(layer.inflight(), 1, "the second call waits for a place");
    assert!(!second.is_finished());
    // the stream's healthy end raises the limit to 2, which lets the second call in; the body
    // is read here, with no await between its end and the look at the gauge: the second call's
    // task has not run yet
    sender.send_data(Bytes::from_static(b"msg")).await.unwrap();
    sender.send_trailers(grpc_status("0")).await.unwrap();
    drop(sender);
    let mut body = stream.into_body();
    while let Some(frame) = body.frame().await {
        frame.unwrap();
    }
    let text = {
        let mut out = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    };
    assert!(
        text.contains("espresso_degrade_inflight{name=\"api\"} 2"),
        "{text}"
    );
    assert_eq!((layer.current_limit(), layer.inflight()), (2, 2));
    open.add_permits(2);
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
}
