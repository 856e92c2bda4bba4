//! `loadgen URL [--connections N] [--duration SECS] [--warmup SECS] [--body JSON] [--rate R]
//! [--unique-client-ips true] [--metrics-route ROUTE]`
//!
//! HTTP/1.1 load over N keep-alive connections: closed loop (the next request as soon as the
//! previous answer is read), or with `--rate` a fixed schedule of R requests/s whose latency is
//! measured from when each request was due. Prints requests/s, latency percentiles, statuses.
//! With `--unique-client-ips true` every request names a new client in `X-Forwarded-For`.
//! With `--metrics-route ROUTE` it also scrapes the server's `/metrics` when measuring starts
//! and ends, and prints the p50/p95/p99 that the server's latency histogram gives for that route
//! label over the same window (as Grafana's `histogram_quantile` computes them) next to its own,
//! and how many histogram buckets apart each pair is. The server's histogram times its layer
//! stack; the client's figure adds the loopback, both HTTP stacks and its own scheduling, so a
//! probe connection also times `/healthz` (which the server answers at once) and the last line
//! compares the client's median less that transport with the server's.

use espresso_benches::load::{LoadPlan, run};
use std::time::Duration;

const USAGE: &str = "usage: loadgen URL [--connections 150] [--duration 10] [--warmup 2] [--body JSON] [--rate R] [--unique-client-ips true] [--metrics-route /v1/filter]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or(USAGE)?.parse()?;
    let mut plan = LoadPlan {
        url,
        body: r#"{"content": "a plain chat line, nothing to see here 你好"}"#.into(),
        connections: 150,
        warmup: Duration::from_secs(2),
        duration: Duration::from_secs(10),
        rate: None,
        unique_client_ips: false,
        metrics_route: None,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(USAGE)?;
        match flag.as_str() {
            "--connections" => plan.connections = value.parse()?,
            "--duration" => plan.duration = Duration::from_secs_f64(value.parse()?),
            "--warmup" => plan.warmup = Duration::from_secs_f64(value.parse()?),
            "--body" => plan.body = value.into(),
            "--rate" => plan.rate = Some(value.parse()?),
            "--unique-client-ips" => plan.unique_client_ips = value.parse()?,
            "--metrics-route" => plan.metrics_route = Some(value),
            _ => return Err(USAGE.into()),
        }
    }
    let report = run(plan).await?;
    println!("{report}");
    Ok(())
}
