//! Prometheus metrics of [`SlowCallLayer`](crate::SlowCallLayer) (feature `metrics`).

use crate::policy::{RouteLabel, method_label};
use espresso_common::{metrics::register_all, series::KeptSeries};
use http::Method;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    core::Collector,
};

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
/// `status` is the HTTP status code (`"200"`) of the codes services commonly answer (200, 201,
/// 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 499, 500,
/// 501, 502, 503, 504) and the class of any other (`"2xx"`, `"4xx"`), so that a backend's odd
/// codes cannot grow the label set; the gRPC status name for gRPC calls (`"OK"`,
/// `"UNAVAILABLE"`; a gRPC call answered with an HTTP status other than 200, a proxy's `503`
/// say, by the name gRPC's HTTP mapping gives it, `"UNAVAILABLE"`); `"cancelled"` when the
/// client went away first, and `"error"` when the inner service or the body failed. The
/// slow-call log line gives the exact HTTP status. `route` is a known route or
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
    /// All or nothing: when one family cannot be registered (`registry` already holds a metric
    /// of its name, from this crate or another), the families registered before it are
    /// unregistered again, so the registry exports nothing of the failed attempt, and the error
    /// names the family.
    ///
    /// ```
    /// use espresso_slow_call::SlowCallMetrics;
    ///
    /// let registry = prometheus::Registry::new();
    /// let taken = prometheus::IntGauge::new("http_server_active_requests", "Someone else's.")?;
    /// registry.register(Box::new(taken))?;
    /// let err = SlowCallMetrics::register(&registry).unwrap_err();
    /// assert!(err.to_string().contains("http_server_active_requests"), "{err}");
    /// // Only the other gauge is registered: no latency histogram, no slow-call counter.
    /// assert_eq!(registry.gather().len(), 1);
    /// # Ok::<(), prometheus::Error>(())
    /// ```
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Self::register_with_buckets(registry, DEFAULT_BUCKETS.to_vec())
    }

    /// Checks histogram bounds as [`register_with_buckets`](Self::register_with_buckets) does,
    /// without registering anything: for a config file to refuse them where they are written.
    /// The error says what is wrong; prometheus would refuse such bounds only at the first
    /// request (by panicking there), replace them silently (an empty list) or accept them
    /// without meaning (NaN).
    ///
    /// ```
    /// use espresso_slow_call::{DEFAULT_BUCKETS, SlowCallMetrics};
    ///
    /// assert!(SlowCallMetrics::check_buckets(DEFAULT_BUCKETS).is_ok());
    /// let why = SlowCallMetrics::check_buckets(&[0.5, 0.1]).unwrap_err();
    /// assert_eq!(why, "bounds must be strictly increasing, but 0.5 is followed by 0.1");
    /// ```
    pub fn check_buckets(buckets: &[f64]) -> Result<(), String> {
        if buckets.is_empty() {
            return Err(
                "at least one bound is needed (SlowCallMetrics::register uses DEFAULT_BUCKETS)"
                    .into(),
            );
        }
        if let Some(b) = buckets.iter().find(|b| !b.is_finite()) {
            return Err(format!(
                "{b} is not a finite number of seconds (the +Inf bucket is implicit: leave it out)"
            ));
        }
        if let Some(b) = buckets.iter().find(|&&b| b <= 0.0) {
            return Err(format!(
                "{b} is not greater than 0 (no request takes 0 s or less)"
            ));
        }
        if let Some(w) = buckets.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "bounds must be strictly increasing, but {} is followed by {}",
                w[0], w[1]
            ));
        }
        Ok(())
    }

    /// Creates the metrics with these histogram bounds and registers them, all or nothing as
    /// [`register`](Self::register) does.
    ///
    /// The bounds are upper bounds in seconds: at least one, each finite and greater than 0 (no
    /// request takes 0 s or less, so such a bound would hold nothing), strictly increasing. The
    /// `+Inf` bucket is implicit: leave it out. Other bounds are refused with an error naming the
    /// problem, before anything is registered, rather than at the first request.
    ///
    /// ```
    /// use espresso_slow_call::SlowCallMetrics;
    ///
    /// let registry = prometheus::Registry::new();
    /// let err = SlowCallMetrics::register_with_buckets(&registry, vec![0.5, 0.1]).unwrap_err();
    /// assert!(err.to_string().contains("strictly increasing"), "{err}");
    /// // An empty list is refused too, not replaced by prometheus' own defaults.
    /// assert!(SlowCallMetrics::register_with_buckets(&registry, vec![]).is_err());
    /// assert!(registry.gather().is_empty());
    ///
    /// SlowCallMetrics::register_with_buckets(&registry, vec![0.01, 0.1, 1.0])?;
    /// # Ok::<(), prometheus::Error>(())
    /// ```
    pub fn register_with_buckets(
        registry: &Registry,
        buckets: Vec<f64>,
    ) -> Result<Self, prometheus::Error> {
        Self::check_buckets(&buckets).map_err(|why| {
            prometheus::Error::Msg(format!("latency histogram buckets {buckets:?}: {why}"))
        })?;
        let opts = HistogramOpts::new(
            "http_server_request_duration_seconds",
            "Time from a request's arrival to the end of its response body.",
        )
        .buckets(buckets);
        // Prometheus checks the bounds only when a series is created, which would be inside a
        // request: one histogram built now turns any bound it refuses into this error.
        Histogram::with_opts(opts.clone())?;
        let duration = HistogramVec::new(opts, &["method", "route", "status"])?;
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
        register_all(
            registry,
            [
                Box::new(duration.clone()) as Box<dyn Collector>,
                Box::new(slow.clone()),
                Box::new(active.clone()),
            ],
        )?;
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

    #[test]
    fn bounds_out_of_order_repeated_empty_or_meaningless_are_refused_at_registration() {
        let registry = Registry::new();
        for (buckets, why) in [
            (
                vec![0.5, 0.1],
                "strictly increasing, but 0.5 is followed by 0.1",
            ),
            (
                vec![0.1, 0.1],
                "strictly increasing, but 0.1 is followed by 0.1",
            ),
            (vec![], "at least one bound"),
            (vec![0.1, f64::NAN], "NaN is not a finite number"),
            (vec![0.1, f64::INFINITY], "the +Inf bucket is implicit"),
            (vec![0.0, 0.1], "0 is not greater than 0"),
            (vec![-0.1, 0.1], "-0.1 is not greater than 0"),
        ] {
            let err = SlowCallMetrics::register_with_buckets(&registry, buckets.clone())
                .expect_err(&format!("{buckets:?} refused"));
            assert!(err.to_string().contains(why), "{buckets:?}: {err}");
        }
        assert!(registry.gather().is_empty(), "nothing registered");
        // Accepted bounds make series, at registration and in requests, without panicking.
        let metrics = SlowCallMetrics::register_with_buckets(&registry, vec![0.1, 0.5]).unwrap();
        metrics.expect(&Method::GET, "/", "200");
        metrics.observe("GET", &RouteLabel::Unmatched, "200", 0.2);
        assert_eq!(count_of(&metrics, "GET", "unmatched"), 1);
    }

    #[test]
    fn a_registration_that_collides_leaves_nothing_behind_and_names_the_family() {
        for name in [
            "http_server_request_duration_seconds",
            "espresso_slow_calls_total",
            "http_server_active_requests",
        ] {
            let registry = Registry::new();
            let other = IntGauge::new(name, "Someone else's metric.").unwrap();
            registry.register(Box::new(other.clone())).unwrap();
            let err = SlowCallMetrics::register(&registry).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
            let names: Vec<String> = registry
                .gather()
                .iter()
                .map(|f| f.name().to_owned())
                .collect();
            assert_eq!(names, [name], "only the other metric is registered");
            // A retry meets the same collision, not the families the first attempt left behind.
            let again = SlowCallMetrics::register(&registry).unwrap_err();
            assert_eq!(again.to_string(), err.to_string());
        }
        // A collision with an identical family, once removed, leaves the registry usable.
        let registry = Registry::new();
        let same = IntGauge::new(
            "http_server_active_requests",
            "Requests in flight, until their response body ends.",
        )
        .unwrap();
        registry.register(Box::new(same.clone())).unwrap();
        assert!(SlowCallMetrics::register(&registry).is_err());
        registry.unregister(Box::new(same)).unwrap();
        SlowCallMetrics::register(&registry).unwrap();
    }

    fn count_of(metrics: &SlowCallMetrics, method: &str, route: &str) -> u64 {
        metrics
            .duration
            .with_label_values(&[method, route, "200"])
            .get_sample_count()
    }
}
