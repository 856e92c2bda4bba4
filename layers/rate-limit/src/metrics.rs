//! Prometheus counters, registered once per registry and shared by every limiter.

use crate::backend::memory::EvictionCounters;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The rate limiters' metrics. Register them once per registry and hand a clone to every layer;
/// the `limiter` label tells the layers apart ([`RateLimitLayer::name`](crate::RateLimitLayer::name)).
///
/// - `espresso_rate_limit_requests_total{limiter, decision}`: every checked request, with
///   `decision` one of `allowed`, `delayed` (admitted after waiting), `limited` (refused),
///   `shadow_limited` (would have been refused; shadow mode let it through).
/// - `espresso_rate_limit_evicted_keys_total{limiter, reason}`: keys dropped from the in-memory
///   store, `reason` `idle` (state fully replenished, nothing lost) or `capacity` (the hard cap).
/// - `espresso_rate_limit_backend_transitions_total{limiter, to}`: Redis backend switches, `to`
///   `local` (Redis slow or down, the local fallback decides) or `redis` (recovered).
/// - `espresso_rate_limit_backend_local{limiter}`: 1 while a Redis limiter runs on its local
///   fallback.
///
/// ```
/// use espresso_rate_limit::{Quota, RateLimitLayer, RateLimitMetrics};
///
/// let registry = prometheus::Registry::new();
/// let metrics = RateLimitMetrics::register(&registry).unwrap();
/// let api = RateLimitLayer::new(Quota::per_second(100)).name("api").metrics(&metrics);
/// let login = RateLimitLayer::new(Quota::per_minute(5)).name("login").metrics(&metrics);
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitMetrics {
    requests: IntCounterVec,
    evictions: IntCounterVec,
    transitions: IntCounterVec,
    local: IntGaugeVec,
}

impl RateLimitMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "espresso_rate_limit_requests_total",
                "Requests checked by a rate limiter, by decision.",
            ),
            &["limiter", "decision"],
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
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(evictions.clone()))?;
        registry.register(Box::new(transitions.clone()))?;
        registry.register(Box::new(local.clone()))?;
        Ok(Self {
            requests,
            evictions,
            transitions,
            local,
        })
    }

    pub(crate) fn for_limiter(&self, name: &str) -> LimiterMetrics {
        let requests = |d| self.requests.with_label_values(&[name, d]);
        LimiterMetrics {
            allowed: requests("allowed"),
            delayed: requests("delayed"),
            limited: requests("limited"),
            shadow_limited: requests("shadow_limited"),
            evictions: EvictionCounters {
                idle: self.evictions.with_label_values(&[name, "idle"]),
                capacity: self.evictions.with_label_values(&[name, "capacity"]),
            },
            to_local: self.transitions.with_label_values(&[name, "local"]),
            to_redis: self.transitions.with_label_values(&[name, "redis"]),
            local: self.local.with_label_values(&[name]),
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
    pub(crate) evictions: EvictionCounters,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) to_local: IntCounter,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) to_redis: IntCounter,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) local: IntGauge,
}
