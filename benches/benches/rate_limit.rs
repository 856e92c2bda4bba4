//! Per-request cost of `espresso-rate-limit` against `tower_governor` (governor's keyed
//! limiter), with the same quota and the same key (the peer IP from a `SocketAddr` extension),
//! around the same trivial `service_fn`, in the same run.
//!
//! - `rate_limit/uncontended`: one thread, one client IP, a quota it never exceeds
//!   (1 per ns, burst 1000), so every request takes the admit path. `bare` is the trivial service
//!   alone: `layer - bare` is the layer's own cost. `espresso_fast_clock` reads quanta's clock
//!   (as governor does) instead of tokio's pausable one (`MemoryBackend::fast_clock`).
//! - `rate_limit/2_threads_*`: two threads calling clones of one service (one shared limiter),
//!   with the same client IP (`same_key`: both hit one entry) or one IP each (`two_keys`).
//!   Time per request = wall time / total requests.
//! - `rate_limit/1M_keys`: the limiter already tracks 1 000 000 client IPs (quota 1000 per hour,
//!   so no key goes idle); each request comes from one of them (a pseudo-random walk). espresso's cap is raised to 2 M for this case so
//!   nothing is evicted. The resident memory each limiter grew by while taking the 1 M keys is
//!   printed (`memory:` lines on stderr).
//! - `rate_limit/redis`: checks against a `redis-server` of the bench's own on 127.0.0.1 from
//!   one instance: `sequential` (one check at a time: the round trip) and `64_in_flight` (64
//!   concurrent checks on one multiplexed connection: throughput). checks/s = 1 / time per
//!   check. Left out, with one line saying so, where `redis-server` is not installed.
//!
//! Run: `cargo bench -p espresso-benches --bench rate_limit -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public fn

use axum::{body::Body, extract::ConnectInfo};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use espresso_rate_limit::{Global, MemoryBackend, PeerIp, Quota, RateLimitLayer, RedisBackend};
use espresso_test_support::RedisServer;
use http::{Request, Response};
use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    hint::black_box,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    pin::pin,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};
use tower::{Layer, Service, service_fn, util::ServiceFn};
use tower_governor::{GovernorLayer, governor::GovernorConfigBuilder};

type Trivial = ServiceFn<fn(Request<()>) -> Ready<Result<Response<Body>, Infallible>>>;

fn trivial() -> Trivial {
    service_fn((|_| ready(Ok(Response::new(Body::empty())))) as fn(_) -> _)
}

/// Calls the service once and drives the (immediately ready) response future.
// Never inlined, so callgrind counts each request as one call of `call` (see BENCHMARKS.md).
#[inline(never)]
fn call<S, B>(service: &mut S, request: Request<()>) -> Response<B>
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(())) = service.poll_ready(&mut cx) else {
        unreachable!("the trivial service is always ready")
    };
    let mut future = pin!(service.call(request));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => response,
        _ => unreachable!("the memory backend answers at once"),
    }
}

/// A request from `ip`, carrying the peer address both ways a server may put it: as a
/// `SocketAddr` (read by espresso; plain hyper) and as axum's `ConnectInfo` (the only place
/// tower_governor's `PeerIpKeyExtractor` looks when built with axum). Each side finds its
/// key with one extension lookup.
fn request_from(ip: IpAddr) -> Request<()> {
    let peer = SocketAddr::new(ip, 40_000);
    let mut request = Request::new(());
    request.extensions_mut().insert(peer);
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// Every service under test must admit the request (an error path would be cheaper).
fn assert_admits<S, B>(service: &mut S)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    let status = call(service, request_from(ip(0x00ff_fffe))).status();
    assert_eq!(status, http::StatusCode::OK);
}

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (n & 0x00ff_ffff)))
}

/// 1 per nanosecond with a burst of 1000: never exceeded by a benchmark loop.
fn espresso_layer() -> RateLimitLayer<PeerIp> {
    RateLimitLayer::new(Quota::new(1, Duration::from_nanos(1)).burst(1000)).key(PeerIp::new())
}

type GovernorPeerIp = GovernorLayer<
    tower_governor::key_extractor::PeerIpKeyExtractor,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
    Body,
>;

fn governor_layer() -> GovernorPeerIp {
    let config = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(1000)
        .finish()
        .expect("a valid quota");
    GovernorLayer::new(config)
}

/// 1000 per hour, burst 1000: a key stays tracked for as long as the bench runs.
fn espresso_hourly() -> RateLimitLayer<PeerIp> {
    RateLimitLayer::new(Quota::per_hour(1000)).key(PeerIp::new())
}

fn governor_hourly() -> GovernorPeerIp {
    let config = GovernorConfigBuilder::default()
        .period(Duration::from_millis(3600))
        .burst_size(1000)
        .finish()
        .expect("a valid quota");
    GovernorLayer::new(config)
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit/uncontended");
    let client = ip(1);
    let mut bare = trivial();
    group.bench_function("bare", |b| {
        b.iter(|| black_box(call(&mut bare, request_from(client))))
    });
    let mut espresso = espresso_layer().layer(trivial());
    assert_admits(&mut espresso);
    group.bench_function("espresso", |b| {
        b.iter(|| black_box(call(&mut espresso, request_from(client))))
    });
    let mut fast = espresso_layer()
        .backend(MemoryBackend::new().fast_clock(true))
        .layer(trivial());
    assert_admits(&mut fast);
    group.bench_function("espresso_fast_clock", |b| {
        b.iter(|| black_box(call(&mut fast, request_from(client))))
    });
    let mut governor = governor_layer().layer(trivial());
    assert_admits(&mut governor);
    group.bench_function("tower_governor", |b| {
        b.iter(|| black_box(call(&mut governor, request_from(client))))
    });
    group.finish();
}

/// Two threads, `iters` requests in all; returns the wall time.
fn two_threads<S, B>(service: &S, iters: u64, same_key: bool) -> Duration
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone + Send,
{
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..2u32 {
            let mut service = service.clone();
            let client = if same_key { ip(1) } else { ip(1 + t) };
            scope.spawn(move || {
                for _ in 0..iters / 2 {
                    black_box(call(&mut service, request_from(client)));
                }
            });
        }
    });
    start.elapsed()
}

fn contended(c: &mut Criterion) {
    for (name, same_key) in [("2_threads_same_key", true), ("2_threads_two_keys", false)] {
        let mut group = c.benchmark_group(format!("rate_limit/{name}"));
        let mut espresso = espresso_layer().layer(trivial());
        assert_admits(&mut espresso);
        group.bench_function("espresso", |b| {
            b.iter_custom(|iters| two_threads(&espresso, iters, same_key))
        });
        let mut governor = governor_layer().layer(trivial());
        assert_admits(&mut governor);
        group.bench_function("tower_governor", |b| {
            b.iter_custom(|iters| two_threads(&governor, iters, same_key))
        });
        group.finish();
    }
}

/// Resident set size of this process, in bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

const KEYS: u32 = 1_000_000;

/// A walk over the 1 M keys that defeats the CPU cache as real traffic would.
fn nth_key(i: u32) -> IpAddr {
    ip(i.wrapping_mul(2_654_435_761) % KEYS)
}

fn million_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit/1M_keys");

    let before = rss();
    let mut espresso = espresso_hourly()
        .backend(MemoryBackend::new().max_keys(2 * KEYS as usize))
        .layer(trivial());
    for i in 0..KEYS {
        call(&mut espresso, request_from(ip(i)));
    }
    let espresso_bytes = rss().saturating_sub(before);
    assert_admits(&mut espresso);
    let tracked = espresso.limiter().tracked_keys();

    let before = rss();
    let mut governor = governor_hourly().layer(trivial());
    for i in 0..KEYS {
        call(&mut governor, request_from(ip(i)));
    }
    let governor_bytes = rss().saturating_sub(before);
    assert_admits(&mut governor);

    // The default cap (100 000 keys) under a flood of 1 M distinct keys.
    let before = rss();
    let mut capped = espresso_hourly().layer(trivial());
    for i in 0..KEYS {
        call(&mut capped, request_from(ip(i)));
    }
    let capped_bytes = rss().saturating_sub(before);
    eprintln!(
        "memory: espresso {tracked} keys: {:.1} MiB ({:.0} B/key); tower_governor 1M keys: {:.1} MiB ({:.0} B/key); \
         espresso default cap after 1M distinct keys: {} keys tracked, {:.1} MiB",
        espresso_bytes as f64 / 1048576.0,
        espresso_bytes as f64 / f64::from(KEYS),
        governor_bytes as f64 / 1048576.0,
        governor_bytes as f64 / f64::from(KEYS),
        capped.limiter().tracked_keys(),
        capped_bytes as f64 / 1048576.0,
    );

    let mut i = 0u32;
    group.bench_function("espresso", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(call(&mut espresso, request_from(nth_key(i))))
        })
    });
    let mut i = 0u32;
    group.bench_function("tower_governor", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(call(&mut governor, request_from(nth_key(i))))
        })
    });
    group.finish();
}

fn redis(c: &mut Criterion) {
    let Some(server) = RedisServer::start_in("rate_limit/redis") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let limiter = RateLimitLayer::new(Quota::new(1, Duration::from_nanos(1)).burst(1000))
        .key(Global::new())
        .backend(
            RedisBackend::new(&server.url())
                .expect("a valid URL")
                .timeout(Duration::from_secs(1)),
        )
        .limiter();
    runtime.block_on(async {
        assert!(limiter.check(&()).await.is_allowed());
    });
    assert!(
        !limiter.is_degraded(),
        "the limiter fell back to local limits: {} did not answer",
        server.url()
    );
    let mut group = c.benchmark_group("rate_limit/redis");
    group.bench_function("sequential", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(limiter.check(&()).await);
                }
                assert!(!limiter.is_degraded());
                start.elapsed()
            })
        })
    });
    const IN_FLIGHT: u64 = 64;
    group.bench_function(BenchmarkId::new("in_flight", IN_FLIGHT), |b| {
        b.iter_custom(|iters| {
            let limiter = limiter.clone();
            runtime.block_on(async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..IN_FLIGHT)
                    .map(|t| {
                        let limiter = limiter.clone();
                        let n = iters / IN_FLIGHT + u64::from(t < iters % IN_FLIGHT);
                        tokio::spawn(async move {
                            for _ in 0..n {
                                black_box(limiter.check(&()).await);
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("a bench task");
                }
                assert!(!limiter.is_degraded());
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, uncontended, contended, million_keys, redis);
criterion_main!(benches);
