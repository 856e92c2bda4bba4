//! Prometheus metrics of the stages, registered into a caller's registry.

use std::fmt;
use std::time::Duration;

use espresso_common::metrics::register_all;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

/// The values of the `outcome` label.
const OUTCOMES: [&str; 7] = [
    "ok",
    "timeout",
    "error",
    "open",
    "shed",
    "skipped",
    "too_large",
];

/// Metrics of the classifier stage.
///
/// | name | type | labels |
/// |---|---|---|
/// | `espresso_filter_classifier_requests_total` | counter | `outcome` = `ok`, `timeout`, `error`, `open` (breaker open, not called), `shed` (too many in flight, not called), `skipped` (already blocked locally), `too_large` (over `max_text_bytes`, not sent) |
/// | `espresso_filter_classifier_duration_seconds` | histogram of the calls made | |
#[derive(Clone)]
pub struct ClassifierMetrics {
    requests: IntCounterVec,
    duration: Histogram,
}

impl fmt::Debug for ClassifierMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifierMetrics").finish_non_exhaustive()
    }
}

impl ClassifierMetrics {
    /// The old name of [`register`](Self::register).
    #[deprecated(note = "renamed `register`, as every espresso layer's metrics are")]
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        Self::register(registry)
    }

    /// Creates the metrics and registers them into `registry`, all or none (the error names a
    /// family of one of these names registered already).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "espresso_filter_classifier_requests_total",
                "Texts the classifier stage saw, by outcome.",
            ),
            &["outcome"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "espresso_filter_classifier_duration_seconds",
                "Duration of the calls to the classifier.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
        )?;
        register_all(
            registry,
            [
                Box::new(requests.clone()) as _,
                Box::new(duration.clone()) as _,
            ],
        )?;
        // Every outcome is exported at 0, so a rate has a series from the first scrape.
        for outcome in OUTCOMES {
            requests.with_label_values(&[outcome]);
        }
        Ok(ClassifierMetrics { requests, duration })
    }

    pub(crate) fn outcome(&self, outcome: &str) {
        debug_assert!(
            OUTCOMES.contains(&outcome),
            "{outcome} missing from OUTCOMES"
        );
        self.requests.with_label_values(&[outcome]).inc();
    }

    pub(crate) fn observe(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
    }
}

/// The values of the cache's `result` label.
const LOOKUP_RESULTS: [&str; 4] = ["local_hit", "redis_hit", "miss", "coalesced"];
/// The values of the cache's `op` label.
const REDIS_OPS: [&str; 2] = ["get", "set"];
/// The values of the cache's `kind` label.
const REDIS_ERROR_KINDS: [&str; 4] = ["timeout", "error", "open", "decode"];

/// Metrics of the cache stage.
///
/// | name | type | labels |
/// |---|---|---|
/// | `espresso_filter_cache_lookups_total` | counter | `result` = `local_hit`, `redis_hit`, `miss`, `coalesced` (answered by a concurrent request for the same text) |
/// | `espresso_filter_cache_redis_errors_total` | counter | `op` = `get`, `set`; `kind` = `timeout`, `error`, `open` (breaker open), `decode` |
/// | `espresso_filter_cache_invalidations_total` | counter: local cache cleared after a dictionary change | |
#[derive(Clone)]
pub struct CacheMetrics {
    lookups: IntCounterVec,
    redis_errors: IntCounterVec,
    invalidations: IntCounter,
}

impl fmt::Debug for CacheMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheMetrics").finish_non_exhaustive()
    }
}

impl CacheMetrics {
    /// The old name of [`register`](Self::register).
    #[deprecated(note = "renamed `register`, as every espresso layer's metrics are")]
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        Self::register(registry)
    }

    /// Creates the metrics and registers them into `registry`, all or none (the error names a
    /// family of one of these names registered already).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let lookups = IntCounterVec::new(
            Opts::new(
                "espresso_filter_cache_lookups_total",
                "Verdict cache lookups, by result.",
            ),
            &["result"],
        )?;
        let redis_errors = IntCounterVec::new(
            Opts::new(
                "espresso_filter_cache_redis_errors_total",
                "Verdict cache calls to Redis that failed or were skipped, by operation and kind.",
            ),
            &["op", "kind"],
        )?;
        let invalidations = IntCounter::new(
            "espresso_filter_cache_invalidations_total",
            "Times the local verdict cache was cleared after a dictionary change.",
        )?;
        register_all(
            registry,
            [
                Box::new(lookups.clone()) as _,
                Box::new(redis_errors.clone()) as _,
                Box::new(invalidations.clone()) as _,
            ],
        )?;
        // Every known label set is exported at 0 from the first scrape.
        for result in LOOKUP_RESULTS {
            lookups.with_label_values(&[result]);
        }
        for op in REDIS_OPS {
            for kind in REDIS_ERROR_KINDS {
                redis_errors.with_label_values(&[op, kind]);
            }
        }
        Ok(CacheMetrics {
            lookups,
            redis_errors,
            invalidations,
        })
    }

    pub(crate) fn lookup(&self, result: &str) {
        debug_assert!(LOOKUP_RESULTS.contains(&result), "{result} missing");
        self.lookups.with_label_values(&[result]).inc();
    }

    pub(crate) fn redis_error(&self, op: &str, kind: &str) {
        debug_assert!(REDIS_OPS.contains(&op) && REDIS_ERROR_KINDS.contains(&kind));
        self.redis_errors.with_label_values(&[op, kind]).inc();
    }

    pub(crate) fn invalidated(&self) {
        self.invalidations.inc();
    }
}
