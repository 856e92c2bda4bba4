//! Prometheus metrics, registered into a registry the caller owns.

use crate::{DegradeReason, Priority};
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The metrics of degrade layers; register them once with [`register`](Self::register) and give
/// them to any number of layers told apart by [`DegradeLayer::name`](crate::DegradeLayer::name).
///
/// | metric | type | labels |
/// | --- | --- | --- |
/// | `espresso_degrade_limit` | gauge: the current concurrency limit | `name` |
/// | `espresso_degrade_inflight` | gauge: requests in the primary service | `name` |
/// | `espresso_degrade_queued` | gauge: requests waiting for a permit | `name` |
/// | `espresso_degrade_requests_total` | counter: requests by where they went | `name`, `priority` = `critical`/`sheddable`, `route` = `primary`/`fallback`, `reason` = `none`/`limit`/`queue_delay`/`switch`/`saturated` |
///
/// A layer's series exist, at 0, from the moment it wraps a service, before any request.
///
/// ```
/// use espresso_degrade::{DegradeLayer, DegradeMetrics, limit::Fixed};
/// use prometheus::Registry;
/// use tower_layer::Layer;
///
/// let registry = Registry::new();
/// let metrics = DegradeMetrics::register(&registry).unwrap();
/// let api = DegradeLayer::new(Fixed::new(100)).name("api").metrics(metrics.clone());
/// let _service = api.layer(tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// }));
/// let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
/// assert!(text.contains(r#"espresso_degrade_limit{name="api"} 100"#));
/// assert!(text.contains(
///     r#"espresso_degrade_requests_total{name="api",priority="sheddable",reason="limit",route="fallback"} 0"#
/// ));
///
/// // Registering twice is an error, never a silent no-op.
/// assert!(DegradeMetrics::register(&registry).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct DegradeMetrics {
    limit: IntGaugeVec,
    inflight: IntGaugeVec,
    queued: IntGaugeVec,
    requests: IntCounterVec,
}

impl DegradeMetrics {
    /// Creates the metrics and registers them into `registry`; fails when `registry` has them
    /// already.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["name"]);
        let this = Self {
            limit: gauge("espresso_degrade_limit", "The current concurrency limit.")?,
            inflight: gauge(
                "espresso_degrade_inflight",
                "Requests in flight in the primary service.",
            )?,
            queued: gauge(
                "espresso_degrade_queued",
                "Requests waiting for a concurrency permit.",
            )?,
            requests: IntCounterVec::new(
                Opts::new(
                    "espresso_degrade_requests_total",
                    "Requests seen by a degrade layer, by where they went and why.",
                ),
                &["name", "priority", "route", "reason"],
            )?,
        };
        registry.register(Box::new(this.limit.clone()))?;
        registry.register(Box::new(this.inflight.clone()))?;
        registry.register(Box::new(this.queued.clone()))?;
        registry.register(Box::new(this.requests.clone()))?;
        Ok(this)
    }

    pub(crate) fn for_layer(&self, name: &str) -> Metrics {
        let request = |priority: Priority, route: &str, reason: &str| {
            self.requests
                .with_label_values(&[name, priority.as_str(), route, reason])
        };
        let per_priority = |priority: Priority| Counters {
            primary: request(priority, "primary", "none"),
            fallback: [
                DegradeReason::Limit,
                DegradeReason::QueueDelay,
                DegradeReason::Switch,
                DegradeReason::Saturated,
            ]
            .map(|r| request(priority, "fallback", r.as_str())),
        };
        Metrics {
            limit: self.limit.with_label_values(&[name]),
            inflight: self.inflight.with_label_values(&[name]),
            queued: self.queued.with_label_values(&[name]),
            counters: [
                per_priority(Priority::Critical),
                per_priority(Priority::Sheddable),
            ],
        }
    }
}

/// One layer's handles, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    limit: IntGauge,
    inflight: IntGauge,
    queued: IntGauge,
    counters: [Counters; 2],
}

#[derive(Debug, Clone)]
struct Counters {
    primary: prometheus::IntCounter,
    fallback: [prometheus::IntCounter; 4],
}

impl Metrics {
    pub(crate) fn limit(&self, limit: usize) {
        self.limit.set(limit as i64);
    }

    pub(crate) fn gauges(&self, inflight: usize, queued: usize) {
        self.inflight.set(inflight as i64);
        self.queued.set(queued as i64);
    }

    pub(crate) fn inflight(&self, inflight: usize) {
        self.inflight.set(inflight as i64);
    }

    pub(crate) fn primary(&self, priority: Priority) {
        self.counters[priority.index()].primary.inc();
    }

    pub(crate) fn fallback(&self, priority: Priority, reason: DegradeReason) {
        let index = match reason {
            DegradeReason::Limit => 0,
            DegradeReason::QueueDelay => 1,
            DegradeReason::Switch => 2,
            DegradeReason::Saturated => 3,
        };
        self.counters[priority.index()].fallback[index].inc();
    }
}
