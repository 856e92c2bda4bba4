//! The latency histogram tells the truth: percentiles computed from a scrape of
//! `http_server_request_duration_seconds` as Grafana's `histogram_quantile` computes them (and the
//! server's dashboard, which uses the same interpolation) fall within one bucket of what the
//! client itself measured, less the client's own transport time. That time is measured in the
//! same run: the client's latency of `/healthz`, which the server answers at once.
//!
//! The median is compared here. The client's tail on a shared test machine is its own scheduling
//! (milliseconds the server never sees), so p95 and p99 are checked where the latencies are
//! known exactly: `ops::series`'s tests feed the dashboard's computation from a histogram with
//! the default bounds.

use crate::harness::Server;
use espresso_test_support::histogram::{bucket_of, histogram_quantile, route_buckets, since};
use std::time::{Duration, Instant};

/// The `q` quantile of sorted values.
fn exact(q: f64, sorted: &[f64]) -> f64 {
    sorted[(q * sorted.len() as f64).ceil() as usize - 1]
}

#[tokio::test]
async fn the_histogram_median_agrees_with_the_client_within_one_bucket() {
    const N: usize = 1000;
    let server = Server::start("[rate_limit]\nper_second = 1000000\nburst = 1000000\n").await;
    let scrape = || async {
        let text = String::from_utf8(server.get("/metrics").await.body.to_vec()).unwrap();
        (
            route_buckets(&text, "/v1/filter"),
            route_buckets(&text, "/healthz"),
        )
    };
    // Warm the connection and the server's caches first; the scrape before the run is the
    // baseline the run's counts are taken from.
    for _ in 0..50 {
        server.filter("warm up").await;
        server.get("/healthz").await;
    }
    let (filter_before, probe_before) = scrape().await;

    // About 1k req/s, one request at a time, each timed by the client: a filter request, then
    // a probe, so that both see the same machine.
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut filter, mut probe) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for i in 0..N {
        ticks.tick().await;
        let start = Instant::now();
        let reply = server.filter(&format!("a plain chat line {i}")).await;
        filter.push(start.elapsed().as_secs_f64());
        assert_eq!(reply.status, 200);
        let start = Instant::now();
        server.get("/healthz").await;
        probe.push(start.elapsed().as_secs_f64());
    }
    filter.sort_by(f64::total_cmp);
    probe.sort_by(f64::total_cmp);

    let (filter_after, probe_after) = scrape().await;
    let filter_run = since(&filter_after, &filter_before);
    let probe_run = since(&probe_after, &probe_before);
    assert_eq!(
        filter_run.last().unwrap().1,
        N as f64,
        "each request recorded once"
    );
    // The client's own time per request: what it measured of a probe the server answers at
    // once, less the server's part of it.
    let transport = exact(0.5, &probe) - histogram_quantile(0.5, &probe_run);
    let client = exact(0.5, &filter) - transport;
    let shown = histogram_quantile(0.5, &filter_run);
    let (a, b) = (
        bucket_of(client, &filter_run),
        bucket_of(shown, &filter_run),
    );
    assert!(
        a.abs_diff(b) <= 1,
        "p50: client {:.3} ms less {:.3} ms of transport (bucket {a}), histogram {:.3} ms \
         (bucket {b}); buckets {filter_run:?}",
        exact(0.5, &filter) * 1000.0,
        transport * 1000.0,
        shown * 1000.0,
    );
}
