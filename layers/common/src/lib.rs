//! Pieces every espresso layer shares, written once.
//!
//! - [`Rejection`]: the answer a layer gives instead of calling its inner service (rate limited,
//!   circuit open, shed). It becomes an HTTP response with a JSON body, or a gRPC trailers-only
//!   response with `grpc-status`, depending on the request's content type.
//! - [`refusal`]: what a refusing layer does with a refused request, the same three ways in every
//!   layer: [`Respond`](refusal::Respond) with a [`Rejection`] (the default),
//!   [`ReturnError`](refusal::ReturnError), or a [`Fallback`](refusal::Fallback) service.
//! - [`RejectBody`]: the response body of a layer that may reject, wrapping the inner body;
//!   [`FallbackBody`]: the inner body or a fallback service's, whatever its type.
//! - [`classify`]: what counts as a failed call (an `Err`, HTTP 5xx, chosen gRPC codes), decided
//!   at the response head or, for a gRPC status sent in the trailers, when the body ends; shared
//!   by breakers, adaptive limits, slow-call logs and metrics.
//! - [`RequestId`]: the request id type every layer can read from request extensions.
//! - `redis` (feature `redis`): `RedisTarget` (one node, a Redis Cluster or a Sentinel-managed
//!   master) and `RedisConnection`, the lazy, bounded, self-healing connection the rate limiter
//!   and the verdict cache share.
//! - `metrics` (feature `metrics`): registering a layer's Prometheus families all or none.
//!
//! The refusal pieces ([`Rejection`], [`refusal`], [`RejectBody`], [`FallbackBody`]) are the
//! default feature `refusal`, which brings `serde_json` for the JSON bodies; a layer that only
//! reads the request id or classifies responses depends on this crate with
//! `default-features = false`.
//!
//! ```
//! # #[cfg(not(feature = "refusal"))] fn main() {}
//! # #[cfg(feature = "refusal")] fn main() {
//! use espresso_common::{grpc::Code, RejectBody, Rejection};
//! use http::{Request, StatusCode};
//! use std::time::Duration;
//!
//! let request = Request::new(());
//! let rejection = Rejection::new(StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted)
//!     .code("rate_limited")
//!     .message("too many requests")
//!     .retry_after(Duration::from_secs(2));
//! let response: http::Response<RejectBody<String>> = rejection.to_response(&request);
//! assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(response.headers()["retry-after"], "2");
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "refusal")]
mod body;
pub mod classify;
pub mod grpc;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "refusal")]
pub mod refusal;
#[cfg(feature = "refusal")]
mod rejection;
mod request_id;
pub mod series;

#[cfg(feature = "refusal")]
pub use body::{FallbackBody, RejectBody};
#[cfg(feature = "refusal")]
pub use rejection::Rejection;
pub use request_id::RequestId;

/// The error type layers widen to when they must (as tower does).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

// The README is the crate page on crates.io; its example runs as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
