//! Keyed GCRA rate limiting for Tower, local and global (Redis).
//!
//! [`RateLimitLayer`] admits each key's requests at a steady rate with a burst, in plain words
//! ([`Quota::per_second(100).burst(200)`](Quota)), and answers the rest with HTTP 429 or gRPC
//! `RESOURCE_EXHAUSTED`, with `Retry-After` and the IETF `RateLimit` / `RateLimit-Policy`
//! headers. It works unchanged under axum `Router::layer`, tonic `Server::builder().layer` and
//! plain hyper.
//!
//! ```
//! use espresso_rate_limit::{Global, Quota, RateLimitLayer};
//! use http::{Request, Response, StatusCode};
//! use std::convert::Infallible;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut service = ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(Quota::per_second(1).burst(2)).key(Global::new()))
//!     .service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) });
//!
//! for expected in [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
//!     let response = service.ready().await.unwrap().call(Request::new(())).await.unwrap();
//!     assert_eq!(response.status(), expected);
//! }
//! # }
//! ```
//!
//! # Mounting
//!
//! ```
//! use espresso_rate_limit::{PeerIp, Quota, RateLimitLayer};
//!
//! let limit = RateLimitLayer::new(Quota::per_second(100).burst(200)).key(PeerIp::new());
//!
//! // axum: serve with `app.into_make_service_with_connect_info::<SocketAddr>()` so the peer
//! // address is there to key by (feature `axum`). Without it every request is refused with a
//! // 500 naming this fix (see `MissingKey`), never silently limited as one client.
//! let app: axum::Router = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "hi" }))
//!     .layer(limit.clone());
//!
//! // tonic: gRPC callers get RESOURCE_EXHAUSTED (feature `tonic` for the peer address).
//! let server = tonic::transport::Server::builder().layer(limit);
//! ```
//!
//! Under plain hyper, insert the connection's `SocketAddr` into each request's extensions, and
//! let hyper-util's `TowerToHyperService` call the stack (it drives it to readiness first):
//!
//! ```no_run
//! use espresso_rate_limit::{PeerIp, Quota, RateLimitLayer};
//! use http::{Request, Response};
//! use hyper::body::Incoming;
//! use hyper_util::{rt::{TokioExecutor, TokioIo}, server::conn::auto, service::TowerToHyperService};
//! use std::convert::Infallible;
//! use tower::ServiceBuilder;
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(Quota::per_second(10)).key(PeerIp::new()))
//!     .service_fn(|_: Request<Incoming>| async { Ok::<_, Infallible>(Response::new(String::new())) });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! loop {
//!     let (stream, peer) = listener.accept().await?;
//!     let service = ServiceBuilder::new()
//!         .map_request(move |mut request: Request<Incoming>| {
//!             request.extensions_mut().insert(peer); // the key `PeerIp` reads
//!             request
//!         })
//!         .service(app.clone());
//!     tokio::spawn(async move {
//!         let http = auto::Builder::new(TokioExecutor::new());
//!         http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)).await
//!     });
//! }
//! # }
//! ```
//!
//! # What it offers
//!
//! - **Quotas** ([`Quota`], [`Quotas`]): "N per period, burst B", several at once (all must
//!   admit; a refused request counts against none), per-key overrides (a map or a closure), and
//!   changes at runtime through a [`QuotaHandle`] without losing any key's state.
//! - **Keys** ([`key`] module): [`Global`], [`PeerIp`] (forwarded headers honoured only from
//!   trusted proxies, walked from the right), [`Header`], [`Route`], tuples, closures, and
//!   [`ConfigKey`] for `"ip" | "global" | "header:<name>"` settings. A request without a key
//!   follows [`MissingKey`]: refused with a 500 naming the cause, one WARN line and a metric by
//!   default; one shared bucket or no limit only when asked.
//! - **Bounded memory**: the in-process store ([`MemoryBackend`]) evicts idle keys inline and
//!   holds a hard cap on keys, so a flood of random keys cannot grow it; nothing to spawn.
//! - **Answers**, as every refusing espresso layer gives them: a
//!   [`Rejection`](espresso_common::Rejection) response (the default,
//!   [`respond`](RateLimitLayer::respond)), `Err(`[`RateLimited`]`)` with
//!   [`return_error`](RateLimitLayer::return_error), or another service's answer with
//!   [`fallback`](RateLimitLayer::fallback); headers on refusals or on
//!   every response ([`HeaderMode`]); waiting up to a bound instead of refusing
//!   ([`RateLimitLayer::wait_up_to`]); [shadow mode](RateLimitLayer::shadow).
//! - **Metrics** (feature `metrics`, on by default: `RateLimitMetrics`): Prometheus counters
//!   per limiter and decision, every series at 0 from the start.
//! - **Plain values**: builder methods never change a clone taken before, and the
//!   [`QuotaHandle`] stays bound to the layer (see [`RateLimitLayer`]).
//! - **Redis** (feature `redis`): `RedisBackend` makes the limit global across instances, on
//!   one Redis, a Redis Cluster or a Sentinel-managed master, with one atomic script call per
//!   request (`GlobalMode::Exact`) or leases of each key's budget spent locally
//!   (`GlobalMode::Leased`), and falls back to a local limiter while Redis is slow, down or
//!   failing over.
//!
//! # The algorithm
//!
//! GCRA, as governor implements it, with the same meaning of a quota and the same decisions
//! (checked against governor in the tests): each key keeps one "theoretical arrival time"
//! (TAT) per quota; a request is admitted when `TAT - now <= (burst - 1) * interval`, and moves
//! the TAT one interval on. The state is one `u64` per key and quota, with no timers. Why the
//! store around it is this crate's own rather than governor's keyed state: see
//! [`MemoryBackend`]. [`clock::TokioClock`] puts governor's own limiters on tokio's clock.
//!
//! # From a server config
//!
//! The demo server's `[rate_limit]` section (`per_second`, `burst`, `key`, `backend`,
//! `redis_url`) maps one to one onto the builder:
//!
//! ```
//! use espresso_rate_limit::{ConfigKey, MemoryBackend, Quota, RateLimitLayer};
//!
//! let (per_second, burst, key) = (1000, 2000, "ip");
//! let layer = RateLimitLayer::new(Quota::per_second(per_second).burst(burst))
//!     .key(key.parse::<ConfigKey>().unwrap())
//!     .backend(MemoryBackend::new()); // or RedisBackend::new(redis_url)? with feature `redis`
//! // With feature `metrics`: `.metrics(RateLimitMetrics::register(&registry)?)`.
//! ```
//!
//! # Testing with paused time
//!
//! The limiter reads [`tokio::time::Instant`], so under `#[tokio::test(start_paused = true)]`
//! time only moves with `tokio::time::advance`: "burst, then one request per 100 ms" can be
//! asserted exactly (see this crate's `tests/layer.rs`). The Redis backend runs on Redis's
//! clock instead; its tests use per-minute quotas on the real clock.
//!
//! # Global accuracy
//!
//! `scripts/redis_accuracy.sh` (from the workspace root) runs three processes of the
//! `redis_accuracy` example sharing a 300/s limit against the local Redis for 10 s and checks
//! that they admit 300/s ± 10 % together.
//!
//! # Features
//!
//! - `axum`: the peer address from axum's `ConnectInfo<SocketAddr>`, routes from `MatchedPath`.
//! - `tonic`: the peer address from tonic's `TcpConnectInfo`.
//! - `redis`: the Redis backend.
//! - `metrics` (default): Prometheus counters (`RateLimitMetrics`); without it, no prometheus
//!   in the dependency tree.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
pub mod clock;
mod error;
mod future;
pub mod headers;
pub mod key;
mod layer;
mod limiter;
#[cfg(feature = "metrics")]
mod metrics;
mod quota;
mod service;

pub use backend::{Decision, MemoryBackend};
#[cfg(feature = "redis")]
pub use backend::{GlobalMode, RedisBackend};
pub use error::RateLimited;
/// Where the Redis backend's Redis lives: one node, a Redis Cluster or a Sentinel-managed master.
#[cfg(feature = "redis")]
pub use espresso_common::redis::RedisTarget;
pub use future::ResponseFuture;
pub use headers::HeaderMode;
pub use key::{
    Cidr, ConfigKey, ForwardedHeader, Global, Header, KeyExtractor, LimitKey, PeerIp, Route,
};
pub use layer::RateLimitLayer;
pub use limiter::{Backend, Limiter, QuotaHandle};
#[cfg(feature = "metrics")]
pub use metrics::RateLimitMetrics;
pub use quota::{Quota, Quotas};
pub use service::{KeyNotFound, MissingKey, RateLimit, RateLimitPolicy};

// The README is the crate page on crates.io; its example runs as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
