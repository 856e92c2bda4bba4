//! The Redis backend on a Redis Cluster and under Sentinel, through failovers, and leased
//! global limits, against real local nodes (see `espresso-test-support`).
//!
//! Like `tests/redis.rs`, these run on the real clock (the GCRA runs on Redis's clock) with
//! per-minute quotas, so the seconds a failover takes cannot change a decision. The lease
//! arithmetic itself is tested on paused time in `src/backend/lease.rs`.
#![cfg(all(feature = "redis", feature = "metrics"))]

use espresso_rate_limit::{
    Global, GlobalMode, Limiter, Quota, RateLimitLayer, RateLimitMetrics, RedisBackend,
};
use espresso_test_support::{RedisCluster, RedisSentinel, RedisServer};
use std::time::{Duration, Instant};

fn layer(name: &str, quota: Quota, backend: RedisBackend) -> (Limiter<()>, prometheus::Registry) {
    let registry = prometheus::Registry::new();
    let metrics = RateLimitMetrics::register(&registry).expect("fresh metrics register");
    let limiter = RateLimitLayer::new(quota)
        .key(Global::new())
        .name(name)
        .metrics(metrics)
        .backend(
            backend
                .prefix("espresso-test")
                .timeout(Duration::from_millis(200))
                .retry_interval(Duration::from_millis(100)),
        )
        .limiter();
    (limiter, registry)
}

fn transitions(registry: &prometheus::Registry, name: &str, to: &str) -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("metrics encode");
    let text = String::from_utf8(out).expect("metrics are UTF-8");
    let series =
        format!("espresso_rate_limit_backend_transitions_total{{limiter=\"{name}\",to=\"{to}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or("absent")
        .to_owned()
}

async fn allowed(limiter: &Limiter<()>, n: usize) -> usize {
    let mut count = 0;
    for _ in 0..n {
        count += usize::from(limiter.check(&()).await.is_allowed());
    }
    count
}

/// Checks once every 20 ms until the limiter decides on Redis again (bounded); how long that
/// took.
async fn back_on_redis(limiter: &Limiter<()>, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        limiter.check(&()).await;
        if !limiter.is_degraded() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "still on the local fallback after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_cluster_holds_one_limit_and_survives_a_master_failover() {
    let Some(mut cluster) = RedisCluster::start() else {
        return;
    };
    let backend = || RedisBackend::cluster(cluster.urls()).expect("valid seed URLs");
    // Two limiters built apart, as two processes would: they share only the cluster.
    let (a, registry) = layer("cluster", Quota::per_minute(1000).burst(5), backend());
    let (b, _) = layer("cluster", Quota::per_minute(1000).burst(5), backend());
    let admitted = allowed(&a, 3).await + allowed(&b, 4).await;
    assert!(
        !a.is_degraded() && !b.is_degraded(),
        "the cluster did not answer"
    );
    assert_eq!(
        admitted, 5,
        "two limiters on one cluster admit the burst once"
    );

    // The hash tag puts the key in the slot of `cluster:=` (the tag's text; `=` is the
    // global key).
    let key = "espresso-test:{cluster:=}";
    let master = cluster.master_of(key);
    let fields: Vec<String> = cluster.nodes()[master].query(&["HKEYS", key]);
    assert_eq!(fields, ["1"], "the key lives on the master of its slot");

    cluster.kill(master);
    // During the failover every check is answered (local fallback), none fails.
    let failover = Instant::now();
    for _ in 0..20 {
        let _ = a.check(&()).await;
    }
    assert!(a.is_degraded(), "the dead master's slot answered");
    assert_eq!(transitions(&registry, "cluster", "local"), "1");
    let promoted = cluster.wait_for_new_master_of(key, master);
    let detected = failover.elapsed();
    let back = back_on_redis(&a, Duration::from_secs(5)).await;
    eprintln!("cluster failover: new master after {detected:?}, back on Redis {back:?} later");
    assert_eq!(
        transitions(&registry, "cluster", "local"),
        "1",
        "logged once"
    );
    assert_eq!(transitions(&registry, "cluster", "redis"), "1");
    let fields: Vec<String> = cluster.nodes()[promoted].query(&["HKEYS", key]);
    assert_eq!(fields, ["1"], "the promoted replica holds the key");
}

#[tokio::test]
async fn sentinel_finds_the_new_master_after_a_failover() {
    let Some(mut sentinel) = RedisSentinel::start() else {
        return;
    };
    let backend = RedisBackend::sentinel([sentinel.sentinel_url()], RedisSentinel::MASTER)
        .expect("valid Sentinel URLs");
    let (limiter, registry) = layer("sentinel", Quota::per_minute(3), backend);
    assert_eq!(allowed(&limiter, 1).await, 1);
    assert!(!limiter.is_degraded(), "the master did not answer");
    let key = "espresso-test:{sentinel:=}";
    assert_eq!(sentinel.master().keys("espresso-test:*"), [key]);

    sentinel.kill_master();
    for _ in 0..5 {
        let _ = limiter.check(&()).await;
    }
    assert!(limiter.is_degraded());
    sentinel.wait_for_failover();
    let back = back_on_redis(&limiter, Duration::from_secs(5)).await;
    eprintln!("sentinel failover: back on Redis {back:?} after the promotion");
    assert_eq!(
        transitions(&registry, "sentinel", "local"),
        "1",
        "logged once"
    );
    assert_eq!(transitions(&registry, "sentinel", "redis"), "1");
    assert!(
        sentinel
            .replica()
            .keys("espresso-test:*")
            .contains(&key.to_owned()),
        "the limiter writes to the promoted replica"
    );
}

#[tokio::test]
async fn leased_limiters_share_one_limit_with_few_redis_calls() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // 600 a minute with a burst of 200: two leased limiters each sent 300 requests at once.
    let quota = || Quota::per_minute(600).burst(200);
    let backend = || {
        RedisBackend::new(&redis.url())
            .expect("a valid Redis URL")
            .global_mode(GlobalMode::Leased)
    };
    let (a, _) = layer("leased", quota(), backend());
    let (b, _) = layer("leased", quota(), backend());
    let mut admitted = 0;
    for _ in 0..300 {
        admitted += allowed(&a, 1).await + allowed(&b, 1).await;
        // Background renewals land between requests, as they would under real traffic.
        tokio::task::yield_now().await;
    }
    // Renewals still on their way, tokens still held and holds after a short lease would
    // count as under-admission: drain them for 300 ms (3 tokens of the per-minute rate).
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        admitted += allowed(&a, 20).await + allowed(&b, 20).await;
    }
    assert!(!a.is_degraded() && !b.is_degraded(), "Redis did not answer");
    // Leased tokens count in Redis when granted: no more than the burst (plus what one more
    // second of the per-minute rate adds) is ever admitted, however the leases fall; once
    // drained, nearly all of it is (12 runs: 203 each time).
    eprintln!("leased: {admitted} admitted of 200");
    assert!((190..=212).contains(&admitted), "{admitted} admitted");
    let calls = redis.calls("evalsha");
    assert!(
        calls * 4 <= admitted as u64,
        "{calls} lease calls for {admitted} admitted"
    );
    // Over the limit: refused locally, not one Redis call per request.
    let before = redis.calls("evalsha");
    assert_eq!(allowed(&a, 100).await, 0);
    assert!(redis.calls("evalsha") - before <= 3);
}
