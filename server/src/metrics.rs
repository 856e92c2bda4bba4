//! The server's own Prometheus metrics (each layer registers its own into the same registry).

use crate::serve::Timeout;
use espresso_common::series::KeptSeries;
use espresso_filter_core::{Engine, Verdict};
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

/// The labels of a hit series, as a thread keeps them.
struct HitLabels {
    level: &'static str,
    category: String,
}

/// The labels a run of hits brings. Levels are the same few literals: compared by address
/// first.
impl PartialEq<(&'static str, &str)> for HitLabels {
    fn eq(&self, &(level, category): &(&'static str, &str)) -> bool {
        (std::ptr::eq(self.level, level) || self.level == level) && self.category == category
    }
}

/// Counters the server itself keeps.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    /// Filter answers by verdict and whether a stage was skipped
    /// (`espresso_filter_verdicts_total`), each series looked up once: `[verdict][degraded]`.
    verdict_series: [[IntCounter; 2]; 3],
    /// Word hits by level and category; counted through [`Metrics::count_hits`].
    hits: IntCounterVec,
    /// The hit series each thread counted last; shared by clones.
    hit_series: KeptSeries<HitLabels, IntCounter>,
    /// Rejected requests by error code (invalid_json, payload_too_large, ...).
    pub(crate) errors: IntCounterVec,
    /// Config reload attempts by result (applied, invalid).
    pub(crate) reloads: IntCounterVec,
    /// Reloads that changed a key only a restart applies, by key.
    pub(crate) restart_required: IntCounterVec,
    /// Entries in the word lists in use, by kind (blocked, allowed).
    pub(crate) dictionary_words: IntGaugeVec,
    /// Hits left out of answers by `filter.max_hits`.
    pub(crate) hits_truncated: IntCounter,
    /// Connections by listener.
    pub(crate) connections: ConnectionMetrics,
}

/// The connection families, by `listener` (`public`, `ops`).
#[derive(Clone)]
pub(crate) struct ConnectionMetrics {
    open: IntGaugeVec,
    max: IntGaugeVec,
    limit_reached: IntCounterVec,
    timeouts: IntCounterVec,
}

/// One listener's series of [`ConnectionMetrics`].
#[derive(Clone)]
pub(crate) struct ListenerMetrics {
    /// `espresso_connections_open`.
    pub(crate) open: IntGauge,
    /// `espresso_connections_max`.
    pub(crate) max: IntGauge,
    /// `espresso_connections_limit_reached_total`.
    pub(crate) limit_reached: IntCounter,
    /// `espresso_connection_timeouts_total`, in the order of [`Timeout::ALL`].
    timeouts: [IntCounter; 4],
}

impl ListenerMetrics {
    /// The counter of connections (for `send`, also HTTP/2 streams) closed by `timeout`.
    pub(crate) fn timeout(&self, timeout: Timeout) -> &IntCounter {
        &self.timeouts[timeout as usize]
    }
}

impl ConnectionMetrics {
    fn new() -> Self {
        let listener = &["listener"];
        Self {
            open: IntGaugeVec::new(
                Opts::new(
                    "espresso_connections_open",
                    "Connections open, by listener.",
                ),
                listener,
            )
            .expect("valid metric"),
            max: IntGaugeVec::new(
                Opts::new(
                    "espresso_connections_max",
                    "Connections a listener keeps open at most (server.max_connections).",
                ),
                listener,
            )
            .expect("valid metric"),
            limit_reached: IntCounterVec::new(
                Opts::new(
                    "espresso_connections_limit_reached_total",
                    "Times a listener stopped accepting because max_connections were open.",
                ),
                listener,
            )
            .expect("valid metric"),
            timeouts: IntCounterVec::new(
                Opts::new(
                    "espresso_connection_timeouts_total",
                    "Connections closed (send: also HTTP/2 streams reset) by a timeout.",
                ),
                &["listener", "timeout"],
            )
            .expect("valid metric"),
        }
    }

    fn register(&self, registry: &Registry) {
        registry
            .register(Box::new(self.open.clone()))
            .expect("registered once");
        registry
            .register(Box::new(self.max.clone()))
            .expect("registered once");
        registry
            .register(Box::new(self.limit_reached.clone()))
            .expect("registered once");
        registry
            .register(Box::new(self.timeouts.clone()))
            .expect("registered once");
    }

    /// The series of `listener`, each at 0 until counted.
    pub(crate) fn listener(&self, listener: &str) -> ListenerMetrics {
        ListenerMetrics {
            open: self.open.with_label_values(&[listener]),
            max: self.max.with_label_values(&[listener]),
            limit_reached: self.limit_reached.with_label_values(&[listener]),
            timeouts: Timeout::ALL
                .map(|t| self.timeouts.with_label_values(&[listener, t.as_str()])),
        }
    }
}

impl Metrics {
    /// `espresso_filter_verdicts_total{verdict, degraded}` of one answer.
    pub(crate) fn verdict(&self, verdict: Verdict, degraded: bool) -> &IntCounter {
        let row = match verdict {
            Verdict::Pass => 0,
            Verdict::Review => 1,
            Verdict::Block => 2,
        };
        &self.verdict_series[row][usize::from(degraded)]
    }

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
        // Exported at 0 from the start, too.
        let verdict_series = [Verdict::Pass, Verdict::Review, Verdict::Block].map(|verdict| {
            ["false", "true"]
                .map(|degraded| verdicts.with_label_values(&[verdict.as_str(), degraded]))
        });
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
        let hits_truncated = IntCounter::new(
            "espresso_filter_hits_truncated_total",
            "Hits left out of filter answers by filter.max_hits.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(hits_truncated.clone()))
            .expect("registered once");
        let connections = ConnectionMetrics::new();
        connections.register(&registry);
        // The public listener's series exist from the start; the operator listener's when it
        // is configured.
        connections.listener("public");
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
            verdict_series,
            hits,
            hit_series: KeptSeries::new(),
            errors,
            reloads,
            restart_required,
            dictionary_words,
            hits_truncated,
            connections,
        }
    }

    /// Counts `n` hits of `level` in `category`, through the series the thread kept:
    /// `with_label_values` hashes the labels, takes the family's lock and clones the series (a
    /// reference count both workers write) for every run of hits.
    pub(crate) fn count_hits(&self, level: &'static str, category: &str, n: u64) {
        self.hit_series.record(
            &(level, category),
            |&(level, category)| {
                let series = self.hits.with_label_values(&[level, category]);
                let category = category.to_owned();
                (HitLabels { level, category }, series)
            },
            |series| series.inc_by(n),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(metrics: &Metrics, level: &str, category: &str) -> u64 {
        metrics.hits.with_label_values(&[level, category]).get()
    }

    #[test]
    fn kept_hit_series_count_each_run_in_its_own_series_and_set() {
        let (a, b) = (Metrics::new(), Metrics::new());
        // More categories than a thread keeps, in turns, on two sets with the same labels.
        let categories: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        for _ in 0..3 {
            for category in &categories {
                a.count_hits("block", category, 2);
                b.count_hits("review", category, 1);
            }
            a.count_hits("review", "c0", 5);
        }
        for category in &categories {
            assert_eq!(hits(&a, "block", category), 6, "{category}");
            assert_eq!(hits(&b, "review", category), 3, "{category}");
            assert_eq!(hits(&b, "block", category), 0, "{category}");
        }
        assert_eq!(hits(&a, "review", "c0"), 15);
        assert_eq!(hits(&a, "review", "c1"), 0);
    }
}
