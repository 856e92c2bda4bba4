//! The server's own Prometheus metrics (each layer registers its own into the same registry).

use espresso_filter_core::Engine;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// Counters the server itself keeps.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    /// Filter answers by verdict and whether a stage was skipped.
    pub(crate) verdicts: IntCounterVec,
    /// Word hits by level and category.
    pub(crate) hits: IntCounterVec,
    /// Rejected requests by error code (invalid_json, payload_too_large, ...).
    pub(crate) errors: IntCounterVec,
    /// Config reload attempts by result (applied, invalid).
    pub(crate) reloads: IntCounterVec,
    /// Reloads that changed a key only a restart applies, by key.
    pub(crate) restart_required: IntCounterVec,
    /// Entries in the word lists in use, by kind (blocked, allowed).
    pub(crate) dictionary_words: IntGaugeVec,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let verdicts = IntCounterVec::new(
            Opts::new(
                "espresso_filter_verdicts_total",
                "Filter answers by verdict.",
            ),
            &["verdict", "degraded"],
        )
        .expect("valid metric");
        let hits = IntCounterVec::new(
            Opts::new(
                "espresso_filter_hits_total",
                "Word hits by level and category.",
            ),
            &["level", "category"],
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new(
                "espresso_http_errors_total",
                "Requests answered with an error, by code.",
            ),
            &["code"],
        )
        .expect("valid metric");
        let reloads = IntCounterVec::new(
            Opts::new(
                "espresso_config_reloads_total",
                "Config and word-list reloads by result.",
            ),
            &["result"],
        )
        .expect("valid metric");
        let restart_required = IntCounterVec::new(
            Opts::new(
                "espresso_config_restart_required_total",
                "Reloads that changed a key only a restart applies, by key.",
            ),
            &["key"],
        )
        .expect("valid metric");
        // Every label known up front is exported at 0, so a rate or an alert has a series from
        // the first scrape.
        for result in ["applied", "invalid"] {
            reloads.with_label_values(&[result]);
        }
        for key in crate::config::restart_only() {
            restart_required.with_label_values(&[key]);
        }
        for verdict in ["pass", "review", "block"] {
            for degraded in ["false", "true"] {
                verdicts.with_label_values(&[verdict, degraded]);
            }
        }
        for code in crate::http_api::ERROR_CODES {
            errors.with_label_values(&[code]);
        }
        let dictionary_words = IntGaugeVec::new(
            Opts::new(
                "espresso_dictionary_words",
                "Entries in the word lists in use, by kind.",
            ),
            &["kind"],
        )
        .expect("valid metric");
        for c in [&verdicts, &hits, &errors, &reloads, &restart_required] {
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
        }
        registry
            .register(Box::new(dictionary_words.clone()))
            .expect("registered once");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("registered once");
        Self {
            registry,
            verdicts,
            hits,
            errors,
            reloads,
            restart_required,
            dictionary_words,
        }
    }

    /// Records the size of the word lists `engine` now serves, and exports the hits of each of
    /// their categories at 0 (a category a reload removed keeps its series: its count is history).
    pub(crate) fn dictionary_loaded(&self, engine: &Engine) {
        let dictionary = engine.dictionary();
        for (level, category) in dictionary.categories() {
            self.hits.with_label_values(&[level.as_str(), category]);
        }
        let stats = dictionary.stats();
        let words = &self.dictionary_words;
        words
            .with_label_values(&["blocked"])
            .set(stats.words as i64);
        words
            .with_label_values(&["allowed"])
            .set(stats.allowed as i64);
    }

    /// The Prometheus text exposition of every registered metric.
    pub(crate) fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
