//! Prometheus metrics of [`SlowCallLayer`](crate::SlowCallLayer) (feature `metrics`).

use crate::policy::{RouteLabel, method_label};
use espresso_common::series::KeptSeries;
use http::Method;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// Default latency histogram bounds, in seconds: a 1-2-5 series from 50 µs to 10 s, so that a
/// sub-millisecond answer and a multi-second one both land in a bucket that resolves them.
///
/// ```
/// use espresso_slow_call::DEFAULT_BUCKETS;
///
/// assert_eq!(DEFAULT_BUCKETS.first(), Some(&0.000_05));
/// assert_eq!(DEFAULT_BUCKETS.last(), Some(&10.0));
/// // Neighbouring bounds are at most 2.5 times apart.
/// assert!(DEFAULT_BUCKETS.windows(2).all(|w| w[1] / w[0] <= 2.5 + 1e-9));
/// ```
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_2, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
    2.0, 5.0, 10.0,
];

/// The request metrics, registered into a caller-supplied [`Registry`]:
///
/// - `http_server_request_duration_seconds{method, route, status}`: histogram of the time from
///   the request's arrival to the end of its response body.
/// - `espresso_slow_calls_total{route}`: requests slower than their threshold.
/// - `http_server_active_requests`: requests in flight (body not finished yet).
///
/// `status` is the HTTP status code (`"200"`), the gRPC status name for gRPC calls (`"OK"`,
/// `"UNAVAILABLE"`), `"cancelled"` when the client went away first, and `"error"` when the inner
/// service or the body failed. `route` is a known route or
/// [`UNMATCHED_ROUTE`](crate::UNMATCHED_ROUTE); `method` is a standard method or `_OTHER`.
///
/// A layer given these metrics exports `espresso_slow_calls_total` at 0 for every route it
/// knows; [`expect`](Self::expect) does the same for a histogram series.
///
/// ```
/// use espresso_slow_call::{SlowCallLayer, SlowCallMetrics};
/// use std::time::Duration;
///
/// let registry = prometheus::Registry::new();
/// let metrics = SlowCallMetrics::register(&registry)?;
/// let _layer = SlowCallLayer::new(Duration::from_millis(200))
///     .route("/v1/filter")
///     .metrics(metrics.clone());
/// // A second registration into the same registry is an error, not a silent no-op.
/// assert!(SlowCallMetrics::register(&registry).is_err());
///
/// let names: Vec<String> = registry.gather().iter().map(|f| f.name().to_owned()).collect();
/// assert!(names.contains(&"espresso_slow_calls_total".to_owned()));
/// # Ok::<(), prometheus::Error>(())
/// ```
///
/// Cloning shares the metrics, so several layers can feed one set.
#[derive(Debug, Clone)]
pub struct SlowCallMetrics {
    pub(crate) duration: HistogramVec,
    /// The latency series each thread observed last; shared by clones.
    kept: KeptSeries<Labels, Histogram>,
    pub(crate) slow: IntCounterVec,
    pub(crate) active: IntGauge,
}

impl SlowCallMetrics {
    /// Creates the metrics with [`DEFAULT_BUCKETS`] and registers them.
    ///
    /// Fails when `registry` already holds metrics of these names.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Self::register_with_buckets(registry, DEFAULT_BUCKETS.to_vec())
    }

    /// Creates the metrics with these histogram bounds (in seconds, increasing) and registers
    /// them.
    ///
    /// Fails when `registry` already holds metrics of these names or the bounds are not
    /// increasing.
    pub fn register_with_buckets(
        registry: &Registry,
        buckets: Vec<f64>,
    ) -> Result<Self, prometheus::Error> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_server_request_duration_seconds",
                "Time from a request's arrival to the end of its response body.",
            )
            .buckets(buckets),
            &["method", "route", "status"],
        )?;
        let slow = IntCounterVec::new(
            Opts::new(
                "espresso_slow_calls_total",
                "Requests slower than their slow-call threshold.",
            ),
            &["route"],
        )?;
        let active = IntGauge::new(
            "http_server_active_requests",
            "Requests in flight, until their response body ends.",
        )?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(slow.clone()))?;
        registry.register(Box::new(active.clone()))?;
        // The route-less counter is known from the start; routes are added by the layers.
        slow.with_label_values(&[crate::UNMATCHED_ROUTE]);
        Ok(Self {
            duration,
            kept: KeptSeries::new(),
            slow,
            active,
        })
    }

    /// Exports the latency series of `method`, `route` and `status` (as the layer would label
    /// them) at 0 before its first request, so dashboards and alerts have a series from the
    /// first scrape.
    ///
    /// ```
    /// use espresso_slow_call::SlowCallMetrics;
    /// use http::Method;
    ///
    /// let registry = prometheus::Registry::new();
    /// let metrics = SlowCallMetrics::register(&registry)?;
    /// metrics.expect(&Method::POST, "/v1/filter", "200");
    /// let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather())?;
    /// assert!(text.contains(
    ///     r#"http_server_request_duration_seconds_count{method="POST",route="/v1/filter",status="200"} 0"#
    /// ));
    /// # Ok::<(), prometheus::Error>(())
    /// ```
    pub fn expect(&self, method: &Method, route: &str, status: &str) {
        self.duration
            .with_label_values(&[method_label(method), route, status]);
    }

    /// Records a request's duration under its labels, through the series the thread kept:
    /// `with_label_values` hashes the three labels and takes the family's lock (about 200
    /// instructions), a request at most once per route and status.
    pub(crate) fn observe(
        &self,
        method: &'static str,
        route: &RouteLabel,
        status: &'static str,
        seconds: f64,
    ) {
        self.kept.record(
            &(method, route, status),
            |&(method, route, status)| {
                let series = self
                    .duration
                    .with_label_values(&[method, route.as_str(), status]);
                (
                    Labels {
                        method,
                        route: route.clone(),
                        status,
                    },
                    series,
                )
            },
            |series| series.observe(seconds),
        );
    }

    /// Exports `espresso_slow_calls_total{route}` at 0.
    pub(crate) fn known_route(&self, route: &str) {
        self.slow.with_label_values(&[route]);
    }
}

/// The labels of a latency series, as a thread keeps them.
struct Labels {
    method: &'static str,
    route: RouteLabel,
    status: &'static str,
}

/// The labels a request brings. The method and status are compared by address first: they are
/// the same few literals request after request.
impl PartialEq<(&'static str, &RouteLabel, &'static str)> for Labels {
    fn eq(&self, &(method, route, status): &(&'static str, &RouteLabel, &'static str)) -> bool {
        (std::ptr::eq(self.method, method) || self.method == method)
            && (std::ptr::eq(self.status, status) || self.status == status)
            && self.route.same(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn count(metrics: &SlowCallMetrics, route: &str, status: &str) -> u64 {
        metrics
            .duration
            .with_label_values(&["POST", route, status])
            .get_sample_count()
    }

    #[test]
    fn kept_series_count_each_observation_in_its_own_series_and_set() {
        let (a, b) = (Registry::new(), Registry::new());
        let (a, b) = (
            SlowCallMetrics::register(&a).unwrap(),
            SlowCallMetrics::register(&b).unwrap(),
        );
        // More routes than a thread keeps, in turns, on two sets with the same labels.
        let routes: Vec<RouteLabel> = (0..20)
            .map(|i| RouteLabel::Known(Arc::from(format!("/r{i}"))))
            .collect();
        for round in 0..3 {
            for route in &routes {
                a.observe("POST", route, "200", 0.001);
                b.observe("POST", route, "500", 0.001);
            }
            a.observe("POST", &routes[0], "200", 0.001);
            assert_eq!(count(&a, "/r0", "200"), 2 * (round + 1));
        }
        for route in &routes {
            let r = route.as_str();
            let first = u64::from(r == "/r0") * 3;
            assert_eq!(count(&a, r, "200"), 3 + first, "{r}");
            assert_eq!(count(&a, r, "500"), 0, "{r}");
            assert_eq!(count(&b, r, "500"), 3, "{r}");
            assert_eq!(count(&b, r, "200"), 0, "{r}");
        }
    }
}
