//! The breaker's state machine, driven through the core API.
//!
//! Every test runs with Tokio's clock paused: the breaker reads `tokio::time::Instant`, so
//! `advance` moves it exactly and a test can say "one millisecond before the wait runs out"
//! without sleeping. Durations passed to `Permit::record` are what the breaker sees as the
//! call's length, which is how slow calls are made here.

use espresso_circuit_breaker::{
    Backoff, CallError, CircuitBreaker, CircuitBreakerRegistry, Event, Outcome, SlidingWindow,
    State,
};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::time::{Instant, advance};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn succeed(b: &CircuitBreaker) {
    b.try_acquire()
        .expect("permitted")
        .record(Outcome::Success, ms(1));
}

fn fail(b: &CircuitBreaker) {
    b.try_acquire()
        .expect("permitted")
        .record(Outcome::Failure, ms(1));
}

/// A breaker that decides on 4 calls out of the last 10, opens at 50 % and waits 10 s.
fn small() -> espresso_circuit_breaker::CircuitBreakerBuilder {
    CircuitBreaker::builder("test")
        .sliding_window(SlidingWindow::count(10))
        .minimum_number_of_calls(4)
        .failure_rate_threshold(50.0)
        .permitted_calls_in_half_open(2)
        .wait_in_open(secs(10))
}

fn recorder() -> (
    Arc<Mutex<Vec<Event>>>,
    impl Fn(&Event) + Send + Sync + 'static,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    (events, move |e: &Event| {
        sink.lock().unwrap().push(e.clone())
    })
}

fn transitions(events: &Mutex<Vec<Event>>) -> Vec<(State, State)> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::StateTransition { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn minimum_calls_are_checked_as_soon_as_reached_not_when_the_window_fills() {
    let b = small().build().unwrap();
    for _ in 0..3 {
        fail(&b);
    }
    // 100 % failures, but only 3 of the 4 calls needed: no decision yet.
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().failed_calls, 3);
    fail(&b);
    // The 4th call reaches the minimum; the window (10) is far from full.
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_failure_rate_below_the_threshold_keeps_it_closed() {
    let b = small().build().unwrap();
    // 4 failures out of 10 = 40 %, and then the window slides on successes.
    for i in 0..30 {
        if i % 10 < 4 && i >= 10 {
            fail(&b);
        } else {
            succeed(&b);
        }
        assert_eq!(b.state(), State::Closed, "call {i}");
    }
    let s = b.snapshot();
    assert_eq!((s.calls, s.failed_calls), (10, 4));
    // New failures first displace the window's four oldest calls, which failed too.
    for _ in 0..4 {
        fail(&b);
        assert_eq!(b.state(), State::Closed);
    }
    fail(&b); // displaces a success: 5 of the last 10 failed, and 50 % opens (>= threshold)
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_count_window_never_waits_for_more_calls_than_it_holds() {
    let b = CircuitBreaker::builder("t")
        .sliding_window(SlidingWindow::count(3))
        .minimum_number_of_calls(100)
        .build()
        .unwrap();
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), State::Closed);
    fail(&b);
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_it_even_when_they_succeed() {
    let b = small()
        .slow_call_duration_threshold(ms(500))
        .slow_call_rate_threshold(75.0)
        .build()
        .unwrap();
    let call = |d| b.try_acquire().unwrap().record(Outcome::Success, d);
    call(ms(500)); // exactly the threshold: not slow
    call(ms(501));
    call(ms(900));
    call(ms(10));
    assert_eq!(b.snapshot().slow_calls, 2);
    assert_eq!(b.state(), State::Closed);
    call(secs(3));
    call(secs(3)); // 4 slow of the last 6 = 66 %
    assert_eq!(b.state(), State::Closed);
    call(secs(3)); // 5 of 7 = 71 %
    assert_eq!(b.state(), State::Closed);
    call(secs(3)); // 6 of 8 = 75 %
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn complete_measures_the_call_with_the_paused_clock() {
    let b = small()
        .slow_call_duration_threshold(secs(1))
        .build()
        .unwrap();
    let permit = b.try_acquire().unwrap();
    advance(ms(1500)).await;
    permit.complete(Outcome::Success);
    assert_eq!(b.snapshot().slow_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn a_time_window_forgets_calls_older_than_its_duration() {
    let b = CircuitBreaker::builder("t")
        .sliding_window(SlidingWindow::time(secs(10)))
        .minimum_number_of_calls(4)
        .build()
        .unwrap();
    fail(&b);
    fail(&b);
    fail(&b);
    advance(secs(10)).await;
    // The three failures have aged out with their bucket.
    assert_eq!(b.snapshot().calls, 0);
    fail(&b);
    assert_eq!(b.state(), State::Closed);
    advance(secs(5)).await;
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), State::Closed);
    fail(&b); // four failures within 10 s
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_mode_counts_a_streak_that_a_success_breaks() {
    let b = CircuitBreaker::builder("t")
        .sliding_window(SlidingWindow::consecutive_failures(3))
        .permitted_calls_in_half_open(2)
        .wait_in_open(secs(1))
        .build()
        .unwrap();
    fail(&b);
    fail(&b);
    succeed(&b);
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().failed_calls, 2);
    fail(&b);
    assert_eq!(b.state(), State::Open);

    // Half-open: one failed probe re-opens at once; two good ones close.
    advance(secs(1)).await;
    fail(&b);
    assert_eq!(b.state(), State::Open);
    advance(secs(1)).await;
    succeed(&b);
    assert_eq!(b.state(), State::HalfOpen);
    succeed(&b);
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn open_rejects_with_the_rest_of_the_wait_then_half_opens_by_itself() {
    let (events, listener) = recorder();
    let b = small().on_event(listener).build().unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    let opened = Instant::now();
    advance(secs(4)).await;
    let open = b.try_acquire().unwrap_err();
    assert_eq!(open.state(), State::Open);
    assert_eq!(open.retry_after(), Some(secs(6)));
    assert_eq!(open.name(), "test");
    assert!(open.to_string().contains("circuit breaker 'test' is open"));

    advance(ms(5999)).await;
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(ms(1)));

    // The wait runs out; no call is made. The breaker's timer task looks at it on time.
    advance(ms(1)).await;
    tokio::task::yield_now().await;
    assert_eq!(
        transitions(&events),
        vec![(State::Closed, State::Open), (State::Open, State::HalfOpen)]
    );
    let at = events.lock().unwrap().iter().find_map(|e| match e {
        Event::StateTransition {
            to: State::HalfOpen,
            at,
            ..
        } => Some(*at),
        _ => None,
    });
    assert_eq!(at, Some(opened + secs(10)));
    assert_eq!(b.state(), State::HalfOpen);
    let rejected = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::CallNotPermitted { .. }))
        .count();
    assert_eq!(rejected, 2);
}

#[tokio::test(start_paused = true)]
async fn the_transition_is_computed_from_time_even_without_a_runtime_timer() {
    // Whether or not the timer task has run yet, `state()` alone, after the clock moved,
    // reports HALF_OPEN, and the transition is reported once.
    let (events, listener) = recorder();
    let b = small().on_event(listener).build().unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    advance(secs(25)).await; // long past the wait
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(
        transitions(&events),
        vec![(State::Closed, State::Open), (State::Open, State::HalfOpen)]
    );
}

#[tokio::test(start_paused = true)]
async fn without_automatic_transition_it_stays_open_until_a_call_comes() {
    let b = small()
        .automatic_transition_from_open_to_half_open(false)
        .build()
        .unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    advance(secs(30)).await;
    tokio::task::yield_now().await;
    assert_eq!(b.state(), State::Open);
    let probe = b
        .try_acquire()
        .expect("the wait is over: a probe goes through");
    assert_eq!(b.state(), State::HalfOpen);
    probe.record(Outcome::Success, ms(1));
}

#[tokio::test(start_paused = true)]
async fn without_automatic_transition_the_half_open_wait_starts_at_the_call() {
    // A breaker with nobody calling for long past both waits: the first call is a probe, and
    // the half-open wait counts from it, not from the end of the open wait.
    let b = small()
        .automatic_transition_from_open_to_half_open(false)
        .max_wait_in_half_open(secs(1))
        .build()
        .unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    advance(secs(3600)).await;
    let probe = b
        .try_acquire()
        .expect("the wait is over: a probe goes through");
    assert_eq!(b.state(), State::HalfOpen);
    advance(ms(900)).await;
    assert_eq!(b.state(), State::HalfOpen);
    probe.record(Outcome::Success, ms(1));
    advance(ms(200)).await; // the half-open wait, counted from the call, is over
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_exactly_n_probes_through_and_their_outcome_decides() {
    let b = small().build().unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    advance(secs(10)).await;
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    let busy = b.try_acquire().unwrap_err();
    assert_eq!((busy.state(), busy.retry_after()), (State::HalfOpen, None));
    p1.record(Outcome::Success, ms(1));
    assert_eq!(
        b.state(),
        State::HalfOpen,
        "one probe of two is not a decision"
    );
    assert!(
        b.try_acquire().is_err(),
        "a recorded probe does not free a slot"
    );
    p2.record(Outcome::Success, ms(1));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().calls, 0, "closing starts an empty window");
}

#[tokio::test(start_paused = true)]
async fn failed_probes_reopen_it() {
    let b = small().build().unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    advance(secs(10)).await;
    succeed(&b);
    fail(&b); // 1 of 2 = 50 %
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(secs(10)));
}

#[tokio::test(start_paused = true)]
async fn ignored_and_dropped_probes_give_their_slot_back() {
    let b = small().build().unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    advance(secs(10)).await;
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    p1.record(Outcome::Ignored, ms(1));
    let p3 = b
        .try_acquire()
        .expect("the ignored probe's slot is free again");
    drop(p2);
    let p4 = b
        .try_acquire()
        .expect("the dropped probe's slot is free again");
    assert_eq!(b.snapshot().calls, 0, "neither counted");
    p3.record(Outcome::Success, ms(1));
    p4.record(Outcome::Success, ms(1));
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn dropped_calls_can_count_as_failures() {
    let b = small()
        .dropped_call_outcome(Outcome::Failure)
        .build()
        .unwrap();
    for _ in 0..4 {
        drop(b.try_acquire().unwrap());
    }
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_call_permitted_while_closed_never_counts_as_a_probe() {
    let b = small().build().unwrap();
    let straggler = b.try_acquire().unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    advance(secs(10)).await;
    assert_eq!(b.state(), State::HalfOpen);
    straggler.record(Outcome::Failure, secs(10));
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.snapshot().calls, 0);
}

#[tokio::test(start_paused = true)]
async fn half_open_reopens_when_its_probes_take_longer_than_the_max_wait() {
    let (events, listener) = recorder();
    let b = small()
        .max_wait_in_half_open(secs(3))
        .on_event(listener)
        .build()
        .unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    advance(secs(10)).await;
    let half_opened = Instant::now();
    let probe = b.try_acquire().unwrap();
    advance(ms(2999)).await;
    assert_eq!(b.state(), State::HalfOpen);
    advance(ms(1)).await;
    tokio::task::yield_now().await;
    assert_eq!(
        transitions(&events).last(),
        Some(&(State::HalfOpen, State::Open))
    );
    // The probe that finishes late is from the past and changes nothing.
    probe.record(Outcome::Success, secs(3));
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(secs(10)),
        "the new wait starts when the half-open time ran out"
    );
    let at = events.lock().unwrap().iter().rev().find_map(|e| match e {
        Event::StateTransition {
            to: State::Open,
            at,
            ..
        } => Some(*at),
        _ => None,
    });
    assert_eq!(at, Some(half_opened + secs(3)));
}

#[tokio::test(start_paused = true)]
async fn the_wait_grows_exponentially_with_each_failed_recovery_and_resets_on_close() {
    let b = small()
        .wait_interval(Backoff::exponential(secs(1), 2.0).max(secs(5)))
        .build()
        .unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    let mut waits = Vec::new();
    for _ in 0..5 {
        let wait = b.try_acquire().unwrap_err().retry_after().unwrap();
        waits.push(wait);
        advance(wait).await;
        fail(&b); // a failed probe round (2 probes, 1 failure = 50 %)
        fail(&b);
    }
    assert_eq!(waits, vec![secs(1), secs(2), secs(4), secs(5), secs(5)]);
    advance(secs(5)).await;
    succeed(&b);
    succeed(&b);
    assert_eq!(b.state(), State::Closed);
    for _ in 0..4 {
        fail(&b);
    }
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(secs(1)));
}

#[tokio::test(start_paused = true)]
async fn jittered_waits_stay_in_their_band() {
    let b = small()
        .wait_interval(Backoff::exponential(secs(10), 1.0).jitter(0.5))
        .build()
        .unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    let wait = b.try_acquire().unwrap_err().retry_after().unwrap();
    assert!(wait >= secs(5) && wait <= secs(15), "{wait:?}");
    advance(wait).await;
    assert_eq!(b.state(), State::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn forced_open_rejects_everything_until_told_otherwise() {
    let b = small().build().unwrap();
    b.transition_to(State::ForcedOpen);
    let open = b.try_acquire().unwrap_err();
    assert_eq!(
        (open.state(), open.retry_after()),
        (State::ForcedOpen, None)
    );
    advance(secs(3600)).await;
    assert_eq!(b.state(), State::ForcedOpen);
    b.transition_to(State::Closed);
    succeed(&b);
}

#[tokio::test(start_paused = true)]
async fn disabled_lets_everything_through_and_records_nothing() {
    let b = small().build().unwrap();
    b.transition_to(State::Disabled);
    for _ in 0..50 {
        fail(&b);
    }
    assert_eq!(b.state(), State::Disabled);
    assert_eq!(b.snapshot().calls, 0);
}

#[tokio::test(start_paused = true)]
async fn metrics_only_records_but_never_opens() {
    let b = small().build().unwrap();
    b.transition_to(State::MetricsOnly);
    for _ in 0..50 {
        fail(&b);
    }
    assert_eq!(b.state(), State::MetricsOnly);
    let s = b.snapshot();
    assert_eq!((s.calls, s.failed_calls), (10, 10));
    assert_eq!(s.failure_rate(), 100.0);
}

#[tokio::test(start_paused = true)]
async fn manual_transitions_and_reset() {
    let (events, listener) = recorder();
    let b = small().on_event(listener).build().unwrap();
    b.transition_to(State::Open);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(secs(10)));
    b.transition_to(State::HalfOpen);
    assert_eq!(b.state(), State::HalfOpen);
    fail(&b);
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().calls, 0);
    assert_eq!(
        transitions(&events),
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
    assert!(matches!(
        events.lock().unwrap().last(),
        Some(Event::Reset { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn call_runs_the_future_only_when_permitted() {
    let b = small().build().unwrap();
    let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..4 {
        let ran = ran.clone();
        let r: Result<(), CallError<&str>> = b
            .call(async move {
                ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err("down")
            })
            .await;
        assert_eq!(r.unwrap_err().into_inner(), Some("down"));
    }
    let ran2 = ran.clone();
    let r = b
        .call(async move {
            ran2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, &str>(())
        })
        .await;
    assert!(r.unwrap_err().as_open().is_some());
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn call_classified_can_ignore_errors() {
    let b = small().build().unwrap();
    let not_found_is_fine = |r: Result<&(), &&str>| match r {
        Err(&"not found") => Outcome::Ignored,
        Err(_) => Outcome::Failure,
        Ok(_) => Outcome::Success,
    };
    for _ in 0..10 {
        let _ = b
            .call_classified(not_found_is_fine, async { Err::<(), _>("not found") })
            .await;
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().calls, 0);
}

#[tokio::test(start_paused = true)]
async fn per_key_breakers_open_independently() {
    let registry = CircuitBreakerRegistry::new(small()).unwrap();
    let a = registry.get(&"a");
    for _ in 0..4 {
        fail(&a);
    }
    assert_eq!(registry.get(&"a").state(), State::Open);
    assert_eq!(registry.get(&"b").state(), State::Closed);
    assert_eq!(registry.len(), 2);
    assert_eq!(registry.get(&"b").name(), "test:b");
    registry.remove(&"a");
    assert_eq!(registry.get(&"a").state(), State::Closed);
}

#[cfg(feature = "metrics")]
#[tokio::test(start_paused = true)]
async fn prometheus_reports_state_rates_and_calls_and_sees_time_pass() {
    use espresso_circuit_breaker::CircuitBreakerMetrics;
    let registry = prometheus::Registry::new();
    let metrics = CircuitBreakerMetrics::register(&registry).unwrap();
    let b = small().name("redis").metrics(metrics).build().unwrap();
    succeed(&b);
    b.try_acquire().unwrap().record(Outcome::Failure, secs(61));
    fail(&b);
    fail(&b);
    let _ = b.try_acquire().unwrap_err();
    let text = gather(&registry);
    for line in [
        r#"espresso_circuit_breaker_state{name="redis",state="open"} 1"#,
        r#"espresso_circuit_breaker_state{name="redis",state="closed"} 0"#,
        r#"espresso_circuit_breaker_calls_total{name="redis",outcome="success"} 1"#,
        r#"espresso_circuit_breaker_calls_total{name="redis",outcome="slow_failure"} 1"#,
        r#"espresso_circuit_breaker_calls_total{name="redis",outcome="failure"} 2"#,
        r#"espresso_circuit_breaker_calls_total{name="redis",outcome="rejected"} 1"#,
        r#"espresso_circuit_breaker_transitions_total{from="closed",name="redis",to="open"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    // The scrape itself sees the wait run out.
    advance(secs(10)).await;
    let text = gather(&registry);
    assert!(
        text.contains(r#"espresso_circuit_breaker_state{name="redis",state="half_open"} 1"#),
        "{text}"
    );
    drop(b);
    assert!(
        !gather(&registry).contains("espresso_circuit_breaker_state{"),
        "a dropped breaker is gone"
    );
}

#[cfg(feature = "metrics")]
fn gather(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .unwrap();
    String::from_utf8(buf).unwrap()
}

#[test]
fn bad_configurations_are_refused_not_panicked_on() {
    let cases = [
        CircuitBreaker::builder("t").failure_rate_threshold(0.0),
        CircuitBreaker::builder("t").failure_rate_threshold(f64::NAN),
        CircuitBreaker::builder("t").slow_call_rate_threshold(101.0),
        CircuitBreaker::builder("t").minimum_number_of_calls(0),
        CircuitBreaker::builder("t").permitted_calls_in_half_open(0),
        CircuitBreaker::builder("t").sliding_window(SlidingWindow::count(0)),
        CircuitBreaker::builder("t").sliding_window(SlidingWindow::count(u32::MAX)),
        CircuitBreaker::builder("t").sliding_window(SlidingWindow::time(Duration::ZERO)),
        CircuitBreaker::builder("t").sliding_window(SlidingWindow::consecutive_failures(0)),
        CircuitBreaker::builder("t").slow_call_duration_threshold(Duration::ZERO),
        CircuitBreaker::builder("t").max_wait_in_half_open(Duration::ZERO),
        CircuitBreaker::builder(""),
        CircuitBreaker::builder("two\nlines"),
    ];
    for builder in cases {
        let err = builder.clone().build().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid circuit breaker configuration")
        );
        assert!(CircuitBreakerRegistry::<String>::new(builder).is_err());
    }
}

/// Real threads, real contention: the probe count is exact and a trip is reported once.
#[test]
fn under_threads_half_open_issues_exactly_n_probes_and_trips_are_reported_once() {
    let b = small().permitted_calls_in_half_open(5).build().unwrap();
    b.transition_to(State::HalfOpen);
    let granted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..200)
                        .filter_map(|_| b.try_acquire().ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let permits: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = permits.len();
        for p in permits {
            p.record(Outcome::Success, ms(1));
        }
        n
    });
    assert_eq!(granted, 5);
    assert_eq!(b.state(), State::Closed);

    let (events, listener) = recorder();
    let b = CircuitBreaker::builder("t")
        .sliding_window(SlidingWindow::count(50))
        .minimum_number_of_calls(10)
        .on_event(listener)
        .build()
        .unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..500 {
                    if let Ok(p) = b.try_acquire() {
                        p.record(Outcome::Failure, ms(1));
                    }
                }
            });
        }
    });
    assert_eq!(transitions(&events), vec![(State::Closed, State::Open)]);
}

#[cfg(feature = "metrics")]
#[test]
fn a_breakers_series_exist_at_zero_before_any_call() {
    use espresso_circuit_breaker::CircuitBreakerMetrics;
    let registry = prometheus::Registry::new();
    let metrics = CircuitBreakerMetrics::register(&registry).unwrap();
    let _b = small().name("fresh").metrics(metrics).build().unwrap();
    let text = gather(&registry);
    for line in [
        r#"espresso_circuit_breaker_state{name="fresh",state="closed"} 1"#,
        r#"espresso_circuit_breaker_failure_ratio{name="fresh"} 0"#,
        r#"espresso_circuit_breaker_calls_total{name="fresh",outcome="failure"} 0"#,
        r#"espresso_circuit_breaker_calls_total{name="fresh",outcome="rejected"} 0"#,
        r#"espresso_circuit_breaker_transitions_total{from="closed",name="fresh",to="open"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(
        CircuitBreakerMetrics::register(&registry).is_err(),
        "registering twice is an error, never a silent no-op"
    );
}

#[cfg(feature = "metrics")]
#[test]
fn two_live_breakers_of_one_name_cannot_report_into_one_set_of_metrics() {
    use espresso_circuit_breaker::CircuitBreakerMetrics;
    let registry = prometheus::Registry::new();
    let metrics = CircuitBreakerMetrics::register(&registry).unwrap();
    let first = small()
        .name("dup")
        .metrics(metrics.clone())
        .build()
        .unwrap();
    let err = small()
        .name("dup")
        .metrics(metrics.clone())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("`dup`"), "{err}");
    // the name is free again once the first breaker is gone
    drop(first);
    let again = small().name("dup").metrics(metrics).build().unwrap();
    again.transition_to(State::ForcedOpen);
    let text = gather(&registry);
    assert!(
        text.contains(r#"espresso_circuit_breaker_state{name="dup",state="forced_open"} 1"#),
        "{text}"
    );
}

#[cfg(feature = "metrics")]
#[test]
fn a_dropped_breakers_series_leave_the_scrape() {
    use espresso_circuit_breaker::CircuitBreakerMetrics;
    let registry = prometheus::Registry::new();
    let metrics = CircuitBreakerMetrics::register(&registry).unwrap();
    let keys = CircuitBreakerRegistry::new(small().name("db").metrics(metrics)).unwrap();
    let kept = keys.get(&"a");
    fail(&keys.get(&"b"));
    assert!(gather(&registry).contains(r#"name="db:b""#));
    drop(keys.remove(&"b"));
    let text = gather(&registry);
    assert!(!text.contains(r#"name="db:b""#), "{text}");
    assert!(
        text.contains(r#"espresso_circuit_breaker_calls_total{name="db:a",outcome="success"} 0"#),
        "{text}"
    );
    drop(kept);
}

#[tokio::test(start_paused = true)]
async fn an_uncapped_backoff_outgrows_no_clock() {
    let b = small()
        .wait_interval(Backoff::exponential(secs(1), 10.0))
        .build()
        .unwrap();
    for _ in 0..100 {
        b.transition_to(State::Open);
        b.transition_to(State::HalfOpen);
        for _ in 0..4 {
            if let Ok(p) = b.try_acquire() {
                p.record(Outcome::Failure, ms(1));
            }
        }
    }
    b.transition_to(State::Open);
    assert_eq!(b.state(), State::Open);
    let open = b.try_acquire().unwrap_err();
    assert!(open.retry_after().unwrap() > secs(86_400 * 365));
}
