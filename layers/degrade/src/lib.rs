//! Adaptive overload protection with graceful degradation, as a Tower layer.
//!
//! [`DegradeLayer`] decides per request whether the wrapped service (the *primary*) or a
//! *fallback* answers, so a service stays fast under any offered load and degrades instead of
//! failing. Triggers, combined:
//!
//! - an adaptive **concurrency limit** ([`limit`]: [`Gradient2`](limit::Gradient2),
//!   [`Aimd`](limit::Aimd), [`Vegas`](limit::Vegas), after Netflix's `concurrency-limits`;
//!   [`GradientController`](limit::GradientController), after Envoy's adaptive concurrency
//!   filter), or a [`Fixed`](limit::Fixed) one, or your own [`Limit`](limit::Limit);
//! - a short **queue** with a CoDel-style delay rule ([`queue`]): bursts wait, standing queues are
//!   shed;
//! - **priorities** ([`Priority`]): sheddable requests are admitted only below a fraction of the
//!   limit and served last from the queue;
//! - a **manual switch** ([`DegradeSwitch`]) to force degradation at run time;
//! - the primary not being ready.
//!
//! A shed request gets what every espresso layer gives a refused request
//! ([`espresso_common::refusal`]): by default a fast rejection (HTTP 503 with `Retry-After`, or
//! gRPC `RESOURCE_EXHAUSTED`; [`DegradeLayer::respond`]), or the answer of a fallback service
//! ([`DegradeLayer::fallback`]), e.g. a cheaper answer marked as degraded, or an `Err(`[`Shed`]`)`
//! ([`DegradeLayer::return_error`]; under axum's `Router::layer`, behind a `HandleErrorLayer`).
//! What counts as overload is a classification ([`overload_signals`] by default,
//! [`DegradeLayer::classify`]), made at the response head or, for a gRPC answer whose status comes
//! in the trailers, when its body ends. [`DegradeMetrics`] (the default-on `metrics` feature)
//! reports the limit, the requests in flight in the primary service and those queued for it, and
//! where requests went; `tracing` events tell when the limit changes notably, the delay rule
//! starts or stops shedding, and the switch flips.
//!
//! ```
//! use espresso_degrade::{DegradeLayer, DegradeSwitch, limit::Gradient2};
//! use http::{Request, Response, StatusCode};
//! use std::convert::Infallible;
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let switch = DegradeSwitch::new();
//! let layer = DegradeLayer::new(Gradient2::new().min_limit(4))
//!     .queue(32)
//!     .switch(switch.clone());
//! let mut service = ServiceBuilder::new()
//!     .layer(layer)
//!     .service(service_fn(|_: Request<String>| async {
//!         Ok::<_, Infallible>(Response::new(String::from("hello")))
//!     }));
//!
//! let response = service.ready().await.unwrap().call(Request::new(String::new())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! switch.set(true); // e.g. from an admin endpoint or a config reload
//! let response = service.ready().await.unwrap().call(Request::new(String::new())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(response.headers()["retry-after"], "1");
//! # }
//! ```
//!
//! A setting that cannot mean what it says (a `max_limit` below the `min_limit`, a
//! [`sheddable_fraction`](DegradeLayer::sheddable_fraction) of 75 meant as 75%...) is refused
//! with a panic naming the setter and the fix, never changed silently; see [`DegradeLayer`]'s
//! "Refused settings".
//!
//! # Only around HTTP services
//!
//! [`DegradeLayer`] wraps services of [`http::Request`]s (axum routers, tonic services, hyper
//! services): it reads each request's priority and protocol. For a service of any other request
//! type, tower's `ConcurrencyLimit` and `LoadShed` (`ServiceBuilder::concurrency_limit`,
//! `load_shed`) give a fixed limit that sheds instead of waiting.
//!
//! # Choosing a limit
//!
//! GradientController keeps admitted latency closest to the no-load RTT under sustained overload
//! (it measures that RTT itself, briefly holding the limit at its minimum about once a minute);
//! it is the one that meets "p99 at most 2x unloaded at 3x load" in the `overload` benchmark.
//! Gradient2 needs no knowledge of the service and never dips to measure, but under sustained
//! overload its long-term average drifts up, so admitted requests queue about one service time.
//! AIMD backs off on explicit overload signals and timeouts. Vegas estimates the queue from the
//! lowest RTT seen. The `overload` benchmark of `espresso-benches` measures them side by side
//! against a service of known capacity (figures in BENCHMARKS.md).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admission;
pub mod error;
pub mod future;
mod layer;
pub mod limit;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(not(feature = "metrics"))]
#[path = "metrics_off.rs"]
mod metrics;
mod overload;
mod priority;
pub mod queue;
mod reason;
mod service;
mod switch;

pub use admission::Permit;
pub use error::Shed;
pub use layer::DegradeLayer;
#[cfg(feature = "metrics")]
pub use metrics::DegradeMetrics;
pub use overload::overload_signals;
pub use priority::{Prioritize, Priority, PriorityHeader};
pub use reason::DegradeReason;
pub use service::Degrade;
pub use switch::DegradeSwitch;

// The README is the crate page on crates.io; its example runs as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
