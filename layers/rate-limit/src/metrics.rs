//! Prometheus counters, registered once per registry and shared by every limiter (feature
//! `metrics`).

use crate::backend::memory::EvictionCounters;
use espresso_common::metrics::LiveNames;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use std::sync::Arc;

/// The rate limiters' metrics. Register them once per registry and hand a clone to every layer;
/// the `limiter` label tells the layers apart ([`RateLimitLayer::name`](crate::RateLimitLayer::name)).
///
/// - `espresso_rate_limit_requests_total{limiter, decision}`: every checked request, with
///   `decision` one of `allowed`, `delayed` (admitted after waiting), `limited` (refused),
///   `shadow_limited` (would have been refused; shadow mode let it through).
/// - `espresso_rate_limit_missing_key_total{limiter, action}`: requests the key extractor found
///   no key for, with `action` what [`MissingKey`](crate::MissingKey) did: `refused` (500),
///   `shared_bucket` or `allowed`.
/// - `espresso_rate_limit_evicted_keys_total{limiter, reason}`: keys dropped from the in-memory
///   store, `reason` `idle` (state fully replenished, nothing lost) or `capacity` (the hard cap).
/// - `espresso_rate_limit_backend_transitions_total{limiter, to}`: Redis backend switches, `to`
///   `local` (Redis slow or down, the local fallback decides) or `redis` (recovered).
/// - `espresso_rate_limit_backend_local{limiter}`: 1 while a Redis limiter runs on its local
///   fallback.
///
/// A layer given the metrics creates every series of its `limiter` label at 0 when it makes its
/// first service, so a fresh `/metrics` shows each family before the first request.
///
/// ```
/// use espresso_rate_limit::{Quota, RateLimitLayer, RateLimitMetrics};
///
/// let registry = prometheus::Registry::new();
/// let metrics = RateLimitMetrics::register(&registry).unwrap();
/// let api = RateLimitLayer::new(Quota::per_second(100)).name("api").metrics(metrics.clone());
/// let login = RateLimitLayer::new(Quota::per_minute(5)).name("login").metrics(metrics);
/// let _services = (api.limiter(), login.limiter()); // what mounting the layers does too
///
/// let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
/// assert!(text.contains(r#"espresso_rate_limit_requests_total{decision="limited",limiter="login"} 0"#));
/// assert!(text.contains(r#"espresso_rate_limit_missing_key_total{action="refused",limiter="api"} 0"#));
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitMetrics {
    requests: IntCounterVec,
    missing_key: IntCounterVec,
    evictions: IntCounterVec,
    transitions: IntCounterVec,
    local: IntGaugeVec,
    /// The names of the limiters reporting here.
    limiters: LiveNames,
}

impl RateLimitMetrics {
    /// Creates the metrics and registers them into `registry`, all or none; an error (a family
    /// of one of these names registered already, which it names) is returned, never
    /// swallowed.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "espresso_rate_limit_requests_total",
                "Requests checked by a rate limiter, by decision.",
            ),
            &["limiter", "decision"],
        )?;
        let missing_key = IntCounterVec::new(
            Opts::new(
                "espresso_rate_limit_missing_key_total",
                "Requests a rate limiter found no key for, by what it did with them.",
            ),
            &["limiter", "action"],
        )?;
        let evictions = IntCounterVec::new(
            Opts::new(
                "espresso_rate_limit_evicted_keys_total",
                "Keys dropped from a rate limiter's in-memory store.",
            ),
            &["limiter", "reason"],
        )?;
        let transitions = IntCounterVec::new(
            Opts::new(
                "espresso_rate_limit_backend_transitions_total",
                "Switches of a Redis rate limiter between Redis and its local fallback.",
            ),
            &["limiter", "to"],
        )?;
        let local = IntGaugeVec::new(
            Opts::new(
                "espresso_rate_limit_backend_local",
                "1 while a Redis rate limiter decides locally because Redis is slow or down.",
            ),
            &["limiter"],
        )?;
        espresso_common::metrics::register_all(
            registry,
            [
                Box::new(requests.clone()) as _,
                Box::new(missing_key.clone()) as _,
                Box::new(evictions.clone()) as _,
                Box::new(transitions.clone()) as _,
                Box::new(local.clone()) as _,
            ],
        )?;
        Ok(Self {
            requests,
            missing_key,
            evictions,
            transitions,
            local,
            limiters: LiveNames::default(),
        })
    }

    /// One limiter's series, created (at 0) here so they are exported before any event.
    /// A second live limiter of the same name gets a WARN: their series would merge.
    pub(crate) fn for_limiter(&self, name: &Arc<str>) -> LimiterMetrics {
        let (alive, shared) = self.limiters.claim(name);
        if shared {
            tracing::warn!(
                limiter = %name,
                "two rate limiters named `{name}` report into the same RateLimitMetrics: their \
                 series merge into one; give each layer its own `.name(..)`"
            );
        }
        let name: &str = name;
        let requests = |d| self.requests.with_label_values(&[name, d]);
        let missing = |a| self.missing_key.with_label_values(&[name, a]);
        LimiterMetrics {
            allowed: requests("allowed"),
            delayed: requests("delayed"),
            limited: requests("limited"),
            shadow_limited: requests("shadow_limited"),
            missing_refused: missing("refused"),
            missing_shared: missing("shared_bucket"),
            missing_allowed: missing("allowed"),
            evictions: EvictionCounters {
                idle: self.evictions.with_label_values(&[name, "idle"]),
                capacity: self.evictions.with_label_values(&[name, "capacity"]),
            },
            to_local: self.transitions.with_label_values(&[name, "local"]),
            to_redis: self.transitions.with_label_values(&[name, "redis"]),
            local: self.local.with_label_values(&[name]),
            _alive: alive,
        }
    }
}

/// One limiter's counters, resolved once so the hot path does no label lookup.
#[derive(Debug, Clone)]
pub(crate) struct LimiterMetrics {
    pub(crate) allowed: IntCounter,
    pub(crate) delayed: IntCounter,
    pub(crate) limited: IntCounter,
    pub(crate) shadow_limited: IntCounter,
    pub(crate) missing_refused: IntCounter,
    pub(crate) missing_shared: IntCounter,
    pub(crate) missing_allowed: IntCounter,
    pub(crate) evictions: EvictionCounters,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) to_local: IntCounter,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) to_redis: IntCounter,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) local: IntGauge,
    /// Held while the limiter lives: its name stays taken.
    _alive: Arc<()>,
}
