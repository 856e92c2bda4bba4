//! A circuit breaker with resilience4j's depth, usable directly or as a Tower layer.
//!
//! A breaker watches the outcomes of calls to something that can fail (an upstream HTTP or gRPC
//! service, Redis, a classifier) and, when too many fail or are slow, stops calling it for a
//! while: calls fail at once instead of piling up. After a wait it lets a few probe calls
//! through, and their outcome closes it again or re-opens it.
//!
//! - **States**: CLOSED, OPEN, HALF_OPEN, and DISABLED, FORCED_OPEN, METRICS_ONLY, switchable at
//!   run time with [`CircuitBreaker::transition_to`] (see [`State`]).
//! - **Windows** ([`SlidingWindow`]): the last N calls, the last N seconds in buckets, or N
//!   failures in a row. The failure rate and the slow-call rate (calls longer than a threshold)
//!   are checked after every call once the window holds the minimum number of calls, so the
//!   breaker can open before a window fills.
//! - **Recovery**: OPEN → HALF_OPEN after a fixed wait or a [`Backoff`] (exponential, with
//!   jitter), without needing a call; HALF_OPEN lets N probes through, optionally with a maximum
//!   wait for them.
//! - **Failures** are a policy ([`Classify`](espresso_common::classify::Classify)): by default an
//!   `Err`, HTTP 5xx, and gRPC `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `INTERNAL`, `UNKNOWN`,
//!   `DATA_LOSS`; any closure can decide, and [`Outcome::Ignored`] results do not count.
//! - **When open**: the refusal policy every espresso layer shares
//!   ([`espresso_common::refusal`]): an HTTP 503 / gRPC `UNAVAILABLE` response with `Retry-After`
//!   (`.respond()`, the default), an error ([`CircuitOpen`], `.return_error()`), or a fallback
//!   service (`.fallback(service)`). Without Tower, [`CircuitBreaker::call`] fails with
//!   [`CallError::Open`].
//! - **Observability**: [`Event`]s to a callback and to `tracing`; Prometheus [`CircuitBreakerMetrics`]
//!   (the default-on `metrics` feature).
//! - **Per key**: [`CircuitBreakerRegistry`] and [`CircuitBreakerLayer::per_key`].
//!
//! # Without Tower
//!
//! ```
//! use espresso_circuit_breaker::{CallError, CircuitBreaker, SlidingWindow, State};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let breaker = CircuitBreaker::builder("redis")
//!     .sliding_window(SlidingWindow::count(10))
//!     .minimum_number_of_calls(4)
//!     .failure_rate_threshold(50.0)
//!     .wait_in_open(Duration::from_secs(5))
//!     .build()
//!     .unwrap();
//!
//! for _ in 0..4 {
//!     let result: Result<(), CallError<&str>> = breaker.call(async { Err("connection refused") }).await;
//!     assert!(matches!(result, Err(CallError::Inner(_))));
//! }
//! assert_eq!(breaker.state(), State::Open);
//! let rejected = breaker.call(async { Ok::<_, &str>("PONG") }).await.unwrap_err();
//! let open = rejected.as_open().unwrap(); // CallError::Open: the future never ran
//! assert!(open.retry_after().unwrap() <= Duration::from_secs(5));
//! # }
//! ```
//!
//! The lower-level form is [`CircuitBreaker::try_acquire`], which returns a [`Permit`] to record
//! the outcome on ([`Permit::record`] or [`Permit::complete`]); a permit dropped unrecorded counts
//! as [`Outcome::Ignored`] unless configured otherwise.
//!
//! # As a Tower layer
//!
//! ```
//! use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerLayer};
//! use http::{Request, Response, StatusCode};
//! use std::convert::Infallible;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let breaker = CircuitBreaker::builder("upstream").minimum_number_of_calls(1).build().unwrap();
//! let service = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::new(breaker.clone()).respond())
//!     .service_fn(|_: Request<String>| async {
//!         let mut response = Response::new(String::new());
//!         *response.status_mut() = StatusCode::BAD_GATEWAY;
//!         Ok::<_, Infallible>(response)
//!     });
//!
//! let first = service.clone().oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(first.status(), StatusCode::BAD_GATEWAY); // a 5xx: the breaker opens
//! let second = service.oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(second.headers()["retry-after"], "60");
//! # }
//! ```
//!
//! # Around a service that is not HTTP
//!
//! The default answer to a refused call is an HTTP or gRPC response, and the default classifier
//! reads HTTP responses. Around any other service, fail refused calls with
//! [`return_error`](CircuitBreakerLayer::return_error) and classify with a closure (it sees the
//! results as the layer returns them, errors boxed):
//!
//! ```
//! use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, CircuitOpen, Outcome};
//! use tower::{BoxError, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let breaker = CircuitBreaker::builder("store").minimum_number_of_calls(1).build().unwrap();
//! let store = ServiceBuilder::new()
//!     .layer(
//!         CircuitBreakerLayer::new(breaker)
//!             .return_error()
//!             .classify(|result: Result<&u64, &BoxError>| match result {
//!                 Ok(_) => Outcome::Success,
//!                 Err(_) => Outcome::Failure,
//!             }),
//!     )
//!     .service_fn(|_: &'static str| async { Err::<u64, _>(std::io::Error::other("down")) });
//!
//! assert!(store.clone().oneshot("key").await.is_err()); // fails: the breaker opens
//! let refused = store.oneshot("key").await.unwrap_err();
//! assert!(refused.is::<CircuitOpen>());
//! # }
//! ```
//!
//! When a bound does not hold (the default `.respond()` around a non-HTTP service), handing the
//! service to anything that requires `Service` (`Router::layer`, a `fn f<S: Service<R>>(s: S)`)
//! fails with an error (E0277) that names the policy or classifier that does not fit and what to
//! use instead. A method called on the service itself (`.oneshot(..)`) fails with E0599 "its
//! trait bounds were not satisfied" instead, which lists the unmet bounds without that advice.
//!
//! # Time, and transitions nobody asked for
//!
//! All instants are [`tokio::time::Instant`]s, so tests with `tokio::time::pause()` and
//! `advance` are exact. The wait in OPEN (and the half-open timeout) is checked from time every
//! time the breaker is looked at, by a call, [`CircuitBreaker::state`] or a metrics scrape, so it
//! is exact without any task. Inside a Tokio runtime the breaker also spawns one timer task per
//! opening (holding only a weak reference), so the transition's [`Event`] and trace fire when
//! the wait runs out even if no one looks. The event's `at` is always that instant.
//!
//! # Hot path
//!
//! A CLOSED breaker with a count window takes no lock: the state is an `ArcSwap` read, the window
//! a ring of atomic slots with one packed atomic total. A time window takes a short lock around
//! its bucket totals. Transitions take a lock, and calls permitted in one state never count in
//! the next (each stay in a state is a fresh generation).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod breaker;
mod config;
mod error;
mod future;
mod keyed;
mod layer;
#[cfg(feature = "metrics")]
mod metrics;
mod select;
mod service;
mod state;
mod wait;
mod window;

pub use breaker::{CircuitBreaker, Permit};
pub use config::{CircuitBreakerBuilder, ConfigError, MAX_WINDOW_SIZE, SlidingWindow};
pub use error::{CallError, CircuitOpen};
pub use espresso_common::classify::Outcome;
pub use future::ResponseFuture;
pub use keyed::CircuitBreakerRegistry;
pub use layer::CircuitBreakerLayer;
#[cfg(feature = "metrics")]
pub use metrics::CircuitBreakerMetrics;
pub use select::{PerKey, SelectBreaker};
pub use service::CircuitBreakerService;
pub use state::{Event, State};
pub use wait::{Backoff, WaitInterval};
pub use window::WindowSnapshot;

// The README is the crate page on crates.io; its example runs as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
