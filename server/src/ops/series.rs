//! The sampler: once a second it reads the server's Prometheus registry, turns counters into
//! per-second rates and histograms into percentiles, and keeps the last few minutes in a ring.
//!
//! The sampler never touches a request: it reads the registry (the same read a `/metrics` scrape
//! does), computes outside any lock, and holds the ring's lock only to push one sample. Readers
//! copy what they need under that lock and serialize outside it.

use prometheus::{
    Registry,
    proto::{Metric, MetricFamily, MetricType},
};
use serde::Serialize;
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// How many samples the ring keeps (one a second: five minutes).
pub(crate) const CAPACITY: usize = 300;

/// One second of derived figures. Rates are per second over the interval since the previous
/// sample; `null` latencies mean no request finished in that interval.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Sample {
    /// Unix time of the sample, milliseconds.
    pub(crate) t: u64,
    /// Finished HTTP and gRPC requests per second (every route).
    pub(crate) rps: f64,
    /// Latency percentiles of the requests finished in the interval, milliseconds.
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p95_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
    /// Responses per second by status code.
    pub(crate) status: BTreeMap<String, f64>,
    /// Requests refused by a rate limiter per second.
    pub(crate) rate_limited: f64,
    /// Requests a degrade layer sent to its fallback (shed) per second.
    pub(crate) shed: f64,
    /// Filter answers marked `degraded` per second.
    pub(crate) degraded: f64,
    /// Filter answers per second by verdict.
    pub(crate) verdicts: BTreeMap<String, f64>,
    /// Process CPU use, percent of one core.
    pub(crate) cpu_percent: Option<f64>,
    /// Resident memory, bytes.
    pub(crate) rss_bytes: Option<f64>,
}

/// Current states (not rates) read at the last sample.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub(crate) struct Gauges {
    /// Circuit breaker name → its current state (`closed`, `open`, `half_open`, ...).
    pub(crate) breakers: BTreeMap<String, String>,
    /// Degrade layer name → its current concurrency limit.
    pub(crate) adaptive_limits: BTreeMap<String, f64>,
    /// Word hits since start by category, most hit first (at most ten).
    pub(crate) top_categories: Vec<CategoryHits>,
    /// Requests finished since start.
    pub(crate) requests_total: f64,
}

/// Hits of one category since start.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct CategoryHits {
    pub(crate) category: String,
    pub(crate) level: String,
    pub(crate) hits: f64,
}

/// Cumulative values read at one instant; two of them make a [`Sample`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Reading {
    at: Option<Duration>,
    requests: f64,
    /// Histogram bucket upper bounds (seconds) → cumulative counts, summed over every series.
    buckets: Vec<(f64, f64)>,
    status: HashMap<String, f64>,
    rate_limited: f64,
    shed: f64,
    degraded: f64,
    verdicts: HashMap<String, f64>,
    cpu_seconds: Option<f64>,
    rss_bytes: Option<f64>,
    gauges: Gauges,
}

fn label<'a>(metric: &'a Metric, name: &str) -> &'a str {
    metric
        .get_label()
        .iter()
        .find(|l| l.name() == name)
        .map_or("", |l| l.value())
}

fn value(metric: &Metric, kind: MetricType) -> f64 {
    match kind {
        MetricType::COUNTER => metric.get_counter().get_value(),
        MetricType::GAUGE => metric.get_gauge().get_value(),
        _ => 0.0,
    }
}

impl Reading {
    /// Reads the cumulative values out of gathered metric families.
    pub(crate) fn from_families(families: &[MetricFamily], at: Duration) -> Self {
        let mut r = Reading {
            at: Some(at),
            ..Default::default()
        };
        let mut categories: BTreeMap<(String, String), f64> = BTreeMap::new();
        for family in families {
            let kind = family.get_field_type();
            for m in family.get_metric() {
                match family.name() {
                    "http_server_request_duration_seconds" => {
                        let h = m.get_histogram();
                        let count = h.get_sample_count() as f64;
                        r.requests += count;
                        *r.status.entry(label(m, "status").to_owned()).or_default() += count;
                        for (i, b) in h.get_bucket().iter().enumerate() {
                            let (bound, n) = (b.upper_bound(), b.cumulative_count() as f64);
                            match r.buckets.get_mut(i) {
                                Some(slot) if slot.0 == bound => slot.1 += n,
                                Some(_) => {}
                                None => r.buckets.push((bound, n)),
                            }
                        }
                    }
                    "espresso_rate_limit_requests_total" if label(m, "decision") == "limited" => {
                        r.rate_limited += value(m, kind);
                    }
                    "espresso_degrade_requests_total" if label(m, "route") == "fallback" => {
                        r.shed += value(m, kind);
                    }
                    "espresso_filter_verdicts_total" => {
                        let v = value(m, kind);
                        *r.verdicts
                            .entry(label(m, "verdict").to_owned())
                            .or_default() += v;
                        if label(m, "degraded") == "true" {
                            r.degraded += v;
                        }
                    }
                    "espresso_filter_hits_total" => {
                        let key = (
                            label(m, "category").to_owned(),
                            label(m, "level").to_owned(),
                        );
                        *categories.entry(key).or_default() += value(m, kind);
                    }
                    "espresso_circuit_breaker_state" if value(m, kind) >= 1.0 => {
                        r.gauges
                            .breakers
                            .insert(label(m, "name").to_owned(), label(m, "state").to_owned());
                    }
                    "espresso_degrade_limit" => {
                        r.gauges
                            .adaptive_limits
                            .insert(label(m, "name").to_owned(), value(m, kind));
                    }
                    // Whole seconds there: too coarse for a per-second rate (see below).
                    "process_cpu_seconds_total" if r.cpu_seconds.is_none() => {
                        r.cpu_seconds = Some(value(m, kind));
                    }
                    "process_resident_memory_bytes" => r.rss_bytes = Some(value(m, kind)),
                    _ => {}
                }
            }
        }
        if let Some(precise) = cpu_seconds() {
            r.cpu_seconds = Some(precise);
        }
        let mut top: Vec<CategoryHits> = categories
            .into_iter()
            .filter(|(_, hits)| *hits > 0.0)
            .map(|((category, level), hits)| CategoryHits {
                category,
                level,
                hits,
            })
            .collect();
        top.sort_by(|a, b| b.hits.total_cmp(&a.hits));
        top.truncate(10);
        r.gauges.top_categories = top;
        r.gauges.requests_total = r.requests;
        r
    }

    /// The figures of the interval from `prev` to `self`.
    pub(crate) fn since(&self, prev: &Reading, unix_ms: u64) -> Sample {
        let secs = match (self.at, prev.at) {
            (Some(now), Some(then)) if now > then => (now - then).as_secs_f64(),
            _ => 1.0,
        };
        let rate = |now: f64, then: f64| ((now - then).max(0.0)) / secs;
        let rates = |now: &HashMap<String, f64>, then: &HashMap<String, f64>| {
            now.iter()
                .map(|(k, v)| (k.clone(), rate(*v, then.get(k).copied().unwrap_or(0.0))))
                .filter(|(_, v)| *v > 0.0)
                .collect::<BTreeMap<_, _>>()
        };
        let buckets: Vec<(f64, f64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &(bound, n))| {
                let before = prev
                    .buckets
                    .get(i)
                    .filter(|b| b.0 == bound)
                    .map_or(0.0, |b| b.1);
                (bound, (n - before).max(0.0))
            })
            .collect();
        let quantile = |q| quantile(&buckets, q).map(|s| s * 1000.0);
        let cpu = match (self.cpu_seconds, prev.cpu_seconds, prev.at) {
            (Some(now), Some(then), Some(_)) => Some(rate(now, then) * 100.0),
            _ => None,
        };
        Sample {
            t: unix_ms,
            rps: rate(self.requests, prev.requests),
            p50_ms: quantile(0.50),
            p95_ms: quantile(0.95),
            p99_ms: quantile(0.99),
            status: rates(&self.status, &prev.status),
            rate_limited: rate(self.rate_limited, prev.rate_limited),
            shed: rate(self.shed, prev.shed),
            degraded: rate(self.degraded, prev.degraded),
            verdicts: rates(&self.verdicts, &prev.verdicts),
            cpu_percent: cpu,
            rss_bytes: self.rss_bytes,
        }
    }
}

/// CPU time of this process in clock ticks (1/100 s), where the OS tells; the Prometheus
/// process collector rounds it to whole seconds.
#[cfg(target_os = "linux")]
fn cpu_seconds() -> Option<f64> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

#[cfg(not(target_os = "linux"))]
fn cpu_seconds() -> Option<f64> {
    None
}

/// The `q` quantile of cumulative bucket counts, interpolated linearly inside the bucket as
/// Prometheus' `histogram_quantile` does; `None` with no observations.
pub(crate) fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                // Above the highest finite bound: report that bound, as Prometheus does.
                return Some(lower.0);
            }
            let in_bucket = count - lower.1;
            let fraction = if in_bucket > 0.0 {
                (rank - lower.1) / in_bucket
            } else {
                1.0
            };
            return Some(lower.0 + (bound - lower.0) * fraction);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

/// The ring of samples and the latest gauges, shared by the sampler and the handlers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    inner: Arc<Mutex<Ring>>,
}

#[derive(Debug, Default)]
struct Ring {
    samples: VecDeque<Sample>,
    gauges: Gauges,
}

impl Series {
    /// Appends a sample, dropping the oldest past [`CAPACITY`].
    pub(crate) fn push(&self, sample: Sample, gauges: Gauges) {
        let mut ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if ring.samples.len() == CAPACITY {
            ring.samples.pop_front();
        }
        ring.samples.push_back(sample);
        ring.gauges = gauges;
    }

    /// The samples newer than `since` (unix ms; 0: all) and the latest gauges.
    pub(crate) fn snapshot(&self, since: u64) -> (Vec<Sample>, Gauges) {
        let ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let samples = ring
            .samples
            .iter()
            .filter(|s| s.t > since)
            .cloned()
            .collect();
        (samples, ring.gauges.clone())
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Samples `registry` every `every` into `series`, forever. Ticks missed while the runtime was
/// busy are skipped, not caught up.
pub(crate) async fn sample(registry: Registry, series: Series, every: Duration) {
    let start = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut prev = Reading::default();
    loop {
        ticks.tick().await;
        let now = Reading::from_families(&registry.gather(), start.elapsed());
        if prev.at.is_some() {
            series.push(now.since(&prev, unix_ms()), now.gauges.clone());
        }
        prev = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let buckets = [(0.1, 50.0), (0.2, 100.0), (f64::INFINITY, 100.0)];
        assert_eq!(quantile(&buckets, 0.5), Some(0.1));
        let p75 = quantile(&buckets, 0.75).unwrap();
        assert!((p75 - 0.15).abs() < 1e-9, "{p75}");
        assert_eq!(quantile(&[(0.1, 0.0), (f64::INFINITY, 0.0)], 0.5), None);
        assert_eq!(quantile(&[], 0.5), None);
        // Everything above the last finite bound: that bound.
        assert_eq!(
            quantile(&[(0.1, 0.0), (f64::INFINITY, 4.0)], 0.99),
            Some(0.1)
        );
    }

    #[test]
    fn two_readings_make_per_second_rates() {
        let registry = Registry::new();
        let latency = HistogramVec::new(
            HistogramOpts::new("http_server_request_duration_seconds", "h")
                .buckets(vec![0.01, 0.1, 1.0]),
            &["method", "route", "status"],
        )
        .unwrap();
        let limited = IntCounterVec::new(
            Opts::new("espresso_rate_limit_requests_total", "c"),
            &["limiter", "decision"],
        )
        .unwrap();
        let hits = IntCounterVec::new(
            Opts::new("espresso_filter_hits_total", "c"),
            &["level", "category"],
        )
        .unwrap();
        registry.register(Box::new(latency.clone())).unwrap();
        registry.register(Box::new(limited.clone())).unwrap();
        registry.register(Box::new(hits.clone())).unwrap();

        let before = Reading::from_families(&registry.gather(), Duration::from_secs(1));
        for _ in 0..8 {
            latency
                .with_label_values(&["POST", "/v1/filter", "200"])
                .observe(0.005);
        }
        for _ in 0..2 {
            latency
                .with_label_values(&["POST", "/v1/filter", "429"])
                .observe(0.5);
        }
        limited.with_label_values(&["ip", "limited"]).inc_by(2);
        limited.with_label_values(&["ip", "allowed"]).inc_by(8);
        hits.with_label_values(&["danger", "abuse"]).inc_by(3);
        hits.with_label_values(&["normal", "spam"]).inc_by(5);
        let after = Reading::from_families(&registry.gather(), Duration::from_secs(3));
        let sample = after.since(&before, 42);

        assert_eq!(sample.t, 42);
        assert_eq!(sample.rps, 5.0); // 10 requests over 2 s
        assert_eq!(sample.rate_limited, 1.0);
        assert_eq!(sample.status["200"], 4.0);
        assert_eq!(sample.status["429"], 1.0);
        assert!(sample.p50_ms.unwrap() <= 10.0);
        assert!(sample.p99_ms.unwrap() > 100.0);
        let top = &after.gauges.top_categories;
        assert_eq!(top[0].category, "spam");
        assert_eq!(top[1].category, "abuse");
        assert_eq!(after.gauges.requests_total, 10.0);
    }

    /// `n` latencies (seconds) spread as a Pareto distribution from `min` with tail index
    /// `alpha`: taken at the quantiles `(i + 0.5) / n`, so the set is the same on every run.
    fn pareto(n: usize, min: f64, alpha: f64) -> Vec<f64> {
        (0..n)
            .map(|i| min * (1.0 - (i as f64 + 0.5) / n as f64).powf(-1.0 / alpha))
            .collect()
    }

    /// The dashboard's p50/p95/p99 (milliseconds) of `latencies` recorded into a latency
    /// histogram with `bounds`, next to the exact ones.
    fn percentiles(bounds: &[f64], latencies: &[f64]) -> Vec<(f64, f64)> {
        let registry = Registry::new();
        let latency = HistogramVec::new(
            HistogramOpts::new("http_server_request_duration_seconds", "h")
                .buckets(bounds.to_vec()),
            &["method", "route", "status"],
        )
        .unwrap();
        registry.register(Box::new(latency.clone())).unwrap();
        let before = Reading::from_families(&registry.gather(), Duration::from_secs(1));
        let series = latency.with_label_values(&["POST", "/v1/filter", "200"]);
        for &l in latencies {
            series.observe(l);
        }
        let sample =
            Reading::from_families(&registry.gather(), Duration::from_secs(2)).since(&before, 0);
        let mut sorted = latencies.to_vec();
        sorted.sort_by(f64::total_cmp);
        let exact = |q: f64| sorted[(q * sorted.len() as f64).ceil() as usize - 1] * 1000.0;
        vec![
            (sample.p50_ms.unwrap(), exact(0.50)),
            (sample.p95_ms.unwrap(), exact(0.95)),
            (sample.p99_ms.unwrap(), exact(0.99)),
        ]
    }

    #[test]
    fn with_the_default_buckets_the_dashboard_percentiles_are_within_one_bucket_of_the_truth() {
        let bounds = espresso_slow_call::DEFAULT_BUCKETS;
        // Neighbouring bounds are at most this far apart: a percentile interpolated inside the
        // right bucket is off by less than that factor.
        let one_bucket = bounds.windows(2).map(|w| w[1] / w[0]).fold(1.0, f64::max);
        assert!(one_bucket <= 2.5 + 1e-9, "{one_bucket}");
        // The filter's shapes at 1k req/s (median about 0.1 ms, p99 0.7 ms) and at 25k req/s
        // (queueing: median 0.27 ms, p99 near 7 ms), and a slow dependency (median 60 ms).
        for (name, latencies) in [
            ("1k req/s", pareto(10_000, 0.000_07, 2.0)),
            ("25k req/s", pareto(100_000, 0.000_15, 1.2)),
            ("slow backend", pareto(10_000, 0.05, 3.0)),
        ] {
            for (shown, exact) in percentiles(bounds, &latencies) {
                let off = (shown / exact).max(exact / shown);
                assert!(
                    off <= one_bucket,
                    "{name}: dashboard {shown:.3} ms, exact {exact:.3} ms"
                );
            }
        }
    }

    #[test]
    fn buckets_starting_at_5_ms_cannot_show_a_sub_millisecond_service() {
        // OpenTelemetry's HTTP bounds, which the histogram used before: every 0.1 ms answer
        // lands in the first bucket and the percentiles are interpolation artefacts.
        let otel = [
            0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
        ];
        let shown = percentiles(&otel, &pareto(10_000, 0.000_07, 2.0));
        let (p50, exact) = shown[0];
        assert!(p50 / exact > 20.0, "p50 {p50} ms vs {exact} ms");
    }

    #[test]
    fn the_ring_keeps_the_newest_samples() {
        let series = Series::default();
        let reading = Reading::default();
        for t in 1..=(CAPACITY as u64 + 5) {
            series.push(reading.since(&reading, t), Gauges::default());
        }
        let (all, _) = series.snapshot(0);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].t, 6);
        let (recent, _) = series.snapshot(CAPACITY as u64 + 3);
        assert_eq!(recent.len(), 2);
    }
}
