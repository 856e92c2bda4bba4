//! The operator surface: a live dashboard, CPU profiles and log files.
//!
//! | path | what | when |
//! | --- | --- | --- |
//! | `GET /debug/dashboard` | live charts, refreshed every second | `[debug] dashboard = true` (default) |
//! | `GET /debug/dashboard/data` | the charts' data as JSON (below) | same |
//! | `GET /debug/pprof/profile?seconds=N` | CPU profile, pprof protobuf (`&format=svg`: flame graph) | `[debug] pprof = true` |
//!
//! Both are read at start-up; changing `[debug]` needs a restart. Log files: see [`logfile`].
//!
//! # The dashboard's data
//!
//! A sampler task reads the server's Prometheus registry once a second (the same figures
//! `/metrics` exports) and keeps the last five minutes of derived series in a ring.
//! `GET /debug/dashboard/data[?since=T]` answers:
//!
//! ```json
//! {
//!   "interval_ms": 1000,
//!   "capacity": 300,
//!   "samples": [{
//!     "t": 1764089000000,          // unix ms
//!     "rps": 812.0,                // requests finished per second, every route
//!     "p50_ms": 0.4, "p95_ms": 2.1, "p99_ms": 4.8,   // null when nothing finished
//!     "status": {"200": 790.0, "429": 22.0},         // responses per second by status
//!     "rate_limited": 22.0,        // refused by a rate limiter, per second
//!     "shed": 0.0,                 // sent to a degrade fallback, per second
//!     "degraded": 0.0,             // filter answers marked degraded, per second
//!     "verdicts": {"pass": 700.0, "block": 90.0},    // filter answers per second
//!     "cpu_percent": 35.2,         // of one core; null before two readings
//!     "rss_bytes": 31457280.0
//!   }],
//!   "breakers": {"classifier": "closed"},            // current state per circuit breaker
//!   "adaptive_limits": {"filter": 64.0},             // current limit per degrade layer
//!   "top_categories": [{"category": "abuse", "level": "danger", "hits": 90.0}],
//!   "requests_total": 123456.0
//! }
//! ```
//!
//! `samples` is oldest first; with `since=T` (a `t` the client already has) only newer samples
//! come back, so a page polling every second moves one sample per poll.

mod dashboard;
pub mod logfile;
mod pprof;
mod series;

use crate::config::Config;
use axum::{Router, routing::get};
use prometheus::Registry;
use std::time::Duration;

/// The `/debug/*` routes `config.debug` enables. Starts the dashboard's sampler task (so call
/// it inside the runtime) and registers `espresso_log_dropped_lines_total`.
pub(crate) fn router(registry: &Registry, config: &Config) -> Router {
    // Registered once per registry; a second router over the same registry keeps the first.
    let _ = registry.register(Box::new(logfile::DroppedLines::new()));
    let debug = &config.debug;
    let mut router = Router::new();
    if debug.dashboard {
        let series = series::Series::default();
        tokio::spawn(series::sample(
            registry.clone(),
            series.clone(),
            Duration::from_secs(1),
        ));
        router = router.merge(dashboard::routes(series));
    }
    if debug.pprof {
        let max = config.pprof_max_seconds();
        router = router.route(
            "/debug/pprof/profile",
            get(pprof::profile).with_state(pprof::Profiling::new(max)),
        );
    }
    router
}
