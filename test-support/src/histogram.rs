//! Latency histograms read from a Prometheus text scrape, and their percentiles computed as
//! Prometheus' `histogram_quantile` (and so Grafana) computes them.
//!
//! ```
//! use espresso_test_support::histogram::{bucket_of, histogram_quantile, route_buckets};
//!
//! let scrape = r#"
//! http_server_request_duration_seconds_bucket{le="0.0001",method="POST",route="/v1/filter",status="200"} 40
//! http_server_request_duration_seconds_bucket{le="0.0002",method="POST",route="/v1/filter",status="200"} 100
//! http_server_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/filter",status="200"} 100
//! "#;
//! let buckets = route_buckets(scrape, "/v1/filter");
//! assert_eq!(buckets, [(0.0001, 40.0), (0.0002, 100.0), (f64::INFINITY, 100.0)]);
//! // The median's rank, 50, is 10 of the 60 observations into the second bucket.
//! let p50 = histogram_quantile(0.5, &buckets);
//! assert!((p50 - 0.000_116_67).abs() < 1e-8);
//! assert_eq!(bucket_of(p50, &buckets), 1);
//! ```

/// `(upper bound, cumulative count)` of the `http_server_request_duration_seconds` buckets of
/// `route` in a scrape, summed over methods and statuses, in bound order.
pub fn route_buckets(scrape: &str, route: &str) -> Vec<(f64, f64)> {
    let route = format!(r#"route="{route}""#);
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in scrape.lines() {
        let Some(rest) = line.strip_prefix("http_server_request_duration_seconds_bucket{") else {
            continue;
        };
        if !rest.contains(&route) {
            continue;
        }
        let le = rest
            .split(r#"le=""#)
            .nth(1)
            .and_then(|le| le.split('"').next());
        let bound = match le {
            Some("+Inf") => f64::INFINITY,
            Some(le) => match le.parse() {
                Ok(bound) => bound,
                Err(_) => continue,
            },
            None => continue,
        };
        let Some(Ok(count)) = line.rsplit(' ').next().map(str::parse::<f64>) else {
            continue;
        };
        match buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some(slot) => slot.1 += count,
            None => buckets.push((bound, count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The observations between two scrapes: `after`'s counts less `before`'s, bucket by bucket.
pub fn since(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(bound, count)| {
            let earlier = before
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0.0, |b| b.1);
            (bound, count - earlier)
        })
        .collect()
}

/// Prometheus' `histogram_quantile`: linear interpolation inside the bucket that holds the
/// rank, the last finite bound when the rank is in `+Inf`; `NaN` with no observations.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return f64::NAN;
    };
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return lower.0;
            }
            return lower.0 + (bound - lower.0) * (rank - lower.1) / (count - lower.1);
        }
        lower = (bound, count);
    }
    lower.0
}

/// The index of the bucket `seconds` falls in.
pub fn bucket_of(seconds: f64, buckets: &[(f64, f64)]) -> usize {
    buckets
        .iter()
        .take_while(|(bound, _)| *bound < seconds)
        .count()
}
