//! The Redis backend against real Redis servers on 127.0.0.1.
//!
//! These tests run on the real clock: the GCRA runs on Redis's clock (`TIME`), and a paused
//! tokio clock would fire every call's timeout while the runtime waits for Redis's answer. They
//! use per-minute quotas, so the few milliseconds a test takes cannot change a decision.
//! Each test starts a `redis-server` of its own (see `espresso-test-support`); where none is
//! installed it skips with one line, or fails under `ESPRESSO_REQUIRE_SERVICES=1`.
#![cfg(all(feature = "redis", feature = "metrics"))]

use espresso_rate_limit::{Global, Limiter, Quota, RateLimitLayer, RateLimitMetrics, RedisBackend};
use espresso_test_support::RedisServer;
use std::time::Duration;
use tokio::net::TcpListener;

const PREFIX: &str = "espresso-test";

fn limiter(url: &str, quota: Quota, share: f64) -> Limiter<()> {
    RateLimitLayer::new(quota)
        .key(Global::new())
        .name("test")
        .backend(
            RedisBackend::new(url)
                .expect("a valid Redis URL")
                .prefix(PREFIX)
                .timeout(Duration::from_millis(200))
                .retry_interval(Duration::ZERO)
                .local_share(share),
        )
        .limiter()
}

async fn allowed(limiter: &Limiter<()>, n: usize) -> usize {
    let mut count = 0;
    for _ in 0..n {
        if limiter.check(&()).await.is_allowed() {
            count += 1;
        }
    }
    count
}

/// After at least one check: the limiter decided on `redis` and left its state there, rather
/// than falling back to its local limits (which would make every count below wrong).
fn assert_on_redis(limiter: &Limiter<()>, redis: &RedisServer) {
    assert!(
        !limiter.is_degraded(),
        "the limiter fell back to local limits: {} did not answer within its timeout",
        redis.url()
    );
    let keys = redis.keys(&format!("{PREFIX}:*"));
    assert!(
        !keys.is_empty(),
        "the limiter is not degraded, yet wrote no key under {PREFIX}: to {}",
        redis.url()
    );
}

#[tokio::test]
async fn one_limit_across_two_limiters() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Two limiters built apart, as two processes would: they share only Redis.
    let a = limiter(&redis.url(), Quota::per_minute(5), 1.0);
    let b = limiter(&redis.url(), Quota::per_minute(5), 1.0);
    let mut admitted = allowed(&a, 1).await + allowed(&b, 1).await;
    assert_on_redis(&a, &redis);
    assert_on_redis(&b, &redis);
    for _ in 0..4 {
        admitted += allowed(&a, 1).await + allowed(&b, 1).await;
    }
    assert_eq!(
        admitted, 5,
        "two limiters on one Redis admit the quota once"
    );
    let refused = a.check(&()).await;
    assert!(!refused.is_allowed());
    let retry = refused.retry_after().expect("a refusal says when to retry");
    assert!(
        retry > Duration::from_secs(11) && retry <= Duration::from_secs(12),
        "{retry:?}"
    );
    assert!(!a.is_degraded() && !b.is_degraded());
}

#[tokio::test]
async fn several_quotas_and_keys_with_ttl() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let layer = RateLimitLayer::new([Quota::per_minute(100).burst(3), Quota::per_hour(4)])
        .key(|p: &http::request::Parts| p.headers.get("x-user").cloned())
        .name("multi")
        .backend(
            RedisBackend::new(&redis.url())
                .expect("a valid Redis URL")
                .prefix(PREFIX)
                // Roomier than the default 50 ms, for a busy machine.
                .timeout(Duration::from_millis(200)),
        );
    let limiter = layer.limiter();
    let alice = http::HeaderValue::from_static("alice");
    let bob = http::HeaderValue::from_static("bob");
    let mut decisions = Vec::new();
    for _ in 0..5 {
        decisions.push(limiter.check(&alice).await.is_allowed());
    }
    assert!(
        !limiter.is_degraded(),
        "the limiter fell back to local limits: {} did not answer",
        redis.url()
    );
    assert_eq!(decisions, [true, true, true, false, false]);
    assert!(limiter.check(&bob).await.is_allowed());
    let key = format!("{PREFIX}:{{multi:=alice}}");
    let ttl: i64 = redis.query(&["PTTL", &key]);
    // Three of four hourly cells used: full again in 45 min.
    assert!(ttl > 44 * 60_000 && ttl <= 45 * 60_000 + 1000, "{ttl}");
    let fields: Vec<String> = redis.query(&["HKEYS", &key]);
    assert_eq!(fields.len(), 2, "one field per quota: {fields:?}");
}

#[tokio::test]
async fn the_script_is_reloaded_after_a_flush() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let limiter = limiter(&redis.url(), Quota::per_minute(3), 1.0);
    assert_eq!(allowed(&limiter, 1).await, 1);
    assert_on_redis(&limiter, &redis);
    let _: () = redis.query(&["SCRIPT", "FLUSH"]);
    assert_eq!(allowed(&limiter, 5).await, 2);
    assert!(
        !limiter.is_degraded(),
        "the limiter fell back instead of reloading its script"
    );
}

/// A 1/min limiter on `url` holding requests up to 90 s: its first request goes on, its second
/// is held (given up after a second, once decided).
async fn hold_one_and_give_it_up(url: &str) -> Limiter<()> {
    use tower::{Layer, Service, ServiceExt};
    let layer = RateLimitLayer::new(Quota::per_minute(1))
        .key(Global::new())
        .name("held")
        .wait_up_to(Duration::from_secs(90))
        .backend(
            RedisBackend::new(url)
                .expect("a valid Redis URL")
                .prefix(PREFIX)
                .timeout(Duration::from_millis(200))
                .retry_interval(Duration::from_secs(3600)),
        );
    let limiter = layer.limiter();
    let mut service = layer.layer(tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let first = service.ready().await.unwrap().call(http::Request::new(()));
    assert_eq!(first.await.unwrap().status(), http::StatusCode::OK);
    let held = service.ready().await.unwrap().call(http::Request::new(()));
    assert!(
        tokio::time::timeout(Duration::from_secs(1), held)
            .await
            .is_err(),
        "the second request of a 1/min quota is held"
    );
    limiter
}

/// Without the give-back the next slot would be two minutes away, not one.
async fn assert_slot_given_back(limiter: &Limiter<()>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let retry = limiter.check(&()).await.retry_after().expect("refused");
        if retry <= Duration::from_secs(60) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was not given back: next in {retry:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A held request given up before its slot came gives the slot back to Redis (in the
/// background), so the next check finds it free.
#[tokio::test]
async fn a_held_request_given_up_gives_its_slot_back_to_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let limiter = hold_one_and_give_it_up(&redis.url()).await;
    assert_on_redis(&limiter, &redis);
    assert_slot_given_back(&limiter).await;
    assert!(!limiter.is_degraded());
}

/// On the local fallback, the slot goes back to the fallback's store.
#[tokio::test]
async fn on_the_fallback_a_held_request_given_up_gives_its_slot_back_there() {
    let port = free_port().await;
    let limiter = hold_one_and_give_it_up(&format!("redis://127.0.0.1:{port}")).await;
    assert!(limiter.is_degraded());
    assert_slot_given_back(&limiter).await;
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on 127.0.0.1");
    listener.local_addr().expect("a bound address").port()
}

fn gather(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("metrics encode");
    String::from_utf8(out).expect("metrics are UTF-8")
}

#[tokio::test]
async fn falls_back_when_redis_is_killed_and_recovers_when_it_is_back() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let registry = prometheus::Registry::new();
    let metrics = RateLimitMetrics::register(&registry).expect("fresh metrics register");
    let limiter = RateLimitLayer::new(Quota::per_minute(4))
        .key(Global::new())
        .name("killed")
        .metrics(metrics.clone())
        .backend(
            RedisBackend::new(&url)
                .expect("a valid Redis URL")
                .timeout(Duration::from_millis(200))
                .retry_interval(Duration::ZERO)
                .local_share(0.5),
        )
        .limiter();
    assert_eq!(allowed(&limiter, 1).await, 1);
    assert!(
        !limiter.is_degraded(),
        "the limiter fell back to local limits before the kill: {url} did not answer"
    );

    redis.kill();
    // Fail open onto the local fallback, which enforces half the quota: a burst of 2.
    assert_eq!(allowed(&limiter, 5).await, 2);
    assert!(limiter.is_degraded());
    let text = gather(&registry);
    assert!(
        text.contains(
            r#"espresso_rate_limit_backend_transitions_total{limiter="killed",to="local"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"espresso_rate_limit_backend_local{limiter="killed"} 1"#),
        "{text}"
    );

    redis.restart();
    // The connection manager reconnects by itself; give it a bounded number of tries.
    let mut recovered = false;
    for _ in 0..100 {
        limiter.check(&()).await;
        if !limiter.is_degraded() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "the limiter did not return to Redis");
    let text = gather(&registry);
    assert!(
        text.contains(
            r#"espresso_rate_limit_backend_transitions_total{limiter="killed",to="redis"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"espresso_rate_limit_backend_local{limiter="killed"} 0"#),
        "{text}"
    );
    // Back on Redis (fresh, empty): the global quota of 4 applies again, counting the probe
    // that brought it back.
    assert_eq!(allowed(&limiter, 10).await, 3);
}

#[tokio::test]
async fn a_redis_restarted_while_idle_costs_no_fallback() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let registry = prometheus::Registry::new();
    let limiter = RateLimitLayer::new(Quota::per_minute(100))
        .key(Global::new())
        .name("restarted")
        .metrics(RateLimitMetrics::register(&registry).expect("fresh metrics register"))
        .backend(
            RedisBackend::new(&redis.url())
                .expect("a valid Redis URL")
                .timeout(Duration::from_millis(500)),
        )
        .limiter();
    assert_eq!(allowed(&limiter, 1).await, 1);
    // No call while it restarts: the connection the limiter holds is dead, and its first call
    // finds out. That call is made again on a new connection, not counted as an outage.
    redis.restart();
    assert_eq!(allowed(&limiter, 1).await, 1);
    assert!(!limiter.is_degraded());
    let text = gather(&registry);
    assert!(
        text.contains(
            r#"espresso_rate_limit_backend_transitions_total{limiter="restarted",to="local"} 0"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_silent_redis_times_out_onto_the_fallback() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on 127.0.0.1");
    let addr = listener.local_addr().expect("a bound address");
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let limiter = RateLimitLayer::new(Quota::per_minute(2))
        .key(Global::new())
        .backend(
            RedisBackend::new(&format!("redis://{addr}"))
                .expect("a valid Redis URL")
                .timeout(Duration::from_millis(50))
                .retry_interval(Duration::from_secs(3600)),
        )
        .limiter();
    assert!(limiter.check(&()).await.is_allowed());
    assert!(limiter.is_degraded());
    // While degraded, the others decide locally at once, without asking Redis.
    assert!(limiter.check(&()).await.is_allowed());
    assert!(!limiter.check(&()).await.is_allowed());
    held.abort();
}

#[tokio::test]
async fn a_redis_that_is_down_at_start_is_a_fallback_not_an_error() {
    let port = free_port().await;
    let limiter = limiter(
        &format!("redis://127.0.0.1:{port}"),
        Quota::per_minute(1),
        1.0,
    );
    assert!(limiter.check(&()).await.is_allowed());
    assert!(limiter.is_degraded());
    assert!(!limiter.check(&()).await.is_allowed());
}
