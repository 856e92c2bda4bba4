//! The Redis backend against real Redis servers on 127.0.0.1.
//!
//! These tests run on the real clock: the GCRA runs on Redis's clock (`TIME`), and a paused
//! tokio clock would fire every call's timeout while the runtime waits for Redis's answer. They
//! use per-minute quotas, so the few milliseconds a test takes cannot change a decision.
//! The shared Redis at 127.0.0.1:6379 gets a unique key prefix per test; the tests that kill
//! Redis start their own `redis-server` on a free port.
#![cfg(feature = "redis")]

use espresso_rate_limit::{Global, Limiter, Quota, RateLimitLayer, RateLimitMetrics, RedisBackend};
use std::{
    net::SocketAddr,
    process::Stdio,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::{net::TcpListener, process::Child};

const SHARED: &str = "redis://127.0.0.1:6379";

fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "espresso-test:{}:{nanos}:{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn limiter(url: &str, prefix: &str, quota: Quota, share: f64) -> Limiter<()> {
    RateLimitLayer::new(quota)
        .key(Global)
        .name("test")
        .backend(
            RedisBackend::new(url)
                .unwrap()
                .prefix(prefix.to_owned())
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

#[tokio::test]
async fn one_limit_across_two_limiters() {
    let prefix = unique_prefix();
    // Two limiters built apart, as two processes would: they share only Redis.
    let a = limiter(SHARED, &prefix, Quota::per_minute(5), 1.0);
    let b = limiter(SHARED, &prefix, Quota::per_minute(5), 1.0);
    let mut admitted = 0;
    for _ in 0..5 {
        admitted += allowed(&a, 1).await + allowed(&b, 1).await;
    }
    assert_eq!(admitted, 5);
    let refused = a.check(&()).await;
    assert!(!refused.is_allowed());
    let retry = refused.retry_after().unwrap();
    assert!(
        retry > Duration::from_secs(11) && retry <= Duration::from_secs(12),
        "{retry:?}"
    );
    assert!(!a.is_degraded() && !b.is_degraded());
}

#[tokio::test]
async fn several_quotas_and_keys_with_ttl() {
    let prefix = unique_prefix();
    let layer = RateLimitLayer::new([Quota::per_minute(100).burst(3), Quota::per_hour(4)])
        .key(|p: &http::request::Parts| p.headers.get("x-user").cloned())
        .name("multi")
        .backend(RedisBackend::new(SHARED).unwrap().prefix(prefix.clone()));
    let limiter = layer.limiter();
    let alice = http::HeaderValue::from_static("alice");
    let bob = http::HeaderValue::from_static("bob");
    let decisions: Vec<bool> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(limiter.check(&alice).await.is_allowed());
        }
        v
    };
    assert_eq!(decisions, [true, true, true, false, false]);
    assert!(limiter.check(&bob).await.is_allowed());
    let mut conn = redis::Client::open(SHARED)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("{prefix}:multi:=alice");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    // Three of four hourly cells used: full again in 45 min.
    assert!(ttl > 44 * 60_000 && ttl <= 45 * 60_000 + 1000, "{ttl}");
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(fields.len(), 2);
}

#[tokio::test]
async fn the_script_is_reloaded_after_a_flush() {
    let prefix = unique_prefix();
    let limiter = limiter(SHARED, &prefix, Quota::per_minute(3), 1.0);
    assert_eq!(allowed(&limiter, 1).await, 1);
    let mut conn = redis::Client::open(SHARED)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(allowed(&limiter, 5).await, 2);
    assert!(!limiter.is_degraded());
}

/// A redis-server of our own, on a free port, killed on drop.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    async fn start(port: u16) -> Self {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Self { child, port };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn gather(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn falls_back_when_redis_is_killed_and_recovers_when_it_is_back() {
    let port = free_port().await;
    let redis = OwnRedis::start(port).await;
    let url = redis.url();
    let registry = prometheus::Registry::new();
    let metrics = RateLimitMetrics::register(&registry).unwrap();
    let limiter = RateLimitLayer::new(Quota::per_minute(4))
        .key(Global)
        .name("killed")
        .metrics(&metrics)
        .backend(
            RedisBackend::new(&url)
                .unwrap()
                .timeout(Duration::from_millis(200))
                .retry_interval(Duration::ZERO)
                .local_share(0.5),
        )
        .limiter();
    assert_eq!(allowed(&limiter, 1).await, 1);
    assert!(!limiter.is_degraded());

    redis.kill().await;
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

    let redis = OwnRedis::start(port).await;
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
    redis.kill().await;
}

#[tokio::test]
async fn a_silent_redis_times_out_onto_the_fallback() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let limiter = RateLimitLayer::new(Quota::per_minute(2))
        .key(Global)
        .backend(
            RedisBackend::new(&format!("redis://{addr}"))
                .unwrap()
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
        &unique_prefix(),
        Quota::per_minute(1),
        1.0,
    );
    assert!(limiter.check(&()).await.is_allowed());
    assert!(limiter.is_degraded());
    assert!(!limiter.check(&()).await.is_allowed());
}
