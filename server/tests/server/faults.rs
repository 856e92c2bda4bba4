//! Faults under load: the classifier turns slow, fails, dies and comes back; Redis is killed and
//! restarted; the server gets SIGTERM — while 16 clients keep sending `POST /v1/filter`. Every
//! request is counted by how it ended (see [`load::Outcome`]): none may be lost (no answer) or
//! answered with anything `docs/http-api.md` does not promise, and the faults must show as
//! `degraded` answers, not errors. `cargo test -p espresso-server --test server faults --
//! --nocapture` prints each run's table and breaker timings; the long version of these runs, with
//! figures in RELIABILITY.md, is `benches/src/bin/faults`.
//!
//! The server is another process, so these runs use real time: phases are short, and bounds
//! are a breaker's own wait plus seconds of slack, so a busy machine slows a run without
//! failing it.

mod backends;
mod load;

use crate::harness::Server;
use backends::Classifier;
use espresso_test_support::{RedisServer, eventually};
use load::{Load, Monitor, Phase, table};
use std::time::Duration;
use tokio::time::{Instant, sleep};

const CLIENTS: usize = 16;
/// Requests per second of all clients: a steady load that leaves the 2 cores room for the
/// other tests running at the same time.
const RATE: Option<f64> = Some(200.0);
const PHASE: Duration = Duration::from_millis(1500);
/// How long the classifier's breaker stays open before it lets probes through
/// (`default_breaker`, which the server uses).
const CLASSIFIER_BREAKER_WAIT: Duration = Duration::from_secs(5);
/// How soon the server must use a restarted Redis again: the verdict cache's breaker
/// (`default_redis_breaker`) waits 1 s between probes and the rate limiter retries Redis once a
/// second, but a probe can meet a connection still being re-made, so allow a few rounds.
const REDIS_RECOVERY: Duration = Duration::from_secs(10);
/// Slack on top of a wait, for a busy machine.
const MARGIN: Duration = Duration::from_secs(3);
/// A rate limit the test clients never reach (the limiter still runs).
const NO_LIMIT: &str = "[rate_limit]\nper_second = 1000000\nburst = 1000000\n";

fn breaker_state(name: &str, state: &str) -> String {
    format!(r#"espresso_circuit_breaker_state{{name="{name}",state="{state}"}}"#)
}

/// No request was lost or answered with something unexpected, in any phase.
fn assert_no_request_lost_or_unexpected(phases: &[Phase], unexpected: &[String]) {
    let table = table(phases);
    for p in phases {
        assert_eq!(
            (p.lost, p.unexpected),
            (0, 0),
            "phase {}:\n{table}{unexpected:#?}",
            p.name
        );
    }
}

/// The server stayed up: no connection was refused or closed under a request.
fn assert_server_stayed_up(phases: &[Phase]) {
    for p in phases {
        assert_eq!((p.refused, p.closed), (0, 0), "{}", table(phases));
    }
}

/// Whether the server uses `redis`: the rate limiter runs its script there and the verdict cache
/// writes to it. (A restarted Redis starts empty, with fresh statistics.)
fn uses(redis: &RedisServer) -> bool {
    redis.calls("evalsha") > 0 && !redis.keys("espresso:filter:verdict:*").is_empty()
}

/// How long after `from` something happened: "already" when it held at `from`.
fn millis(from: Instant, to: Option<Instant>) -> String {
    match to {
        None => "never".into(),
        Some(to) if to == from => "already".into(),
        Some(to) => format!("{} ms", (to - from).as_millis()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_classifier_turns_slow_fails_dies_and_comes_back() {
    let mut classifier = Classifier::start().await;
    let server = Server::start(&format!(
        "[classifier]\nendpoint = \"{}\"\ntimeout_ms = 200\n{NO_LIMIT}",
        classifier.endpoint()
    ))
    .await;
    let monitor = Monitor::start(server.addr, &["espresso_circuit_breaker_state"]);
    let load = Load::start(server.addr, CLIENTS, RATE, "healthy");
    sleep(PHASE).await;

    let slow = load.phase("slow");
    classifier.rules.set_delay(Duration::from_secs(2));
    sleep(PHASE).await;

    let failing = load.phase("failing");
    let calls_before_failing = classifier.rules.calls();
    classifier.rules.set_delay(Duration::ZERO);
    classifier.rules.set_failing(true);
    sleep(PHASE).await;

    load.phase("dead");
    classifier.die().await;
    sleep(PHASE).await;

    let back = load.phase("back");
    let calls_while_failing_or_dead = classifier.rules.calls() - calls_before_failing;
    classifier.rules.set_failing(false);
    classifier.come_back().await;
    let recovered = load.first_ok(CLASSIFIER_BREAKER_WAIT + MARGIN).await;
    // Keep sending for a while after the recovery.
    sleep(Duration::from_millis(500)).await;
    let (phases, unexpected) = load.stop().await;
    let open = breaker_state("classifier", "open");
    let opened = monitor.reached(&open, 1.0, slow);
    let closed = monitor.reached(&breaker_state("classifier", "closed"), 1.0, back);
    monitor.stop().await;

    println!(
        "{}classifier breaker: open {} after the classifier turned slow; first answer with the \
         classifier's opinion {} and breaker closed {} after it came back; {} calls reached it \
         while it failed or was dead",
        table(&phases),
        millis(slow, opened),
        millis(back, recovered),
        millis(back, closed),
        calls_while_failing_or_dead,
    );
    assert_no_request_lost_or_unexpected(&phases, &unexpected);
    assert_server_stayed_up(&phases);
    let [healthy, slow_phase, failing_phase, dead_phase, back_phase] = &phases[..] else {
        unreachable!()
    };
    assert!(healthy.ok > 0, "{}", table(&phases));
    for fault in [slow_phase, failing_phase, dead_phase] {
        assert!(fault.degraded > 0, "{}", table(&phases));
    }
    let opened = opened.expect("the slow classifier opened the breaker");
    assert!(opened - slow < PHASE + MARGIN, "{:?}", opened - slow);
    // The open breaker kept the requests off the sick classifier (a few probes at most).
    let sent = failing_phase.sent() + dead_phase.sent();
    assert!(
        calls_while_failing_or_dead * 10 < sent,
        "{calls_while_failing_or_dead} of {sent}"
    );
    assert!(opened < failing, "open before the failures began");
    // Back within the breaker's wait (and a probe) of the classifier's return.
    let recovered = recovered.expect("answers with the classifier's opinion again");
    assert!(recovered - back <= CLASSIFIER_BREAKER_WAIT + MARGIN);
    assert!(closed.is_some(), "the breaker closed again");
    assert!(back_phase.ok > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_is_killed_and_restarted() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let server = Server::start(&format!(
        "[rate_limit]\nbackend = \"redis\"\nredis_url = \"{url}\"\n\
         per_second = 1000000\nburst = 1000000\n\
         [cache]\nredis_url = \"{url}\"\n"
    ))
    .await;
    let monitor = Monitor::start(
        server.addr,
        &[
            "espresso_circuit_breaker_state",
            "espresso_rate_limit_backend_local",
        ],
    );
    let load = Load::start(server.addr, CLIENTS, RATE, "redis up");
    sleep(PHASE).await;
    // The server uses Redis: at once on a quiet machine, within the poll's 5 s on a loaded one.
    eventually(|| async { uses(&redis) }).await;

    let killed = load.phase("redis killed");
    redis.kill();
    sleep(PHASE).await;

    let back = load.phase("redis back");
    redis.restart();
    let cache_open = breaker_state("filter_cache_redis", "open");
    let cache_closed = breaker_state("filter_cache_redis", "closed");
    let limiter_local = r#"espresso_rate_limit_backend_local{limiter="default"}"#;
    let recovered = || {
        monitor.reached(&cache_closed, 1.0, back).is_some()
            && monitor.reached(limiter_local, 0.0, back).is_some()
    };
    let deadline = Instant::now() + REDIS_RECOVERY;
    let mut used_again = None;
    while Instant::now() < deadline {
        if used_again.is_none() && uses(&redis) {
            used_again = Some(Instant::now());
        }
        if used_again.is_some() && recovered() {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    let (phases, unexpected) = load.stop().await;
    let cache_opened = monitor.reached(&cache_open, 1.0, killed);
    let limiter_fell_back = monitor.reached(limiter_local, 1.0, killed);
    let cache_recovered = monitor.reached(&cache_closed, 1.0, back);
    let limiter_recovered = monitor.reached(limiter_local, 0.0, back);
    monitor.stop().await;

    println!(
        "{}after the kill: cache breaker open {}, rate limiter on its local fallback {}; \
         after the restart: cache breaker closed {}, rate limiter on Redis {}, both in use {}",
        table(&phases),
        millis(killed, cache_opened),
        millis(killed, limiter_fell_back),
        millis(back, cache_recovered),
        millis(back, limiter_recovered),
        millis(back, used_again),
    );
    assert_no_request_lost_or_unexpected(&phases, &unexpected);
    assert_server_stayed_up(&phases);
    // A Redis outage costs neither answers nor their quality: the word lists are local.
    for p in &phases {
        assert!(p.ok > 0, "{}", table(&phases));
    }
    assert!(cache_opened.is_some_and(|at| at < back));
    assert!(limiter_fell_back.is_some_and(|at| at < back));
    assert!(used_again.is_some(), "the server writes to Redis again");
    assert!(cache_recovered.is_some() && limiter_recovered.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_the_requests_it_accepted() {
    sigterm_under_load(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_shutdown_delay_no_connection_closes_under_a_request() {
    sigterm_under_load(Duration::from_millis(1000)).await;
}

/// SIGTERM while 16 clients are busy, with `server.shutdown_delay_ms = delay`.
async fn sigterm_under_load(delay: Duration) {
    let classifier = Classifier::start().await;
    // A call takes longer than a client's interval (16 clients at 200 requests/s: 80 ms), so
    // every client has a request in flight when the signal lands.
    classifier.rules.set_delay(Duration::from_millis(100));
    let drain = Duration::from_secs(5);
    let mut server = Server::start_with(
        &format!(
            "drain_timeout_ms = {}\nshutdown_delay_ms = {}",
            drain.as_millis(),
            delay.as_millis()
        ),
        &format!(
            "[classifier]\nendpoint = \"{}\"\ntimeout_ms = 1000\n{NO_LIMIT}",
            classifier.endpoint()
        ),
    )
    .await;
    let load = Load::start(server.addr, CLIENTS, RATE, "serving");
    sleep(PHASE).await;

    let signal = load.phase("after SIGTERM");
    server.terminate();
    let clean_exit = server.wait().await;
    let exited = signal.elapsed();
    // The clients find the port closed.
    sleep(Duration::from_millis(300)).await;
    let (phases, unexpected) = load.stop().await;

    println!(
        "{}exit {} ms after SIGTERM; {} requests in flight at the signal were answered",
        table(&phases),
        exited.as_millis(),
        phases[0].answered_late
    );
    assert!(clean_exit, "exit status 0");
    assert!(exited < delay + drain + MARGIN, "{exited:?}");
    assert_no_request_lost_or_unexpected(&phases, &unexpected);
    let [serving, after] = &phases[..] else {
        unreachable!()
    };
    assert!(serving.answered_late > 0, "{}", table(&phases));
    assert!(after.refused > 0, "later connections are refused");
    // Without a delay, a request written on a keep-alive connection in the instant the server
    // closed it as idle is never read, and the client sees the connection close: at most one
    // per connection. With one, clients are told `Connection: close` with an answer first.
    let closed = serving.closed + after.closed;
    if delay.is_zero() {
        assert!(closed <= CLIENTS as u64, "{}", table(&phases));
    } else {
        assert_eq!(closed, 0, "{}", table(&phases));
    }
}
