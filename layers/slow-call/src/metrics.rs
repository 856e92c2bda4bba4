//! Prometheus metrics of [`SlowCallLayer`](crate::SlowCallLayer).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// Default histogram buckets, in seconds (OpenTelemetry's HTTP server duration buckets).
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
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
/// Cloning shares the metrics, so several layers can feed one set.
#[derive(Debug, Clone)]
pub struct SlowCallMetrics {
    pub(crate) duration: HistogramVec,
    pub(crate) slow: IntCounterVec,
    pub(crate) active: IntGauge,
}

impl SlowCallMetrics {
    /// Creates the metrics with [`DEFAULT_BUCKETS`] and registers them.
    ///
    /// Fails when `registry` already holds metrics of these names.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Self::with_buckets(registry, DEFAULT_BUCKETS.to_vec())
    }

    /// Creates the metrics with these histogram buckets (in seconds) and registers them.
    pub fn with_buckets(registry: &Registry, buckets: Vec<f64>) -> Result<Self, prometheus::Error> {
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
        Ok(Self {
            duration,
            slow,
            active,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_once_per_registry() {
        let registry = Registry::new();
        let metrics = SlowCallMetrics::register(&registry).unwrap();
        assert!(SlowCallMetrics::register(&registry).is_err());
        metrics.active.inc();
        let names: Vec<_> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert!(names.contains(&"http_server_active_requests".to_owned()));
    }
}
