//! Prometheus metrics, registered into a registry the caller owns.

use crate::{DegradeReason, Priority};
use espresso_common::metrics::LiveNames;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use std::sync::Arc;

/// The metrics of degrade layers; register them once with [`register`](Self::register) and give
/// them to any number of layers told apart by [`DegradeLayer::name`](crate::DegradeLayer::name).
///
/// | metric | type | labels |
/// | --- | --- | --- |
/// | `espresso_degrade_limit` | gauge: the current concurrency limit | `name` |
/// | `espresso_degrade_inflight` | gauge: requests in flight in the primary service | `name` |
/// | `espresso_degrade_queued` | gauge: requests waiting for a permit | `name` |
/// | `espresso_degrade_requests_total` | counter: requests by where they went | `name`, `priority` = `critical`/`sheddable`, `route` = `primary`/`fallback`, `reason` = `none`/`limit`/`queue_delay`/`switch`/`saturated` |
/// | `espresso_degrade_abandoned_total` | counter: queued requests whose caller gave up (a timeout, a client gone) before they went anywhere | `name`, `priority` |
///
/// A layer's series exist, at 0, from the moment it wraps a service, before any request.
///
/// Each layer needs a name of its own: two layers (not clones of one layer, which share one
/// limiter) reporting under one name would overwrite each other's gauges and add up their
/// counters. When a layer starts reporting under a name another live layer uses on the same
/// metrics, a `tracing` WARN says so; a dropped layer frees its name.
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
    abandoned: IntCounterVec,
    // The names in use by live limiters.
    names: LiveNames,
}

impl DegradeMetrics {
    /// Creates the metrics and registers them into `registry`, all or none; fails, naming the
    /// family, when `registry` has one of these names already.
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
            abandoned: IntCounterVec::new(
                Opts::new(
                    "espresso_degrade_abandoned_total",
                    "Queued requests whose caller gave up before they went anywhere.",
                ),
                &["name", "priority"],
            )?,
            names: LiveNames::default(),
        };
        espresso_common::metrics::register_all(
            registry,
            [
                Box::new(this.limit.clone()) as _,
                Box::new(this.inflight.clone()) as _,
                Box::new(this.queued.clone()) as _,
                Box::new(this.requests.clone()) as _,
                Box::new(this.abandoned.clone()) as _,
            ],
        )?;
        Ok(this)
    }

    /// One layer's handles, for the limiter it creates; warns when another live limiter already
    /// reports under `name`.
    pub(crate) fn for_layer(&self, name: &str) -> Metrics {
        let claim = self.claim(name);
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
            abandoned: self.abandoned.with_label_values(&[name, priority.as_str()]),
        };
        Metrics {
            limit: self.limit.with_label_values(&[name]),
            inflight: self.inflight.with_label_values(&[name]),
            queued: self.queued.with_label_values(&[name]),
            counters: [
                per_priority(Priority::Critical),
                per_priority(Priority::Sheddable),
            ],
            _claim: claim,
        }
    }

    /// Records a limiter reporting under `name`, as a token alive as long as the limiter.
    fn claim(&self, name: &str) -> Arc<()> {
        let (claim, shared) = self.names.claim(name);
        if shared {
            tracing::warn!(
                name,
                "degrade: two live layers report into the same DegradeMetrics under the name \
                 {name:?}, so their gauges overwrite each other and their counters add up; give \
                 each layer its own `.name(...)` (clones of one layer share its limiter and need \
                 none)"
            );
        }
        claim
    }
}

/// One layer's handles, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    limit: IntGauge,
    inflight: IntGauge,
    queued: IntGauge,
    counters: [Counters; 2],
    // Keeps the layer's name taken while its limiter lives.
    _claim: Arc<()>,
}

#[derive(Debug, Clone)]
struct Counters {
    primary: prometheus::IntCounter,
    fallback: [prometheus::IntCounter; 4],
    abandoned: prometheus::IntCounter,
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

    pub(crate) fn abandoned(&self, priority: Priority) {
        self.counters[priority.index()].abandoned.inc();
    }
}
