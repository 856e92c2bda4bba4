//! [`SlowCallLayer`]: thresholds, route labels and metrics, applied to a service.

#[cfg(feature = "metrics")]
use crate::SlowCallMetrics;
use crate::{SlowCall, policy::Policy};
use http::Method;
use std::{borrow::Cow, sync::Arc, time::Duration};
use tower_layer::Layer;

/// Settings shared by every service a layer makes.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) policy: Policy,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<SlowCallMetrics>,
    pub(crate) max_spans: usize,
}

/// Applies [`SlowCall`] to a service: times each request until its response body ends, logs one
/// WARN event with the call tree when it is slower than its threshold, and records metrics.
///
/// The threshold is global, per route (a path prefix, which for gRPC is the method path
/// `/package.Service/Method`), or chosen by a closure.
///
/// ```
/// use espresso_slow_call::SlowCallLayer;
/// use std::time::Duration;
///
/// let layer = SlowCallLayer::new(Duration::from_millis(200))
///     .route_threshold("/v1/filter", Duration::from_millis(50))
///     .route_threshold("/espresso.filter.v1.Filter/Check", Duration::from_millis(50))
///     .route("/metrics");
/// // A builder is a plain value: a setter on a copy leaves the original as it was.
/// let strict = layer.clone().max_spans(16);
/// assert!(format!("{strict:?}").contains("max_spans: 16"));
/// assert!(format!("{layer:?}").contains("max_spans: 256"));
/// ```
#[derive(Debug, Clone)]
pub struct SlowCallLayer {
    pub(crate) config: Arc<Config>,
}

/// Spans recorded per request unless [`SlowCallLayer::max_spans`] says otherwise.
pub const DEFAULT_MAX_SPANS: usize = 256;

impl SlowCallLayer {
    /// A layer that logs requests slower than `threshold`.
    pub fn new(threshold: Duration) -> Self {
        Self {
            config: Arc::new(Config {
                policy: Policy::new(threshold),
                #[cfg(feature = "metrics")]
                metrics: None,
                max_spans: DEFAULT_MAX_SPANS,
            }),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Declares a known route: requests whose path is `prefix` or below it (on `/` boundaries)
    /// are labelled `prefix` in metrics. Paths matching no known route are labelled
    /// [`UNMATCHED_ROUTE`](crate::UNMATCHED_ROUTE), so clients cannot grow the label set.
    pub fn route(mut self, prefix: &str) -> Self {
        self.config().policy.add_route(prefix, None);
        self
    }

    /// Declares a known route (as [`route`](Self::route)) with its own threshold. The longest
    /// matching prefix wins.
    pub fn route_threshold(mut self, prefix: &str, threshold: Duration) -> Self {
        self.config().policy.add_route(prefix, Some(threshold));
        self
    }

    /// Chooses thresholds with a closure of the method and path; `None` falls back to the route's
    /// or the global threshold.
    pub fn threshold_fn<F>(mut self, f: F) -> Self
    where
        F: Fn(&Method, &str) -> Option<Duration> + Send + Sync + 'static,
    {
        self.config().policy.set_threshold_fn(Arc::new(f));
        self
    }

    /// Chooses route labels with a closure of the method and path (for example to map
    /// `/users/42` to `/users/{id}`); `None` falls back to the known routes. Keep the set of
    /// labels it returns small.
    pub fn route_label<F>(mut self, f: F) -> Self
    where
        F: Fn(&Method, &str) -> Option<Cow<'static, str>> + Send + Sync + 'static,
    {
        self.config().policy.set_route_fn(Arc::new(f));
        self
    }

    /// Records into these metrics (feature `metrics`), registered once with
    /// [`SlowCallMetrics::register`]; clones of one set can feed it from several layers. The
    /// layer exports `espresso_slow_calls_total` at 0 for each route it knows when it wraps a
    /// service.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: SlowCallMetrics) -> Self {
        self.config().metrics = Some(metrics);
        self
    }

    /// At most `n` spans are recorded per request (256 by default); the tree of a request that
    /// opened more says how many were left out.
    pub fn max_spans(mut self, n: usize) -> Self {
        self.config().max_spans = n;
        self
    }
}

impl<S> Layer<S> for SlowCallLayer {
    type Service = SlowCall<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SlowCall::new(inner, self)
    }
}
