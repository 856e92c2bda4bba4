//! The remote stages of the espresso filter: a verdict cache and a gRPC text classifier, as
//! Tower layers over any `Service<FilterRequest, Response = FilterResponse>` of
//! [`espresso_filter_core`] (the engine, its word lists and `FilterService` live there).
//!
//! The usual stack puts the cache outside the classifier, so a cache hit skips the classifier
//! (the cached verdict already holds its opinion):
//!
//! ```standalone_crate
//! use espresso_filter_stages::{CacheLayer, ClassifierLayer, LabelMap};
//! use espresso_filter_core::{Engine, FilterRequest, FilterService, Verdict};
//! use std::time::Duration;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builtin();
//! let service = ServiceBuilder::new()
//!     .layer(CacheLayer::new(engine.clone()).ttl(Duration::from_secs(60)))
//!     .layer(
//!         ClassifierLayer::lazy("http://127.0.0.1:9")? // nothing listens there
//!             .timeout(Duration::from_millis(100))
//!             .labels(LabelMap::default().label("ADVERTISEMENT", Verdict::Block)),
//!     )
//!     .service(FilterService::new(engine));
//!
//! let response = service.oneshot(FilterRequest::new("hello")).await?;
//! assert_eq!(response.verdict, Verdict::Pass);
//! assert!(response.degraded); // the classifier was skipped, and this answer is not cached
//! # Ok(())
//! # }
//! ```
//!
//! Both stages are never the reason a request fails: a classifier that is slow, failing, down
//! or behind an open breaker leaves the local verdict with `degraded: true` within the stage
//! timeout; a Redis that is slow or down leaves the local cache only.
//!
//! Each stage opens an INFO span of its own (`cache`, `classifier`), so a slow request's call
//! tree (espresso-slow-call) and an exported trace show which remote call took the time.
//!
//! # Features
//!
//! - `otel`: the classifier stage forwards the W3C trace context (`traceparent`) of its span,
//!   through `espresso-slow-call`'s OpenTelemetry propagation.
//! - `test-support`: `classifier::rules::RuleClassifier`, a keyword-rule TextClassifier
//!   server for tests, examples and benches. Off by default; not for production.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cache;
pub mod classifier;
mod health;
mod metrics;
pub mod proto;

pub use cache::default_redis_breaker;
pub use cache::{Cache, CacheLayer, RedisCache};
pub use classifier::{
    Classifier, ClassifierClient, ClassifierError, ClassifierLayer, LabelMap, default_breaker,
};
/// Where the shared cache's Redis lives: one node, a Redis Cluster or a Sentinel-managed master.
pub use espresso_common::redis::RedisTarget;
pub use metrics::{CacheMetrics, ClassifierMetrics};

// The README is the crate page on crates.io; its example runs as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
