//! Behaviour of `DegradeLayer` driven through `tower-test` mocks.
//!
//! The mock primary answers only when a test sends its response, so a test controls exactly how
//! many requests are in flight. Time is paused (`start_paused = true`): queue waits and the
//! queueing-delay rule run on tokio's virtual clock, and `advance` moves it exactly, so the tests
//! state the rule's numbers (5 ms target, 100 ms interval) without sleeping.

use espresso_common::BoxError;
use espresso_degrade::{
    Degrade, DegradeLayer, DegradeReason, DegradeSwitch, Priority, PriorityHeader, Shed,
    limit::{Aimd, Fixed, Gradient2, GradientController},
};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::{convert::Infallible, future::poll_fn, time::Duration};
use tokio_test::{assert_pending, assert_ready, task};
use tower::{Layer, Service, service_fn};
use tower_test::mock::{self, Handle, Mock};

type Req = Request<String>;
type Res = Response<String>;

const MS: Duration = Duration::from_millis(1);

fn request() -> Req {
    Request::new(String::from("body"))
}

fn marked(priority: &str) -> Req {
    Request::builder()
        .header("x-priority", priority)
        .body(String::new())
        .unwrap()
}

/// A wrapped mock primary and the handle that answers for it.
type Wrapped<P, Q, C> = (Degrade<Mock<Req, Res>, P, Q, C>, Handle<Req, Res>);

fn wrap<P: Clone, Q: Clone, C: Clone>(layer: &DegradeLayer<P, Q, C>) -> Wrapped<P, Q, C> {
    let (mock, handle) = mock::pair();
    (layer.layer(mock), handle)
}

/// `poll_ready` then `call`, as a caller must.
async fn send<S: Service<Req>>(service: &mut S, request: Req) -> S::Future
where
    S::Error: std::fmt::Debug,
{
    poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    service.call(request)
}

async fn reply(handle: &mut Handle<Req, Res>, status: StatusCode) {
    let (_, respond) = handle
        .next_request()
        .await
        .expect("a request reached the primary");
    let mut response = Response::new(String::from("primary"));
    *response.status_mut() = status;
    respond.send_response(response);
}

async fn body<B: http_body::Body>(response: Response<B>) -> String
where
    B::Error: std::fmt::Debug,
{
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

// === the limit and the default rejection ===

#[tokio::test(start_paused = true)]
async fn over_the_limit_the_fallback_answers_at_once() {
    let layer = DegradeLayer::new(Fixed::new(1));
    let (mut service, mut handle) = wrap(&layer);

    let mut first = task::spawn(send(&mut service, request()).await);
    assert_pending!(first.poll());
    assert_eq!(layer.inflight(), 1);

    // The primary holds one request: the next one is rejected without waiting.
    let second = send(&mut service, request()).await.await.unwrap();
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.headers()["retry-after"], "1");
    assert!(body(second).await.contains("\"code\":\"overloaded\""));

    // gRPC callers get a status they understand.
    let grpc = Request::builder()
        .header("content-type", "application/grpc")
        .body(String::new())
        .unwrap();
    let third = send(&mut service, grpc).await.await.unwrap();
    assert_eq!(third.status(), StatusCode::OK);
    assert_eq!(third.headers()["grpc-status"], "8");

    reply(&mut handle, StatusCode::OK).await;
    let first = assert_ready!(first.poll()).unwrap();
    assert_eq!(body(first).await, "primary");
    assert_eq!(layer.inflight(), 0);

    // The permit came back: the primary takes the next request.
    let mut fourth = task::spawn(send(&mut service, request()).await);
    reply(&mut handle, StatusCode::OK).await;
    assert_eq!(
        assert_ready!(fourth.poll()).unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn a_custom_rejection_is_answered() {
    let rejection = espresso_common::Rejection::new(
        StatusCode::TOO_MANY_REQUESTS,
        espresso_common::grpc::Code::ResourceExhausted,
    )
    .code("busy");
    let switch = DegradeSwitch::new();
    let layer = DegradeLayer::new(Fixed::new(1))
        .switch(switch.clone())
        .respond_with(rejection);
    switch.set(true);
    let (mut service, _handle) = wrap(&layer);
    let response = send(&mut service, request()).await.await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(body(response).await.contains("\"busy\""));
}

#[tokio::test(start_paused = true)]
async fn a_custom_rejection_without_retry_after_gets_the_default_one() {
    let switch = DegradeSwitch::new();
    switch.set(true);
    let plain = espresso_common::Rejection::new(
        StatusCode::TOO_MANY_REQUESTS,
        espresso_common::grpc::Code::ResourceExhausted,
    );
    let layer = DegradeLayer::new(Fixed::new(1))
        .switch(switch.clone())
        .respond_with(plain.clone());
    let (mut service, _handle) = wrap(&layer);
    let response = send(&mut service, request()).await.await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");

    // One of its own is kept.
    let layer = DegradeLayer::new(Fixed::new(1))
        .switch(switch)
        .respond_with(plain.retry_after(Duration::from_secs(30)));
    let (mut service, _handle) = wrap(&layer);
    let response = send(&mut service, request()).await.await.unwrap();
    assert_eq!(response.headers()["retry-after"], "30");
}

#[tokio::test(start_paused = true)]
async fn a_call_without_poll_ready_polls_the_primary_itself() {
    // Hand-written hyper glue often calls a cloned service without `poll_ready`.
    let layer = DegradeLayer::new(Fixed::new(2));
    let (service, mut handle) = wrap(&layer);
    handle.allow(1);
    let mut f = task::spawn(service.clone().call(request()));
    reply(&mut handle, StatusCode::OK).await;
    let response = assert_ready!(f.poll()).unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // A primary that is not ready is still shed, not waited for.
    handle.allow(0);
    let response = service.clone().call(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(start_paused = true)]
async fn a_fallback_service_answers_when_the_primary_is_saturated() {
    let fallback = service_fn(|request: Req| async move {
        let reason = request.extensions().get::<Shed>().map(Shed::reason);
        Ok::<_, BoxError>(Response::new(format!("degraded: {reason:?}")))
    });
    let layer = DegradeLayer::new(Fixed::new(2)).fallback(fallback);
    let (mut service, mut handle) = wrap(&layer);

    // Two requests fill the limit.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut f = task::spawn(send(&mut service, request()).await);
        assert_pending!(f.poll());
        held.push(f);
    }
    let response = send(&mut service, request()).await.await.unwrap();
    assert_eq!(body(response).await, "degraded: Some(Limit)");

    // A primary that is not ready (here: it allows no more requests) counts as saturated,
    // and the caller is answered instead of waiting for it.
    handle.allow(0);
    let mut fresh = service.clone();
    let response = send(&mut fresh, request()).await.await.unwrap();
    assert_eq!(body(response).await, "degraded: Some(Saturated)");

    handle.allow(10);
    for mut f in held {
        reply(&mut handle, StatusCode::OK).await;
        assert_eq!(body(assert_ready!(f.poll()).unwrap()).await, "primary");
    }
}

#[tokio::test(start_paused = true)]
async fn return_error_fails_with_shed() {
    let layer = DegradeLayer::new(Fixed::new(1)).return_error();
    let (mut service, mut handle) = wrap(&layer);
    let mut first = task::spawn(send(&mut service, request()).await);
    assert_pending!(first.poll());
    let error = send(&mut service, request()).await.await.unwrap_err();
    let shed = error.downcast_ref::<Shed>().expect("a Shed error");
    assert_eq!(shed.reason(), DegradeReason::Limit);
    assert_eq!(error.to_string(), "request shed: concurrency limit reached");
    reply(&mut handle, StatusCode::OK).await;
    assert_ready!(first.poll()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn primary_errors_pass_through_and_release_the_permit() {
    let layer = DegradeLayer::new(Fixed::new(1));
    let (mut service, mut handle) = wrap(&layer);
    let mut first = task::spawn(send(&mut service, request()).await);
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_error(std::io::Error::other("boom"));
    let error = assert_ready!(first.poll()).unwrap_err();
    assert_eq!(error.to_string(), "boom");
    assert_eq!(layer.inflight(), 0);
}

// === refused settings ===

/// The message of the panic `f` raises.
fn refusal(f: impl FnOnce()) -> String {
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .expect_err("the setting is refused");
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => (*payload.downcast::<&str>().unwrap()).to_owned(),
    }
}

#[test]
fn a_layer_refuses_a_limit_whose_max_is_below_its_min_where_it_is_built() {
    let refused = refusal(|| {
        DegradeLayer::new(Gradient2::new().min_limit(50).max_limit(10));
    });
    assert!(
        refused.contains("`max_limit` (10) is below its `min_limit` (50)"),
        "{refused}"
    );
    let refused = refusal(|| {
        DegradeLayer::new(Aimd::new().max_limit(10).min_limit(50));
    });
    assert!(
        refused.contains("`max_limit` (10) is below its `min_limit` (50)"),
        "{refused}"
    );
    let refused = refusal(|| {
        DegradeLayer::new(GradientController::new().max_limit(2));
    });
    assert_eq!(
        refused,
        "degrade: GradientController's `max_limit` (2) is below its `min_concurrency` (3); \
         raise max_limit or lower min_concurrency"
    );
    let refused = refusal(|| {
        DegradeLayer::new(Aimd::new().max_limit(0));
    });
    assert!(refused.contains("`max_limit` is 0"), "{refused}");
}

#[test]
#[should_panic(expected = "degrade: `queue(10)` with a `queue_delay` interval of 0")]
fn a_queue_whose_delay_interval_is_zero_is_refused_when_the_layer_wraps_a_service() {
    let layer = DegradeLayer::new(Fixed::new(1))
        .queue_delay(Duration::ZERO, Duration::ZERO)
        .queue(10);
    let _ = wrap(&layer);
}

#[test]
fn a_zero_delay_interval_without_a_queue_is_fine() {
    let layer = DegradeLayer::new(Fixed::new(1)).queue_delay(Duration::ZERO, Duration::ZERO);
    assert_eq!(layer.current_limit(), 1);
}

#[test]
#[should_panic(
    expected = "degrade: the `queue_delay` interval (10ms) is shorter than its target \
                           (50ms)"
)]
fn a_delay_interval_shorter_than_its_target_is_refused() {
    let _ = DegradeLayer::new(Fixed::new(1))
        .queue(10)
        .queue_delay(50 * MS, 10 * MS);
}

#[test]
fn a_nan_or_out_of_range_sheddable_fraction_is_refused() {
    for fraction in [f64::NAN, 75.0, -0.1, f64::INFINITY] {
        let refused = refusal(|| {
            DegradeLayer::new(Fixed::new(4)).sheddable_fraction(fraction);
        });
        assert!(
            refused.starts_with("degrade: `sheddable_fraction` must be within [0, 1], got"),
            "{fraction}: {refused}"
        );
    }
    // The ends of the range are fractions too.
    let _ = DegradeLayer::new(Fixed::new(4))
        .sheddable_fraction(0.0)
        .sheddable_fraction(1.0);
}

// === the poll_ready / call contract ===

#[tokio::test(start_paused = true)]
async fn readiness_is_per_instance_and_spent_by_call() {
    let layer = DegradeLayer::new(Fixed::new(10));
    let (mut service, mut handle) = wrap(&layer);
    // A primary that takes no request yet: polled, it is not ready, and the call is shed
    // rather than sent to a primary that never said it was ready.
    handle.allow(0);
    poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    let response = service.call(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    // It takes one: the next call asks it again (a call without `poll_ready` does too).
    handle.allow(1);
    let mut first = task::spawn(service.call(request()));
    reply(&mut handle, StatusCode::OK).await;
    assert_eq!(
        assert_ready!(first.poll()).unwrap().status(),
        StatusCode::OK
    );
    // The readiness was spent by that call, and the primary takes no more.
    let response = service.call(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_request_releases_its_permit() {
    let layer = DegradeLayer::new(Fixed::new(1));
    let (mut service, _handle) = wrap(&layer);
    let mut first = task::spawn(send(&mut service, request()).await);
    assert_pending!(first.poll());
    assert_eq!(layer.inflight(), 1);
    drop(first);
    assert_eq!(layer.inflight(), 0);
}

// === the queue and its delay rule ===

#[tokio::test(start_paused = true)]
async fn a_queued_request_gets_the_next_free_permit() {
    let layer = DegradeLayer::new(Fixed::new(1)).queue(4);
    let (mut service, mut handle) = wrap(&layer);
    let mut first = task::spawn(send(&mut service, request()).await);
    assert_pending!(first.poll());
    let mut second = task::spawn(send(&mut service, request()).await);
    assert_pending!(second.poll());

    tokio::time::advance(3 * MS).await;
    reply(&mut handle, StatusCode::OK).await;
    assert_ready!(first.poll()).unwrap();
    assert!(second.is_woken());
    assert_pending!(second.poll()); // now in the primary
    reply(&mut handle, StatusCode::OK).await;
    assert_eq!(
        assert_ready!(second.poll()).unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(layer.inflight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_sheds_at_once() {
    let layer = DegradeLayer::new(Fixed::new(1)).queue(1);
    let (mut service, _handle) = wrap(&layer);
    let mut first = task::spawn(send(&mut service, request()).await);
    assert_pending!(first.poll());
    let mut second = task::spawn(send(&mut service, request()).await);
    assert_pending!(second.poll());
    let third = send(&mut service, request()).await.await.unwrap();
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(start_paused = true)]
async fn queue_delay_rule_absorbs_a_burst_then_sheds_a_standing_queue() {
    let fallback = service_fn(|request: Req| async move {
        let reason = request.extensions().get::<Shed>().map(Shed::reason);
        Ok::<_, BoxError>(Response::new(format!("{reason:?}")))
    });
    let layer = DegradeLayer::new(Fixed::new(1))
        .queue(8)
        .queue_delay(5 * MS, 100 * MS)
        .fallback(fallback);
    let (mut service, _handle) = wrap(&layer);
    let mut held = task::spawn(send(&mut service, request()).await);
    assert_pending!(held.poll());

    // Calm: a queued request may wait a whole interval (a burst), not just the target.
    let mut waiting = task::spawn(send(&mut service, request()).await);
    assert_pending!(waiting.poll());
    tokio::time::advance(50 * MS).await;
    assert_pending!(waiting.poll());
    tokio::time::advance(50 * MS).await;
    let response = assert_ready!(waiting.poll()).unwrap();
    assert_eq!(body(response).await, "Some(QueueDelay)");

    // That sojourn (100 ms ≥ 5 ms) started the clock; sojourns stay above target for an
    // interval, and the rule turns to shedding...
    let mut again = task::spawn(send(&mut service, request()).await);
    assert_pending!(again.poll());
    tokio::time::advance(100 * MS).await;
    assert_ready!(again.poll()).unwrap();

    // ...so now a queued request is given up on after the target, 5 ms.
    let mut short = task::spawn(send(&mut service, request()).await);
    assert_pending!(short.poll());
    tokio::time::advance(4 * MS).await;
    assert_pending!(short.poll());
    tokio::time::advance(MS).await;
    let response = assert_ready!(short.poll()).unwrap();
    assert_eq!(body(response).await, "Some(QueueDelay)");
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn the_rule_calms_down_once_the_queue_drains() {
    let layer = DegradeLayer::new(Fixed::new(1))
        .queue(8)
        .queue_delay(5 * MS, 20 * MS);
    let (mut service, mut handle) = wrap(&layer);
    let mut held = task::spawn(send(&mut service, request()).await);
    assert_pending!(held.poll());
    // Build a standing queue: two full waits.
    for _ in 0..2 {
        let mut w = task::spawn(send(&mut service, request()).await);
        assert_pending!(w.poll());
        tokio::time::advance(20 * MS).await;
        assert_ready!(w.poll()).unwrap();
    }
    // Now shedding: a queued request waits only 5 ms.
    let mut w = task::spawn(send(&mut service, request()).await);
    assert_pending!(w.poll());
    tokio::time::advance(5 * MS).await;
    assert_eq!(
        assert_ready!(w.poll()).unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // The primary frees up; a request admitted without waiting ends the shedding period.
    reply(&mut handle, StatusCode::OK).await;
    assert_ready!(held.poll()).unwrap();
    let mut quick = task::spawn(send(&mut service, request()).await);
    assert_pending!(quick.poll());
    // So a burst may again wait the whole interval.
    let mut w = task::spawn(send(&mut service, request()).await);
    assert_pending!(w.poll());
    tokio::time::advance(10 * MS).await;
    assert_pending!(w.poll());
    reply(&mut handle, StatusCode::OK).await;
    assert_ready!(quick.poll()).unwrap();
    assert_pending!(w.poll());
    reply(&mut handle, StatusCode::OK).await;
    assert_eq!(assert_ready!(w.poll()).unwrap().status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaves_the_queue() {
    let layer = DegradeLayer::new(Fixed::new(1)).queue(1);
    let (mut service, mut handle) = wrap(&layer);
    let mut held = task::spawn(send(&mut service, request()).await);
    assert_pending!(held.poll());
    let mut waiter = task::spawn(send(&mut service, request()).await);
    assert_pending!(waiter.poll());
    drop(waiter);
    // Its queue place is free again.
    let mut next = task::spawn(send(&mut service, request()).await);
    assert_pending!(next.poll());
    reply(&mut handle, StatusCode::OK).await;
    assert_ready!(held.poll()).unwrap();
    assert_pending!(next.poll());
    reply(&mut handle, StatusCode::OK).await;
    assert_ready!(next.poll()).unwrap();
    assert_eq!(layer.inflight(), 0);
}

// === priorities ===

#[tokio::test(start_paused = true)]
async fn sheddable_requests_are_shed_first() {
    let layer = DegradeLayer::new(Fixed::new(4)).sheddable_fraction(0.5);
    let (mut service, _handle) = wrap(&layer);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut f = task::spawn(send(&mut service, marked("sheddable")).await);
        assert_pending!(f.poll());
        held.push(f);
    }
    // Half the limit is in use: sheddable requests are turned away...
    let shed = send(&mut service, marked("sheddable")).await.await.unwrap();
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    // ...while critical (and unmarked) ones still get the rest of the limit.
    for priority in ["critical", "anything"] {
        let mut f = task::spawn(send(&mut service, marked(priority)).await);
        assert_pending!(f.poll());
        held.push(f);
    }
    let full = send(&mut service, marked("critical")).await.await.unwrap();
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(start_paused = true)]
async fn critical_waiters_are_served_before_sheddable_ones() {
    let layer = DegradeLayer::new(Fixed::new(1))
        .queue(4)
        .sheddable_fraction(1.0)
        .priority(PriorityHeader::default().unmarked(Priority::Sheddable));
    let (mut service, mut handle) = wrap(&layer);
    let mut held = task::spawn(send(&mut service, request()).await);
    assert_pending!(held.poll());
    let mut sheddable = task::spawn(send(&mut service, request()).await);
    assert_pending!(sheddable.poll());
    let mut critical = task::spawn(send(&mut service, marked("critical")).await);
    assert_pending!(critical.poll());

    reply(&mut handle, StatusCode::OK).await;
    assert_ready!(held.poll()).unwrap();
    // The later critical request got the permit.
    assert_pending!(critical.poll());
    assert_pending!(sheddable.poll());
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req.headers()["x-priority"], "critical");
    assert_pending!(sheddable.poll());
    respond.send_response(Response::new(String::new()));
    assert_ready!(critical.poll()).unwrap();
    assert_pending!(sheddable.poll()); // its turn now: in the primary
    reply(&mut handle, StatusCode::OK).await;
    assert_ready!(sheddable.poll()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_closure_decides_priorities() {
    let layer = DegradeLayer::new(Fixed::new(2))
        .sheddable_fraction(0.5)
        .priority(|request: &Req| {
            if request.uri().path() == "/batch" {
                Priority::Sheddable
            } else {
                Priority::Critical
            }
        });
    let (mut service, _handle) = wrap(&layer);
    let batch = || Request::get("/batch").body(String::new()).unwrap();
    let mut held = task::spawn(send(&mut service, batch()).await);
    assert_pending!(held.poll());
    let shed = send(&mut service, batch()).await.await.unwrap();
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    let mut other = task::spawn(send(&mut service, request()).await);
    assert_pending!(other.poll());
}

// === the manual switch ===

#[tokio::test(start_paused = true)]
async fn the_switch_forces_the_fallback_and_back() {
    let switch = DegradeSwitch::new();
    let layer = DegradeLayer::new(Fixed::new(10)).switch(switch.clone());
    let (mut service, mut handle) = wrap(&layer);

    assert!(!switch.set(true));
    let response = send(&mut service, marked("critical")).await.await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(layer.inflight(), 0);

    assert!(switch.set(false));
    let mut f = task::spawn(send(&mut service, request()).await);
    reply(&mut handle, StatusCode::OK).await;
    assert_eq!(assert_ready!(f.poll()).unwrap().status(), StatusCode::OK);
}

// === the adaptive limit sees the primary's answers ===

#[tokio::test(start_paused = true)]
async fn overload_answers_shrink_an_adaptive_limit() {
    let layer = DegradeLayer::new(Aimd::new().initial_limit(10).min_limit(1));
    let (mut service, mut handle) = wrap(&layer);
    // One 503 from the primary: ×0.9.
    let mut f = task::spawn(send(&mut service, request()).await);
    reply(&mut handle, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_ready!(f.poll()).unwrap();
    assert_eq!(layer.current_limit(), 9);
    // gRPC RESOURCE_EXHAUSTED counts too; a plain 500 does not.
    let mut f = task::spawn(send(&mut service, request()).await);
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_response(
        Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "8")
            .body(String::new())
            .unwrap(),
    );
    assert_ready!(f.poll()).unwrap();
    assert_eq!(layer.current_limit(), 8);
    // A success with few requests in flight leaves it alone (the service is not the limit).
    let mut f = task::spawn(send(&mut service, request()).await);
    reply(&mut handle, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_ready!(f.poll()).unwrap();
    assert_eq!(layer.current_limit(), 8);
}

#[tokio::test(start_paused = true)]
async fn a_lower_limit_holds_the_queue_and_a_higher_one_drains_it() {
    let layer = DegradeLayer::new(Aimd::new().initial_limit(2).min_limit(1)).queue(4);
    let (mut service, mut handle) = wrap(&layer);
    let mut a = task::spawn(send(&mut service, request()).await);
    let mut b = task::spawn(send(&mut service, request()).await);
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    let mut queued = task::spawn(send(&mut service, request()).await);
    assert_pending!(queued.poll());
    // An overload answer: limit 2 → 1 (×0.9, truncated), so the freed permit is not handed on.
    reply(&mut handle, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_ready!(a.poll()).unwrap();
    assert_eq!(layer.current_limit(), 1);
    assert_pending!(queued.poll());
    assert_eq!(layer.inflight(), 1);
    // A good answer with the limit in use: 1 → 2, and the waiter is let in.
    reply(&mut handle, StatusCode::OK).await;
    assert_ready!(b.poll()).unwrap();
    assert_eq!(layer.current_limit(), 2);
    assert_pending!(queued.poll());
    assert_eq!(layer.inflight(), 1);
    reply(&mut handle, StatusCode::OK).await;
    assert_ready!(queued.poll()).unwrap();
}

// === metrics ===

#[cfg(feature = "metrics")]
mod metrics {
    use super::*;
    use espresso_degrade::DegradeMetrics;

    #[tokio::test(start_paused = true)]
    async fn metrics_report_limit_inflight_and_routes() {
        let registry = prometheus::Registry::new();
        let layer = DegradeLayer::new(Fixed::new(1))
            .name("api")
            .metrics(DegradeMetrics::register(&registry).unwrap());
        let (mut service, mut handle) = wrap(&layer);
        let mut first = task::spawn(send(&mut service, request()).await);
        assert_pending!(first.poll());
        send(&mut service, marked("sheddable")).await.await.unwrap();

        let text = gather(&registry);
        assert!(
            text.contains("espresso_degrade_limit{name=\"api\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("espresso_degrade_inflight{name=\"api\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "espresso_degrade_requests_total{name=\"api\",priority=\"critical\",reason=\"none\",route=\"primary\"} 1"
        ), "{text}");
        assert!(text.contains(
            "espresso_degrade_requests_total{name=\"api\",priority=\"sheddable\",reason=\"limit\",route=\"fallback\"} 1"
        ), "{text}");

        reply(&mut handle, StatusCode::OK).await;
        assert_ready!(first.poll()).unwrap();
        assert!(gather(&registry).contains("espresso_degrade_inflight{name=\"api\"} 0"));

        // Registering twice fails loudly; layers share one registered set, told apart by name.
        assert!(DegradeMetrics::register(&registry).is_err());
        let shared = DegradeMetrics::register(&prometheus::Registry::new()).unwrap();
        let a = DegradeLayer::new(Fixed::new(1))
            .name("a")
            .metrics(shared.clone());
        let b = DegradeLayer::new(Fixed::new(2)).name("b").metrics(shared);
        assert_eq!((a.current_limit(), b.current_limit()), (1, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_layers_series_exist_at_zero_before_any_request() {
        let registry = prometheus::Registry::new();
        let layer = DegradeLayer::new(Fixed::new(7))
            .name("api")
            .metrics(DegradeMetrics::register(&registry).unwrap());
        let _service = wrap(&layer);
        let text = gather(&registry);
        assert!(
            text.contains("espresso_degrade_limit{name=\"api\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("espresso_degrade_queued{name=\"api\"} 0"),
            "{text}"
        );
        for reason in ["limit", "queue_delay", "switch", "saturated"] {
            let series = format!(
                "espresso_degrade_requests_total{{name=\"api\",priority=\"critical\",reason=\"{reason}\",route=\"fallback\"}} 0"
            );
            assert!(text.contains(&series), "{series} in {text}");
        }
        assert!(
            text.contains(
                "espresso_degrade_abandoned_total{name=\"api\",priority=\"sheddable\"} 0"
            ),
            "{text}"
        );
    }

    /// A queued request whose caller gives up went nowhere: counted apart, not as primary or
    /// fallback.
    #[tokio::test(start_paused = true)]
    async fn a_queued_request_given_up_is_counted_as_abandoned() {
        let registry = prometheus::Registry::new();
        let layer = DegradeLayer::new(Fixed::new(1))
            .queue(1)
            .name("api")
            .metrics(DegradeMetrics::register(&registry).unwrap());
        let (mut service, mut handle) = wrap(&layer);
        let mut held = task::spawn(send(&mut service, request()).await);
        assert_pending!(held.poll());
        let mut waiter = task::spawn(send(&mut service, marked("critical")).await);
        assert_pending!(waiter.poll());
        drop(waiter);
        // Only the request in flight went to the primary.
        reply(&mut handle, StatusCode::OK).await;
        assert_ready!(held.poll()).unwrap();
        let text = gather(&registry);
        assert!(
            text.contains("espresso_degrade_abandoned_total{name=\"api\",priority=\"critical\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("espresso_degrade_requests_total{name=\"api\",priority=\"critical\",reason=\"none\",route=\"primary\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("espresso_degrade_queued{name=\"api\"} 0"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_setter_never_changes_a_clone_taken_before() {
        let base = DegradeLayer::new(Fixed::new(1));
        let queued = base.clone().queue(1);
        let (mut plain, _plain_handle) = wrap(&base);
        let (mut with_queue, mut handle) = wrap(&queued);

        // Each layer value has its own limiter: one request in flight in each.
        let mut first = task::spawn(send(&mut with_queue, request()).await);
        assert_pending!(first.poll());
        let mut other = task::spawn(send(&mut plain, request()).await);
        assert_pending!(other.poll());
        // The queued layer queues the next request; the clone taken before has no queue and sheds.
        let mut waiting = task::spawn(send(&mut with_queue, request()).await);
        assert_pending!(waiting.poll());
        let shed = send(&mut plain, request()).await.await.unwrap();
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!((base.inflight(), queued.inflight()), (1, 1));
        reply(&mut handle, StatusCode::OK).await;
        assert_ready!(first.poll()).unwrap();
    }

    #[test]
    fn two_live_layers_under_one_name_on_one_metrics_log_a_warning() {
        let metrics = DegradeMetrics::register(&prometheus::Registry::new()).unwrap();
        let warnings = Warnings::default();
        tracing::subscriber::with_default(warnings.clone(), || {
            let first = DegradeLayer::new(Fixed::new(1)).metrics(metrics.clone());
            let _first = wrap(&first);
            assert!(warnings.take().is_empty());
            let second = DegradeLayer::new(Fixed::new(2)).metrics(metrics.clone());
            let _second = wrap(&second);
            let logged = warnings.take();
            assert_eq!(logged.len(), 1, "{logged:?}");
            assert!(
                logged[0].contains("under the name \"default\""),
                "{logged:?}"
            );
            assert!(logged[0].contains("`.name(...)`"), "{logged:?}");
        });
    }

    #[test]
    fn clones_of_one_layer_share_its_name_and_a_dropped_layer_frees_it() {
        let metrics = DegradeMetrics::register(&prometheus::Registry::new()).unwrap();
        let warnings = Warnings::default();
        tracing::subscriber::with_default(warnings.clone(), || {
            // Clones share one limiter: one set of series, rightly under one name.
            let layer = DegradeLayer::new(Fixed::new(1))
                .name("api")
                .metrics(metrics.clone());
            let clone = layer.clone();
            let services = (wrap(&layer), wrap(&clone));
            assert_eq!(layer.current_limit(), clone.current_limit());
            // Once the layer and its services are gone, another layer may take the name.
            drop((layer, clone, services));
            let next = DegradeLayer::new(Fixed::new(2))
                .name("api")
                .metrics(metrics.clone());
            let _next = wrap(&next);
            assert_eq!(warnings.take(), Vec::<String>::new());
        });
    }

    /// Records the fields of every WARN event.
    #[derive(Clone, Default)]
    struct Warnings(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl Warnings {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    impl tracing::Subscriber for Warnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() != tracing::Level::WARN {
                return;
            }
            let mut text = String::new();
            event.record(
                &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                    text.push_str(&format!("{}={value:?} ", field.name()));
                },
            );
            self.0.lock().unwrap().push(text);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    fn gather(registry: &prometheus::Registry) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }
}

// === composition ===

#[tokio::test]
async fn works_under_a_service_builder_with_an_infallible_service() {
    let inner =
        service_fn(|_: Req| async { Ok::<_, Infallible>(Response::new(String::from("ok"))) });
    let mut service = tower::ServiceBuilder::new()
        .layer(DegradeLayer::new(Fixed::new(4)))
        .service(inner);
    let response = send(&mut service, request()).await.await.unwrap();
    assert_eq!(body(response).await, "ok");
}

// === the gradient controller against a service of known capacity ===

/// Offers 3x the capacity of a 4-worker, 10 ms service on the virtual clock for 3 s and checks
/// the overload benchmark's goal once the limit has settled: goodput at least 90% of capacity,
/// admitted p99 at most twice the unloaded latency.
#[tokio::test(start_paused = true)]
async fn the_gradient_controller_keeps_admitted_latency_near_the_no_load_rtt() {
    use espresso_degrade::limit::GradientController;
    use std::sync::{Arc, Mutex};
    use tokio::{sync::Semaphore, time::Instant};
    use tower::ServiceExt;

    let service_time = 10 * MS;
    let workers = Arc::new(Semaphore::new(4));
    let capacity = 4.0 / service_time.as_secs_f64(); // 400/s
    let primary = service_fn(move |_: Req| {
        let workers = workers.clone();
        async move {
            let _slot = workers.acquire().await;
            tokio::time::sleep(service_time).await;
            Ok::<_, Infallible>(Res::new(String::new()))
        }
    });
    let layer = DegradeLayer::new(GradientController::new().seed(9));
    let service = layer.layer(primary);

    let start = Instant::now();
    let answers = Arc::new(Mutex::new(Vec::new()));
    let period = Duration::from_secs_f64(1.0 / (3.0 * capacity));
    let mut tasks = Vec::new();
    let mut due = Duration::ZERO;
    while due < Duration::from_secs(3) {
        tokio::time::sleep_until(start + due).await;
        let (service, answers) = (service.clone(), answers.clone());
        tasks.push(tokio::spawn(async move {
            // (the clock ticks in whole milliseconds, so `due` is only approximately now)
            let sent = Instant::now();
            let status = service.oneshot(request()).await.unwrap().status();
            answers.lock().unwrap().push((due, sent.elapsed(), status));
        }));
        due += period;
    }
    for task in tasks {
        task.await.unwrap();
    }

    let answers = answers.lock().unwrap();
    let settled = Duration::from_secs(1);
    let mut admitted: Vec<Duration> = answers
        .iter()
        .filter(|(due, _, status)| *due >= settled && *status == StatusCode::OK)
        .map(|&(_, latency, _)| latency)
        .collect();
    admitted.sort_unstable();
    let goodput = admitted.len() as f64 / 2.0;
    let p99 = admitted[admitted.len() * 99 / 100];
    assert!(goodput >= 0.9 * capacity, "goodput {goodput}/s");
    assert!(p99 <= 2 * service_time, "admitted p99 {p99:?}");
    // everything else was shed at once
    let shed = answers
        .iter()
        .filter(|(_, latency, status)| {
            *status == StatusCode::SERVICE_UNAVAILABLE && latency.is_zero()
        })
        .count();
    assert_eq!(
        shed + answers.iter().filter(|a| a.2 == StatusCode::OK).count(),
        answers.len()
    );
}
