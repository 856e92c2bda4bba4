//! The layer driven directly, with paused tokio time.
//!
//! Time is paused so that durations are exact: `tokio::time::advance` inside an instrumented
//! function moves the clock while its span is entered (busy time), and `sleep` lets the runtime
//! jump the clock while the span is idle. The recorder reads `tokio::time::Instant`, so the tree
//! in the log shows exactly those numbers.

mod support;

use bytes::Bytes;
use espresso_common::RequestId;
use espresso_slow_call::{SlowCallLayer, SlowCallMetrics, UNMATCHED_ROUTE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};
use support::{capture, histogram, value};
use tokio::time::{advance, sleep};
use tower::{Layer, Service, ServiceExt, service_fn};
use tracing::{Level, instrument};

const MS: Duration = Duration::from_millis(1);

#[instrument]
async fn handler() -> &'static str {
    advance(MS).await;
    cache().await;
    classifier().await;
    "ok"
}

#[instrument]
async fn cache() {
    advance(3 * MS).await;
}

#[instrument(fields(model = "v2"))]
async fn classifier() {
    rpc().await;
    sleep(3 * MS).await;
}

#[instrument]
async fn rpc() {
    sleep(5 * MS).await;
}

fn request(path: &str) -> Request<Full<Bytes>> {
    let mut request = Request::post(path).body(Full::default()).unwrap();
    let id = RequestId::new(HeaderValue::from_static("req-1")).unwrap();
    request.extensions_mut().insert(id);
    request
}

/// [`request`] as a gRPC call (`content-type: application/grpc`).
fn grpc_request(path: &str) -> Request<Full<Bytes>> {
    let mut request = request(path);
    let grpc = HeaderValue::from_static("application/grpc");
    request.headers_mut().insert("content-type", grpc);
    request
}

async fn app(_: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::from(handler().await)))
}

#[tokio::test(start_paused = true)]
async fn a_slow_request_logs_one_event_with_the_nested_tree() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(10 * MS)
        .route("/v1/filter")
        .metrics(SlowCallMetrics::register(&registry).unwrap());
    let service = layer.layer(service_fn(app));

    let response = service.oneshot(request("/v1/filter")).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "ok");

    let events = events.take();
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event.level, Level::WARN);
    assert_eq!(event.get("request_id"), "req-1");
    assert_eq!(event.get("method"), "POST");
    assert_eq!(event.get("route"), "/v1/filter");
    assert_eq!(event.get("path"), "/v1/filter");
    assert_eq!(event.get("status"), "200");
    assert_eq!(event.get("duration_ms"), "12.0");
    assert_eq!(event.get("threshold_ms"), "10.0");
    assert_eq!(event.get("cancelled"), "false");
    // handler is busy while cache advances the clock inside it (1 + 3 ms); classifier and rpc
    // only sleep, so they are idle.
    assert_eq!(
        event.get("tree"),
        "handler 12.0ms (busy 4.0ms) > [cache 3.0ms (busy 3.0ms), \
         classifier{model=v2} 8.0ms (busy 0µs) > rpc 5.0ms (busy 0µs)]"
    );

    assert_eq!(
        histogram(&registry, "POST", "/v1/filter", "200"),
        (1, 0.012)
    );
    let slow = value(
        &registry,
        "espresso_slow_calls_total",
        &[("route", "/v1/filter")],
    );
    assert_eq!(slow, 1.0);
    assert_eq!(value(&registry, "http_server_active_requests", &[]), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_fast_request_logs_nothing_but_is_measured() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(20 * MS).metrics(SlowCallMetrics::register(&registry).unwrap());
    let mut service = layer.layer(service_fn(app));

    for _ in 0..3 {
        let response = service
            .ready()
            .await
            .unwrap()
            .call(request("/anything"))
            .await;
        response.unwrap().into_body().collect().await.unwrap();
    }

    assert!(events.take().is_empty());
    let (count, sum) = histogram(&registry, "POST", UNMATCHED_ROUTE, "200");
    assert_eq!(count, 3);
    assert!((sum - 0.036).abs() < 1e-9, "{sum}");
    let slow = value(&registry, "espresso_slow_calls_total", &[]);
    assert_eq!(slow, 0.0);
}

#[tokio::test(start_paused = true)]
async fn routes_and_grpc_methods_have_their_own_thresholds() {
    let (events, _guard) = capture();
    let layer = SlowCallLayer::new(Duration::from_secs(1))
        .route_threshold("/v1/filter", 5 * MS)
        .route_threshold("/pkg.Svc/Fast", 100 * MS);
    let service = layer.layer(service_fn(app));

    for path in ["/v1/filter", "/pkg.Svc/Fast", "/other"] {
        let response = service.clone().oneshot(request(path)).await.unwrap();
        response.into_body().collect().await.unwrap();
    }

    let events = events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get("route"), "/v1/filter");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_goes_away_before_the_response_is_accounted() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(10 * MS).metrics(SlowCallMetrics::register(&registry).unwrap());
    let service = layer.layer(service_fn(|_: Request<Full<Bytes>>| async {
        handler().await;
        sleep(Duration::from_secs(60)).await;
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
    }));

    let call = service.oneshot(request("/v1/filter"));
    // The client hangs up after 30 ms: the future is dropped.
    let gone = tokio::time::timeout(30 * MS, call).await;
    assert!(gone.is_err());
    assert_eq!(value(&registry, "http_server_active_requests", &[]), 0.0);

    let events = events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get("cancelled"), "true");
    assert_eq!(events[0].get("status"), "cancelled");
    assert_eq!(events[0].get("duration_ms"), "30.0");
    // The handler's spans finished; the request itself was still waiting.
    assert!(
        events[0]
            .get("tree")
            .starts_with("handler 12.0ms (busy 4.0ms) > [")
    );
    let (count, sum) = histogram(&registry, "POST", UNMATCHED_ROUTE, "cancelled");
    assert_eq!((count, sum), (1, 0.030));
}

/// A body that sends its frames, then waits forever unless trailers ended it.
struct Frames {
    frames: Vec<Frame<Bytes>>,
    ended: bool,
    /// Whether `is_end_stream` says so after the trailers (`StreamBody` and `Channel` do not).
    says_it_ended: bool,
}

impl Frames {
    fn new(frames: Vec<Frame<Bytes>>) -> Self {
        Self {
            frames,
            ended: false,
            says_it_ended: true,
        }
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.frames.is_empty() {
            return Poll::Pending;
        }
        let frame = self.frames.remove(0);
        self.ended = frame.is_trailers();
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.says_it_ended
    }
}

#[tokio::test(start_paused = true)]
async fn timing_ends_with_the_body_and_a_dropped_body_is_cancelled() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(10 * MS).metrics(SlowCallMetrics::register(&registry).unwrap());
    let service = layer.layer(service_fn(|_: Request<Full<Bytes>>| async {
        let body = Frames::new(vec![Frame::data(Bytes::from_static(b"first"))]);
        Ok::<_, Infallible>(Response::new(body))
    }));

    let response = service.oneshot(request("/stream")).await.unwrap();
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "first");
    // Headers went out at once; the body streams for 25 ms, then the client hangs up.
    assert_eq!(value(&registry, "http_server_active_requests", &[]), 1.0);
    advance(25 * MS).await;
    drop(body);

    let events = events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get("status"), "cancelled");
    assert_eq!(events[0].get("duration_ms"), "25.0");
    assert_eq!(value(&registry, "http_server_active_requests", &[]), 0.0);
}

#[tokio::test(start_paused = true)]
async fn grpc_status_comes_from_the_trailers() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(10 * MS)
        .route("/pkg.Svc/Check")
        .metrics(SlowCallMetrics::register(&registry).unwrap());
    let service = layer.layer(service_fn(|_: Request<Full<Bytes>>| async {
        sleep(15 * MS).await;
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("14"));
        let body = Frames::new(vec![
            Frame::data(Bytes::from_static(b"\0\0\0\0\0")),
            Frame::trailers(trailers),
        ]);
        let response = Response::builder()
            .header("content-type", "application/grpc")
            .body(body)
            .unwrap();
        Ok::<_, Infallible>(response)
    }));

    let response = service
        .oneshot(grpc_request("/pkg.Svc/Check"))
        .await
        .unwrap();
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    advance(5 * MS).await;
    let trailers = body.frame().await.unwrap().unwrap();
    assert!(trailers.is_trailers());
    // The trailers end the body: the status is known and the timing stops.
    assert!(body.is_end_stream());

    let events = events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get("status"), "UNAVAILABLE");
    assert_eq!(events[0].get("duration_ms"), "20.0");
    let (count, _) = histogram(&registry, "POST", "/pkg.Svc/Check", "UNAVAILABLE");
    assert_eq!(count, 1);
}

#[tokio::test(start_paused = true)]
async fn trailers_end_the_body_even_where_it_does_not_say_so() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(10 * MS)
        .route("/pkg.Svc/Watch")
        .metrics(SlowCallMetrics::register(&registry).unwrap());
    let service = layer.layer(service_fn(|_: Request<Full<Bytes>>| async {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("14"));
        let mut body = Frames::new(vec![
            Frame::data(Bytes::from_static(b"\0\0\0\0\0")),
            Frame::trailers(trailers),
        ]);
        body.says_it_ended = false;
        let response = Response::builder()
            .header("content-type", "application/grpc")
            .body(body)
            .unwrap();
        Ok::<_, Infallible>(response)
    }));

    let response = service
        .oneshot(grpc_request("/pkg.Svc/Watch"))
        .await
        .unwrap();
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    advance(12 * MS).await;
    assert!(body.frame().await.unwrap().unwrap().is_trailers());
    // A server stops polling after the trailers, the last frame, and drops the body.
    drop(body);

    let events = events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get("status"), "UNAVAILABLE");
    assert_eq!(events[0].get("duration_ms"), "12.0");
    let (count, _) = histogram(&registry, "POST", "/pkg.Svc/Watch", "UNAVAILABLE");
    assert_eq!(count, 1);
    assert_eq!(value(&registry, "http_server_active_requests", &[]), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_grpc_call_answered_without_grpc_is_labelled_as_its_client_reads_it() {
    // A proxy in front of a gRPC service answers 503 with no `grpc-status`: the client reads
    // UNAVAILABLE (gRPC's HTTP mapping), and so does the metric; the log keeps the HTTP status.
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(10 * MS)
        .route("/pkg.Svc/Check")
        .metrics(SlowCallMetrics::register(&registry).unwrap());
    let service = layer.layer(service_fn(|_: Request<Full<Bytes>>| async {
        sleep(15 * MS).await;
        let response = Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Full::new(Bytes::new()))
            .unwrap();
        Ok::<_, Infallible>(response)
    }));
    let response = service
        .oneshot(grpc_request("/pkg.Svc/Check"))
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();

    let events = events.take();
    assert_eq!(events[0].get("status"), "503");
    let (count, _) = histogram(&registry, "POST", "/pkg.Svc/Check", "UNAVAILABLE");
    assert_eq!(count, 1);
    let (count, _) = histogram(&registry, "POST", "/pkg.Svc/Check", "503");
    assert_eq!(count, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failing_inner_service_is_counted_as_an_error() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(MS).metrics(SlowCallMetrics::register(&registry).unwrap());
    let service = layer.layer(service_fn(|_: Request<Full<Bytes>>| async {
        sleep(2 * MS).await;
        Err::<Response<Full<Bytes>>, _>("backend down")
    }));

    assert!(service.oneshot(request("/x")).await.is_err());
    let events = events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get("status"), "error");
    assert_eq!(histogram(&registry, "POST", UNMATCHED_ROUTE, "error").0, 1);
}

#[tokio::test(start_paused = true)]
async fn spans_outside_requests_and_requests_without_a_recorder_are_fine() {
    // No subscriber at all: the layer still times and logs nothing anywhere, and metrics work.
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(MS).metrics(SlowCallMetrics::register(&registry).unwrap());
    let service = layer.layer(service_fn(app));
    let response = service.oneshot(request("/x")).await.unwrap();
    response.into_body().collect().await.unwrap();
    let slow = value(&registry, "espresso_slow_calls_total", &[]);
    assert_eq!(slow, 1.0);
}

#[tokio::test(start_paused = true)]
async fn the_number_of_recorded_spans_is_capped() {
    let (events, _guard) = capture();
    let layer = SlowCallLayer::new(MS).max_spans(2);
    let service = layer.layer(service_fn(app));
    let response = service.oneshot(request("/x")).await.unwrap();
    response.into_body().collect().await.unwrap();
    let events = events.take();
    assert_eq!(
        events[0].get("tree"),
        "handler 12.0ms (busy 4.0ms) > cache 3.0ms (busy 3.0ms) (+2 spans not recorded)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_head_response_is_complete_without_its_body() {
    let (events, _guard) = capture();
    let registry = prometheus::Registry::new();
    let layer = SlowCallLayer::new(MS).metrics(SlowCallMetrics::register(&registry).unwrap());
    let service = layer.layer(service_fn(app));
    let request = Request::head("/x").body(Full::default()).unwrap();
    let response = service.oneshot(request).await.unwrap();
    // Servers send no body for HEAD and drop it unpolled.
    drop(response);
    let events = events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get("status"), "200");
    assert_eq!(histogram(&registry, "HEAD", UNMATCHED_ROUTE, "200").0, 1);
}
