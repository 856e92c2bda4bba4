//! A load generator: `connections` keep-alive HTTP/1.1 connections, each sending the same
//! request again as soon as the previous answer is read (closed loop), or, with a `rate`, on a
//! fixed schedule, measuring latency from the time each request was *due* so that a stalled
//! server cannot hide its queueing (no coordinated omission, as in wrk2). A request whose
//! connection was idle at its due time counts from when the timer woke instead: tokio's timer
//! fires up to 1 ms late, and that delay is the generator's own.

use bytes::Bytes;
use espresso_test_support::histogram;
use hdrhistogram::Histogram;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::{
    collections::BTreeMap,
    fmt,
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::net::TcpStream;

/// What to send, how hard, for how long.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// `http://host:port/path`
    pub url: Uri,
    /// JSON body of every request.
    pub body: Bytes,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Time before measuring starts.
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
    /// Requests per second across all connections; `None`: as fast as answers come.
    pub rate: Option<f64>,
    /// Give every request its own `X-Forwarded-For` client address (10.0.0.1, 10.0.0.2, ...):
    /// a flood of distinct clients for a limiter that trusts the generator as a proxy.
    pub unique_client_ips: bool,
    /// Also scrape the server's `/metrics` when measuring starts and ends, and report the
    /// latency percentiles its `http_server_request_duration_seconds` histogram gives for this
    /// route label over the same window, next to the client's.
    pub metrics_route: Option<String>,
}

/// What the server's latency histogram says of the measured window.
#[derive(Debug, Clone)]
pub struct ServerLatency {
    /// `(upper bound, observations)` of the route's buckets within the window, cumulative.
    pub buckets: Vec<(f64, f64)>,
    /// The client's own share of a request's latency (loopback, both HTTP stacks, its scheduling)
    /// at the median, in milliseconds: the client's p50 for `/healthz`, which the server answers
    /// at once, less the server's histogram p50 for it, both over the window. Probed on one more
    /// connection, 200 times a second.
    pub transport_ms: f64,
}

impl ServerLatency {
    /// A percentile in milliseconds, interpolated as Prometheus' `histogram_quantile` does.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        histogram::histogram_quantile(q, &self.buckets) * 1000.0
    }

    /// How many buckets apart the server's and the client's `q` percentiles are (pass the
    /// client's less [`transport_ms`](Self::transport_ms) to compare like with like).
    pub fn buckets_apart(&self, q: f64, client_ms: f64) -> usize {
        let server = histogram::bucket_of(self.percentile_ms(q) / 1000.0, &self.buckets);
        let client = histogram::bucket_of(client_ms / 1000.0, &self.buckets);
        server.abs_diff(client)
    }
}

/// What one run measured.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Answers within the measured window, by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection errors).
    pub failed: u64,
    /// Latency of every answered request, in microseconds.
    pub latency_us: Option<Histogram<u64>>,
    /// Length of the measured window.
    pub elapsed: Duration,
    /// The server's own view of the window, with [`LoadPlan::metrics_route`].
    pub server: Option<ServerLatency>,
}

impl LoadReport {
    /// Answered requests per second.
    pub fn requests_per_second(&self) -> f64 {
        self.statuses.values().sum::<u64>() as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency percentile in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        self.latency_us
            .as_ref()
            .map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0)
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.0} req/s  p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  statuses {:?}  failed {}",
            self.requests_per_second(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.percentile_ms(0.999),
            self.statuses,
            self.failed,
        )?;
        if let Some(server) = &self.server {
            let [client50, client95, client99] = [0.50, 0.95, 0.99].map(|q| self.percentile_ms(q));
            write!(
                f,
                "\nclient   p50 {client50:.3} ms  p95 {client95:.3} ms  p99 {client99:.3} ms\n\
                 server   p50 {:.3} ms  p95 {:.3} ms  p99 {:.3} ms  (buckets apart: {} {} {})",
                server.percentile_ms(0.50),
                server.percentile_ms(0.95),
                server.percentile_ms(0.99),
                server.buckets_apart(0.50, client50),
                server.buckets_apart(0.95, client95),
                server.buckets_apart(0.99, client99),
            )?;
            let own = client50 - server.transport_ms;
            write!(
                f,
                "\nclient less its transport ({:.3} ms, from /healthz): p50 {own:.3} ms  \
                 (buckets apart: {})",
                server.transport_ms,
                server.buckets_apart(0.50, own),
            )?;
        }
        Ok(())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `GET path` on a connection of its own; the body.
async fn get(authority: &str, path: &str) -> Result<Bytes, BoxError> {
    let stream = TcpStream::connect(authority).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = Request::get(path)
        .header(http::header::HOST, authority)
        .body(Full::default())?;
    let body = sender.send_request(request).await?.into_body().collect();
    Ok(body.await?.to_bytes())
}

/// The latency buckets of `route` and of `/healthz` in the server's `/metrics` now.
async fn scrape(authority: &str, route: &str) -> Result<[Vec<(f64, f64)>; 2], BoxError> {
    let body = get(authority, "/metrics").await?;
    let text = std::str::from_utf8(&body)?;
    Ok([
        histogram::route_buckets(text, route),
        histogram::route_buckets(text, "/healthz"),
    ])
}

/// The client's latencies of `/healthz` in seconds, one keep-alive connection, every 5 ms
/// from `from` to `end`, sorted.
async fn probe(authority: &str, from: Instant, end: Instant) -> Result<Vec<f64>, BoxError> {
    let stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut ticks = tokio::time::interval_at(from.into(), Duration::from_millis(5));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seconds = Vec::new();
    while ticks.tick().await.into_std() < end {
        let request = Request::get("/healthz")
            .header(http::header::HOST, authority)
            .body(Full::default())?;
        let sent = Instant::now();
        sender
            .send_request(request)
            .await?
            .into_body()
            .collect()
            .await?;
        seconds.push(sent.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    Ok(seconds)
}

/// Runs the plan and merges what every connection measured.
pub async fn run(plan: LoadPlan) -> Result<LoadReport, Box<dyn std::error::Error + Send + Sync>> {
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let mut tasks = Vec::with_capacity(plan.connections);
    let clients = Arc::new(AtomicU32::new(0));
    // The server's histogram at both ends of the measured window, scraped on their own
    // connection while the load runs.
    let server = plan.metrics_route.clone().map(|route| {
        let authority = plan
            .url
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let [before, probe_before] = scrape(&authority, &route).await?;
            let probed = probe(&authority, Instant::now(), end).await?;
            tokio::time::sleep_until(end.into()).await;
            let [after, probe_after] = scrape(&authority, &route).await?;
            let server_probe = histogram::since(&probe_after, &probe_before);
            let client_probe = probed.get(probed.len() / 2).copied().unwrap_or(0.0);
            Ok::<_, BoxError>(ServerLatency {
                buckets: histogram::since(&after, &before),
                transport_ms: (client_probe - histogram::histogram_quantile(0.5, &server_probe))
                    .max(0.0)
                    * 1000.0,
            })
        })
    });
    for _ in 0..plan.connections {
        tasks.push(tokio::spawn(connection(
            plan.clone(),
            clients.clone(),
            measure_from,
            end,
        )));
    }
    let mut report = LoadReport {
        elapsed: plan.duration,
        latency_us: Some(Histogram::new(3)?),
        ..LoadReport::default()
    };
    for task in tasks {
        let part = task.await??;
        for (status, n) in part.statuses {
            *report.statuses.entry(status).or_default() += n;
        }
        report.failed += part.failed;
        if let (Some(all), Some(h)) = (report.latency_us.as_mut(), part.latency_us.as_ref()) {
            all.add(h)?;
        }
    }
    if let Some(server) = server {
        report.server = Some(server.await??);
    }
    Ok(report)
}

/// A fraction in [0, 1) that differs between calls, without a random-number dependency.
fn fastrand_fraction() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(Instant::now()) % 1_000_000) as f64 / 1_000_000.0
}

/// One connection's loop; reconnects when the server closes it. `clients` numbers the client
/// addresses of [`LoadPlan::unique_client_ips`] across connections.
async fn connection(
    plan: LoadPlan,
    clients: Arc<AtomicU32>,
    measure_from: Instant,
    end: Instant,
) -> Result<LoadReport, Box<dyn std::error::Error + Send + Sync>> {
    let authority = plan
        .url
        .authority()
        .ok_or("the URL needs a host and port")?
        .clone();
    let mut report = LoadReport {
        latency_us: Some(Histogram::new(3)?),
        ..LoadReport::default()
    };
    let histogram = report.latency_us.as_mut().expect("just set");
    // With a rate, this connection's share of it: one request every `interval`, starting at a
    // random-ish offset so connections do not fire in lockstep.
    let interval = plan
        .rate
        .map(|rate| Duration::from_secs_f64(plan.connections as f64 / rate));
    let mut due =
        Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(fastrand_fraction()));
    'connect: while Instant::now() < end {
        let Ok(stream) = TcpStream::connect(authority.as_str()).await else {
            report.failed += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        stream.set_nodelay(true)?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        while Instant::now() < end {
            let mut request = Request::post(plan.url.clone())
                .header(http::header::HOST, authority.as_str())
                .header(http::header::CONTENT_TYPE, "application/json");
            if plan.unique_client_ips {
                let n = clients.fetch_add(1, Ordering::Relaxed) + 1;
                let client = Ipv4Addr::from(0x0A00_0000 | (n & 0x00FF_FFFF));
                request = request.header("x-forwarded-for", client.to_string());
            }
            let request = request.body(Full::new(plan.body.clone()))?;
            let sent = match interval {
                Some(interval) => {
                    // Latency counts from the due time when the previous answer made this
                    // request late (the server's backlog), but from the wake-up when the
                    // connection was idle: tokio's timer wakes up to 1 ms after `due`, and that
                    // lateness is this generator's, not the server's.
                    let idle_before_due = Instant::now() < due;
                    tokio::time::sleep_until(due.into()).await;
                    let scheduled = if idle_before_due { Instant::now() } else { due };
                    due += interval;
                    scheduled
                }
                None => Instant::now(),
            };
            let answer = async {
                let response = sender.send_request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                Ok::<StatusCode, hyper::Error>(status)
            };
            let Ok(status) = answer.await else {
                if sent >= measure_from {
                    report.failed += 1;
                }
                continue 'connect;
            };
            if sent >= measure_from && Instant::now() <= end {
                histogram.record(sent.elapsed().as_micros() as u64)?;
                *report.statuses.entry(status.as_u16()).or_default() += 1;
            }
        }
    }
    Ok(report)
}
