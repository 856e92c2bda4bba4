//! The Tower service: readiness, calls, classification and the three answers when open,
//! driven with `tower-test` mocks.
//!
//! The mock's `Handle` plays the inner service: it sees every request that gets through and
//! answers it when the test says so. "Fails fast" is checked by the handle seeing no request.
//! Time is paused so that slow calls and timeouts are exact.

use espresso_circuit_breaker::{
    CircuitBreaker, CircuitBreakerLayer, CircuitBreakerRegistry, CircuitOpen, Outcome,
    SlidingWindow, State,
};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::{sync::Arc, time::Duration};
use tokio_test::{assert_pending, assert_ready_ok};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_test::mock;

type Req = Request<&'static str>;
type Res = Response<String>;

fn breaker() -> CircuitBreaker {
    CircuitBreaker::builder("upstream")
        .sliding_window(SlidingWindow::count(4))
        .minimum_number_of_calls(2)
        .permitted_calls_in_half_open(1)
        .wait_in_open(Duration::from_secs(30))
        .slow_call_duration_threshold(Duration::from_secs(1))
        .build()
        .unwrap()
}

fn request(body: &'static str) -> Req {
    Request::new(body)
}

fn grpc_request() -> Req {
    Request::builder()
        .header("content-type", "application/grpc")
        .body("")
        .unwrap()
}

/// The next request the inner service receives, checked by its body.
async fn expect(handle: &mut mock::Handle<Req, Res>, body: &str) -> mock::SendResponse<Res> {
    let (request, send) = handle
        .next_request()
        .await
        .expect("a request reaches the service");
    assert_eq!(*request.body(), body);
    send
}

fn status(code: StatusCode) -> Res {
    let mut r = Response::new(String::new());
    *r.status_mut() = code;
    r
}

fn grpc_status(code: &'static str) -> Res {
    let mut r = Response::new(String::new());
    r.headers_mut().insert("grpc-status", code.parse().unwrap());
    r
}

#[tokio::test(start_paused = true)]
async fn readiness_is_the_inner_services_and_calls_pass_through() {
    let (mut service, mut handle) =
        mock::spawn_layer::<Req, Res, _>(CircuitBreakerLayer::new(breaker()));
    handle.allow(0);
    assert_pending!(service.poll_ready());
    handle.allow(1);
    assert_ready_ok!(service.poll_ready());
    let call = service.call(request("hello"));
    expect(&mut handle, "hello")
        .await
        .send_response(status(StatusCode::OK));
    assert_eq!(call.await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn inner_readiness_errors_are_inner_errors() {
    let (mut service, mut handle) =
        mock::spawn_layer::<Req, Res, _>(CircuitBreakerLayer::new(breaker()));
    handle.send_error("broken");
    let err = service.poll_ready().map_err(|e| e.to_string());
    assert!(
        matches!(err, std::task::Poll::Ready(Err(ref m)) if m == "broken"),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_open_it_and_later_calls_fail_fast_without_reaching_the_service() {
    let b = breaker();
    let (mut service, mut handle) =
        mock::spawn_layer::<Req, Res, _>(CircuitBreakerLayer::new(b.clone()).return_error());
    handle.allow(10);
    for _ in 0..2 {
        assert_ready_ok!(service.poll_ready());
        let call = service.call(request("x"));
        expect(&mut handle, "x")
            .await
            .send_response(status(StatusCode::SERVICE_UNAVAILABLE));
        // A 5xx response is still returned to the caller as it is.
        assert_eq!(
            call.await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(b.state(), State::Open);

    assert_ready_ok!(service.poll_ready());
    let err = service.call(request("x")).await.unwrap_err();
    let open = err
        .downcast_ref::<CircuitOpen>()
        .expect("rejected by the breaker");
    assert_eq!(open.retry_after(), Some(Duration::from_secs(30)));
    assert_pending!(handle.poll_request());

    // After the wait, one probe gets through; its success closes the breaker.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_ready_ok!(service.poll_ready());
    let call = service.call(request("probe"));
    expect(&mut handle, "probe")
        .await
        .send_response(status(StatusCode::OK));
    call.await.unwrap();
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn inner_errors_count_and_come_back_as_inner_errors() {
    let b = breaker();
    let (mut service, mut handle) =
        mock::spawn_layer::<Req, Res, _>(CircuitBreakerLayer::new(b.clone()));
    handle.allow(2);
    for _ in 0..2 {
        assert_ready_ok!(service.poll_ready());
        let call = service.call(request("x"));
        expect(&mut handle, "x")
            .await
            .send_error("connection reset");
        match call.await {
            Err(e) => assert_eq!(e.to_string(), "connection reset"),
            other => panic!("expected an inner error, got {other:?}"),
        }
    }
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn grpc_statuses_in_headers_are_classified_by_code() {
    let b = breaker();
    let (mut service, mut handle) =
        mock::spawn_layer::<Req, Res, _>(CircuitBreakerLayer::new(b.clone()));
    handle.allow(10);
    // NOT_FOUND (5) is the caller's problem; UNAVAILABLE (14) is the server's.
    for (i, code) in ["5", "5", "14", "14"].into_iter().enumerate() {
        assert_ready_ok!(service.poll_ready());
        let call = service.call(request("x"));
        expect(&mut handle, "x")
            .await
            .send_response(grpc_status(code));
        call.await.unwrap();
        if i == 2 {
            let s = b.snapshot();
            assert_eq!((s.calls, s.failed_calls), (3, 1));
            assert_eq!(b.state(), State::Closed);
        }
    }
    assert_eq!(b.state(), State::Open, "2 of 4 = 50 %");
}

#[tokio::test(start_paused = true)]
async fn a_closure_decides_what_fails_and_what_is_ignored() {
    let b = breaker();
    let layer =
        CircuitBreakerLayer::new(b.clone()).classify(|r: Result<&Response<_>, &_>| match r {
            Ok(res) if res.status() == StatusCode::TOO_MANY_REQUESTS => Outcome::Failure,
            Ok(res) if res.status().is_server_error() => Outcome::Ignored,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        });
    let (mut service, mut handle) = mock::spawn_layer::<Req, Res, _>(layer);
    handle.allow(10);
    let mut send = |code| {
        assert_ready_ok!(service.poll_ready());
        let call = service.call(request("x"));
        (call, code)
    };
    for _ in 0..3 {
        let (call, code) = send(StatusCode::INTERNAL_SERVER_ERROR);
        expect(&mut handle, "x").await.send_response(status(code));
        call.await.unwrap();
    }
    assert_eq!(b.snapshot().calls, 0, "the 500s were ignored");
    for _ in 0..2 {
        let (call, code) = send(StatusCode::TOO_MANY_REQUESTS);
        expect(&mut handle, "x").await.send_response(status(code));
        call.await.unwrap();
    }
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn another_layers_refusal_returned_as_an_error_is_not_a_failure() {
    // Outside: the breaker under test. Inside: another layer that refuses with
    // `.return_error()` (here a second breaker, forced open).
    let outer = breaker();
    let inner = CircuitBreaker::builder("inner").build().unwrap();
    inner.transition_to(State::ForcedOpen);
    let stack = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(outer.clone()).return_error())
        .layer(CircuitBreakerLayer::new(inner).return_error())
        .service(service_fn(|_: Req| async {
            Ok::<_, std::convert::Infallible>(status(StatusCode::OK))
        }));
    for _ in 0..4 {
        let err = stack.clone().oneshot(request("x")).await.unwrap_err();
        assert!(err.is::<CircuitOpen>(), "{err}");
    }
    assert_eq!(outer.snapshot().calls, 0, "refusals are ignored");
    assert_eq!(outer.state(), State::Closed);

    // The callee's own errors still count.
    let failing = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(outer.clone()).return_error())
        .service(service_fn(|_: Req| async {
            Err::<Res, std::io::Error>(std::io::Error::other("connection reset"))
        }));
    for _ in 0..2 {
        failing.clone().oneshot(request("x")).await.unwrap_err();
    }
    assert_eq!(outer.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn slow_responses_are_slow_calls() {
    let b = breaker();
    let (mut service, mut handle) =
        mock::spawn_layer::<Req, Res, _>(CircuitBreakerLayer::new(b.clone()));
    handle.allow(2);
    for _ in 0..2 {
        assert_ready_ok!(service.poll_ready());
        let call = tokio::spawn(service.call(request("x")));
        let (_, send) = handle.next_request().await.unwrap();
        tokio::time::advance(Duration::from_millis(1500)).await;
        send.send_response(status(StatusCode::OK));
        call.await.unwrap().unwrap();
        if b.state() == State::Closed {
            assert_eq!(b.snapshot().slow_calls, 1);
        }
    }
    assert_eq!(b.state(), State::Open, "100 % slow calls");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_inside_the_breaker_counts_as_a_failure() {
    let b = breaker();
    let layer = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(b.clone()))
        .timeout(Duration::from_millis(200))
        .into_inner();
    let (mut service, mut handle) = mock::spawn_layer::<Req, Res, _>(layer);
    handle.allow(2);
    for _ in 0..2 {
        assert_ready_ok!(service.poll_ready());
        let call = tokio::spawn(service.call(request("x")));
        let _never_answered = handle.next_request().await.unwrap();
        tokio::time::advance(Duration::from_millis(200)).await;
        let err = call.await.unwrap().unwrap_err();
        assert!(err.is::<tower::timeout::error::Elapsed>());
    }
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_is_ignored_and_frees_its_probe() {
    let b = breaker();
    b.transition_to(State::HalfOpen);
    let (mut service, mut handle) =
        mock::spawn_layer::<Req, Res, _>(CircuitBreakerLayer::new(b.clone()));
    handle.allow(2);
    assert_ready_ok!(service.poll_ready());
    let call = service.call(request("probe"));
    let _ = handle.next_request().await.unwrap();
    drop(call); // e.g. the client went away
    assert_ready_ok!(service.poll_ready());
    let call = service.call(request("probe 2"));
    expect(&mut handle, "probe 2")
        .await
        .send_response(status(StatusCode::OK));
    call.await.unwrap();
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn respond_answers_http_with_503_and_retry_after() {
    let b = breaker();
    b.transition_to(State::Open);
    let (mut service, mut handle) =
        mock::spawn_layer::<Req, Res, _>(CircuitBreakerLayer::new(b).respond());
    tokio::time::advance(Duration::from_millis(10_500)).await;
    handle.allow(1);
    assert_ready_ok!(service.poll_ready());
    let response = service.call(request("x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "20"); // 19.5 s, rounded up
    assert_eq!(response.headers()["x-circuit-breaker"], "upstream");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "circuit_open");
    assert_pending!(handle.poll_request());
}

#[tokio::test(start_paused = true)]
async fn respond_answers_grpc_with_unavailable() {
    let b = breaker();
    b.transition_to(State::ForcedOpen);
    let (mut service, mut handle) =
        mock::spawn_layer::<Req, Res, _>(CircuitBreakerLayer::new(b).respond());
    handle.allow(1);
    assert_ready_ok!(service.poll_ready());
    let response = service.call(grpc_request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["grpc-status"], "14");
    assert_eq!(
        response.headers()["grpc-message"],
        "circuit breaker is forced open"
    );
    assert!(
        response.headers().get("retry-after").is_none(),
        "forced open: unknown"
    );
}

/// The default message says which state refused: a half-open breaker with its trial call out
/// is not "open", and a message of the app's own is kept.
#[tokio::test(start_paused = true)]
async fn a_half_open_breaker_with_its_trial_call_out_says_so() {
    for (rejection, message) in [
        (
            None,
            "circuit breaker is half-open and its trial calls are all out",
        ),
        (Some("try later"), "try later"),
    ] {
        let b = breaker();
        b.transition_to(State::HalfOpen);
        let layer = CircuitBreakerLayer::new(b);
        let layer = match rejection {
            Some(text) => layer.respond_with(
                espresso_common::Rejection::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    espresso_common::grpc::Code::Unavailable,
                )
                .message(text),
            ),
            None => layer.respond(),
        };
        let (mut service, mut handle) = mock::spawn_layer::<Req, Res, _>(layer);
        handle.allow(2);
        assert_ready_ok!(service.poll_ready());
        let _trial = service.call(request("trial"));
        assert_ready_ok!(service.poll_ready());
        let response = service.call(request("x")).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["message"], message);
    }
}

#[tokio::test(start_paused = true)]
async fn respond_passes_responses_through_when_closed() {
    let (mut service, mut handle) =
        mock::spawn_layer::<Req, Res, _>(CircuitBreakerLayer::new(breaker()).respond());
    handle.allow(1);
    assert_ready_ok!(service.poll_ready());
    let call = service.call(request("x"));
    let mut ok = status(StatusCode::OK);
    *ok.body_mut() = "from upstream".into();
    expect(&mut handle, "x").await.send_response(ok);
    let body = call
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body, "from upstream");
}

#[tokio::test(start_paused = true)]
async fn fallback_answers_for_the_inner_service_when_open() {
    let b = breaker();
    b.transition_to(State::Open);
    let fallback = service_fn(|req: Req| async move {
        let mut r = status(StatusCode::OK);
        *r.body_mut() = format!("cached answer for {}", req.body());
        Ok::<_, tower::BoxError>(r)
    });
    let (mut service, mut handle) =
        mock::spawn_layer::<Req, Res, _>(CircuitBreakerLayer::new(b).fallback(fallback));
    handle.allow(1);
    assert_ready_ok!(service.poll_ready());
    let response = service.call(request("q")).await.unwrap();
    assert!(response.body().get_ref().is_fallback());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "cached answer for q");
    assert_pending!(handle.poll_request());
}

#[tokio::test(start_paused = true)]
async fn per_key_layer_keeps_one_breaker_per_upstream() {
    let registry = Arc::new(
        CircuitBreakerRegistry::new(
            CircuitBreaker::builder("route").sliding_window(SlidingWindow::consecutive_failures(1)),
        )
        .unwrap(),
    );
    let layer = CircuitBreakerLayer::per_key(registry.clone(), |r: &Req| r.uri().path().to_owned());
    let (mut service, mut handle) = mock::spawn_layer::<Req, Res, _>(layer);
    handle.allow(10);
    let to = |path: &str| Request::builder().uri(path).body("").unwrap();

    assert_ready_ok!(service.poll_ready());
    let call = service.call(to("/a"));
    handle
        .next_request()
        .await
        .unwrap()
        .1
        .send_response(status(StatusCode::BAD_GATEWAY));
    call.await.unwrap();

    assert_ready_ok!(service.poll_ready());
    assert_eq!(
        service.call(to("/a")).await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_ready_ok!(service.poll_ready());
    let call = service.call(to("/b"));
    handle
        .next_request()
        .await
        .unwrap()
        .1
        .send_response(status(StatusCode::OK));
    call.await.unwrap();
    assert_eq!(registry.get(&"/a".to_owned()).state(), State::Open);
    assert_eq!(registry.get(&"/b".to_owned()).state(), State::Closed);
    assert_eq!(registry.get(&"/b".to_owned()).name(), "route:/b");
}

#[tokio::test(start_paused = true)]
async fn the_service_is_clone_and_clones_share_the_breaker() {
    let b = breaker();
    let svc = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(b.clone()).return_error())
        .service_fn(|_: Req| async { Ok::<_, std::io::Error>(status(StatusCode::BAD_GATEWAY)) });
    svc.clone().oneshot(request("1")).await.unwrap();
    svc.clone().oneshot(request("2")).await.unwrap();
    let err = svc.oneshot(request("3")).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("circuit breaker 'upstream' is open")
    );
    assert!(err.is::<CircuitOpen>());
    assert!(err.source().is_none());
}
