//! `overload [--workers 8] [--service-ms 20] [--slo-ms 100] [--seconds 3] [--limits gradient2,aimd,vegas,...]`
//!
//! Limits (append `+q` for a queue as long as the workers, with the delay rule's target 5 ms and
//! interval one service time):
//! `gradient2`, `gradient2-t1.5` (tolerance 1.5), `gradient-controller` (Envoy's defaults),
//! `gradient-controller-b10` (buffer 10%), `aimd` (timeout 2× service time),
//! `vegas`, `vegas-tight` (queue bounds 2·log and 4·log), `vegas-1-2` (1·log and 2·log), `fixed` (the worker count: the oracle
//! that knows the capacity).
//!
//! The overload benchmark of `espresso-degrade`: an open-loop load generator against a test
//! service of known capacity, with and without `DegradeLayer`, in one run.
//!
//! - The test service (axum on 127.0.0.1) has `workers` slots (a tokio semaphore) and holds each
//!   for `service-ms` (a sleep): its capacity is exactly `workers / service time` requests per
//!   second, and requests beyond that wait in its own unbounded backlog, as in a thread-pool
//!   server.
//! - The generator sends requests at a fixed offered rate (open loop: a slow answer does not slow
//!   the sending), each on a pooled keep-alive HTTP/1.1 connection, with a 1 s client timeout.
//!   Latency is measured from the moment a request was due, so queueing anywhere counts.
//! - Goodput: answers `200` within the SLO, per second. Admitted latency: percentiles of the
//!   `200` answers. Shed: `503` answers from the layer.
//! - Each point (protection × offered load) runs on a fresh server: 1 s of load to settle, then
//!   `seconds` measured.
//! - Convergence: with the first listed limit, 3x load starts on an idle server and the limit is
//!   sampled every 10 ms; then the load drops to 0.5x and the time until nothing is shed and the
//!   p99 is back within 2x the unloaded p99 (over 100 ms windows) is reported.
//!
//! Command used for BENCHMARKS.md: `cargo run --release -p espresso-benches --bin overload`.

use axum::{Router, extract::State, routing::get};
use bytes::Bytes;
use espresso_degrade::{
    DegradeLayer,
    limit::{Aimd, Fixed, Gradient2, GradientController, Vegas},
};
use hdrhistogram::Histogram;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    time::Instant,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: overload [--workers 8] [--service-ms 20] [--slo-ms 100] [--seconds 3] [--limits gradient2,aimd,vegas,...]";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);
const SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Plan {
    workers: usize,
    service: Duration,
    slo: Duration,
    measured: Duration,
    limits: Vec<String>,
    /// `workers / mean time a worker is held`, measured by the unloaded run (a tokio sleep
    /// overshoots its duration by up to a timer tick, so the nominal figure is a little high).
    capacity: f64,
}

impl Plan {
    fn capacity(&self) -> f64 {
        self.capacity
    }
}

/// How long the workers were held, in total.
#[derive(Debug, Default)]
struct Holds {
    nanos: AtomicU64,
    count: AtomicU64,
}

impl Holds {
    fn mean(&self) -> Duration {
        let count = self.count.load(Ordering::Relaxed).max(1);
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed) / count)
    }
}

// === the test service ===

/// Starts the test service, protected by `protection` when given; answers its address and the
/// record of how long its workers were held.
async fn start_server(
    plan: &Plan,
    protection: Option<DegradeLayer>,
) -> Result<(SocketAddr, Arc<Holds>), BoxError> {
    let workers = Arc::new(Semaphore::new(plan.workers));
    let holds = Arc::new(Holds::default());
    let service_time = plan.service;
    let router = Router::new()
        .route(
            "/",
            get(
                move |State((workers, holds)): State<(Arc<Semaphore>, Arc<Holds>)>| async move {
                    let _slot = workers.acquire().await;
                    let start = Instant::now();
                    tokio::time::sleep(service_time).await;
                    let held = start.elapsed().as_nanos() as u64;
                    holds.nanos.fetch_add(held, Ordering::Relaxed);
                    holds.count.fetch_add(1, Ordering::Relaxed);
                    "ok"
                },
            ),
        )
        .with_state((workers, holds.clone()));
    let router = match protection {
        Some(layer) => router.layer(layer),
        None => router,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((addr, holds))
}

fn protection(name: &str, plan: &Plan) -> Option<DegradeLayer> {
    // `<limit>+q`: the same limit with a queue as long as the workers, and the delay rule tuned to
    // the service (target 5 ms, interval one service time).
    let (base, queued) = match name.strip_suffix("+q") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let layer = match base {
        "gradient2" => DegradeLayer::new(Gradient2::new().initial_limit(plan.workers).min_limit(1)),
        "gradient2-t1.5" => DegradeLayer::new(
            Gradient2::new()
                .initial_limit(plan.workers)
                .min_limit(1)
                .tolerance(1.5),
        ),
        "aimd" => DegradeLayer::new(
            Aimd::new()
                .initial_limit(plan.workers)
                .min_limit(1)
                .timeout(plan.service * 2),
        ),
        "vegas" => DegradeLayer::new(Vegas::new().initial_limit(plan.workers)),
        "vegas-tight" => DegradeLayer::new(
            Vegas::new()
                .initial_limit(plan.workers)
                .queue_bounds(2.0, 4.0),
        ),
        "vegas-1-2" => DegradeLayer::new(
            Vegas::new()
                .initial_limit(plan.workers)
                .queue_bounds(1.0, 2.0),
        ),
        "gradient-controller" => DegradeLayer::new(GradientController::new()),
        "gradient-controller-b10" => DegradeLayer::new(GradientController::new().buffer(0.1)),
        "fixed" => DegradeLayer::new(Fixed::new(plan.workers)),
        _ => return None,
    };
    Some(if queued {
        layer
            .queue(plan.workers)
            .queue_delay(Duration::from_millis(5), plan.service)
    } else {
        layer
    })
}

// === the load generator ===

/// Keep-alive HTTP/1.1 connections to one address, opened on demand.
struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<SendRequest<Empty<Bytes>>>>,
}

impl Pool {
    async fn get(&self) -> Result<StatusCode, BoxError> {
        let idle = self.idle.lock().unwrap().pop();
        let mut sender = match idle {
            Some(sender) if !sender.is_closed() => sender,
            _ => {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection);
                sender
            }
        };
        sender.ready().await?;
        let request = Request::get(format!("http://{}/", self.addr)).body(Empty::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        self.idle.lock().unwrap().push(sender);
        Ok(status)
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Answered(StatusCode),
    TimedOut,
    Failed,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    /// When the request was due, from the start of the run.
    due: Duration,
    latency: Duration,
    outcome: Outcome,
}

/// Sends at `rate` per second for each `(rate, duration)` phase in turn; answers every request's
/// record once all have finished.
async fn offer(addr: SocketAddr, phases: &[(f64, Duration)]) -> Vec<Record> {
    let pool = Arc::new(Pool {
        addr,
        idle: Mutex::new(Vec::new()),
    });
    let records = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut phase_start = Duration::ZERO;
    let mut tasks = Vec::new();
    for &(rate, length) in phases {
        let period = Duration::from_secs_f64(1.0 / rate);
        let mut due = phase_start;
        while due < phase_start + length {
            tokio::time::sleep_until(start + due).await;
            let (pool, records) = (pool.clone(), records.clone());
            tasks.push(tokio::spawn(async move {
                let outcome = match tokio::time::timeout(CLIENT_TIMEOUT, pool.get()).await {
                    Ok(Ok(status)) => Outcome::Answered(status),
                    Ok(Err(_)) => Outcome::Failed,
                    Err(_) => Outcome::TimedOut,
                };
                let latency = start.elapsed().saturating_sub(due);
                records.lock().unwrap().push(Record {
                    due,
                    latency,
                    outcome,
                });
            }));
            due += period;
        }
        phase_start += length;
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut records = std::mem::take(&mut *records.lock().unwrap());
    records.sort_by_key(|r| r.due);
    records
}

// === reporting ===

#[derive(Debug, Default)]
struct Summary {
    offered: f64,
    goodput: f64,
    ok_p50_ms: f64,
    ok_p99_ms: f64,
    shed: u64,
    late_or_lost: u64,
}

fn summarize(records: &[Record], from: Duration, to: Duration, slo: Duration) -> Summary {
    let window = records.iter().filter(|r| r.due >= from && r.due < to);
    let seconds = (to - from).as_secs_f64();
    let mut latencies = Histogram::<u64>::new(3).expect("a valid histogram");
    let mut summary = Summary::default();
    let mut offered = 0u64;
    let mut good = 0u64;
    for r in window {
        offered += 1;
        match r.outcome {
            Outcome::Answered(StatusCode::OK) => {
                let _ = latencies.record(r.latency.as_micros() as u64);
                if r.latency <= slo {
                    good += 1;
                } else {
                    summary.late_or_lost += 1;
                }
            }
            Outcome::Answered(StatusCode::SERVICE_UNAVAILABLE) => summary.shed += 1,
            Outcome::Answered(_) | Outcome::TimedOut | Outcome::Failed => summary.late_or_lost += 1,
        }
    }
    summary.offered = offered as f64 / seconds;
    summary.goodput = good as f64 / seconds;
    if !latencies.is_empty() {
        summary.ok_p50_ms = latencies.value_at_quantile(0.50) as f64 / 1000.0;
        summary.ok_p99_ms = latencies.value_at_quantile(0.99) as f64 / 1000.0;
    }
    summary
}

async fn point(plan: &Plan, name: &str, factor: f64) -> Result<(Summary, Duration), BoxError> {
    let (addr, holds) = start_server(plan, protection(name, plan)).await?;
    let rate = plan.capacity() * factor;
    let records = offer(addr, &[(rate, SETTLE + plan.measured)]).await;
    let summary = summarize(&records, SETTLE, SETTLE + plan.measured, plan.slo);
    Ok((summary, holds.mean()))
}

/// Limit convergence under 3x load, and recovery once the load drops to 0.5x.
async fn convergence(plan: &Plan, name: &str, unloaded_p99: f64) -> Result<(), BoxError> {
    let Some(layer) = protection(name, plan) else {
        return Ok(());
    };
    let (addr, _) = start_server(plan, Some(layer.clone())).await?;
    let overload = Duration::from_secs(4);
    let after = Duration::from_secs(3);
    let trace = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (trace, layer) = (trace.clone(), layer.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tick.tick().await;
                trace
                    .lock()
                    .unwrap()
                    .push((start.elapsed(), layer.current_limit()));
            }
        })
    };
    let records = offer(
        addr,
        &[
            (plan.capacity() * 3.0, overload),
            (plan.capacity() * 0.5, after),
        ],
    )
    .await;
    sampler.abort();
    let trace = std::mem::take(&mut *trace.lock().unwrap());

    // Steady limit: the median over the last 2 s of overload.
    let mut steady: Vec<usize> = trace
        .iter()
        .filter(|(t, _)| *t >= overload - Duration::from_secs(2) && *t < overload)
        .map(|&(_, l)| l)
        .collect();
    steady.sort_unstable();
    let steady = steady.get(steady.len() / 2).copied().unwrap_or(0);
    // Converged: the limit first comes within ±25% of its steady value.
    let band = |l: usize| (l as f64 - steady as f64).abs() <= steady as f64 * 0.25;
    let during: Vec<_> = trace.iter().filter(|(t, _)| *t < overload).collect();
    let converged = during
        .iter()
        .find(|(_, l)| band(*l))
        .map_or(overload, |(t, _)| *t);
    let peak_limit = during.iter().map(|(_, l)| *l).max().unwrap_or(0);

    // Client-visible: the first 100 ms window whose p99 of admitted requests is within 2x the
    // unloaded p99 and whose goodput is at least 90% of capacity.
    let step = Duration::from_millis(100);
    let windows = |from: Duration, to: Duration| {
        let mut out = Vec::new();
        let mut t = from;
        while t + step <= to {
            out.push((t, summarize(&records, t, t + step, plan.slo)));
            t += step;
        }
        out
    };
    let calm = |s: &Summary| s.ok_p99_ms <= 2.0 * unloaded_p99;
    let overload_windows = windows(Duration::ZERO, overload);
    let latency_ok_after = overload_windows
        .iter()
        .find(|(_, s)| calm(s) && s.goodput >= 0.9 * plan.capacity())
        .map_or(overload, |(t, _)| *t);
    let good_windows = overload_windows
        .iter()
        .filter(|(t, s)| *t >= Duration::from_secs(1) && calm(s))
        .count();
    let late_windows = overload_windows
        .iter()
        .filter(|(t, _)| *t >= Duration::from_secs(1))
        .count();
    let recovery_windows = windows(overload, overload + after);
    let recovered = recovery_windows
        .iter()
        .rposition(|(_, s)| s.shed > 0 || !calm(s))
        .map_or(Duration::ZERO, |i| {
            recovery_windows
                .get(i + 1)
                .map_or(after, |(t, _)| *t - overload)
        });
    println!(
        "{name}: 3x load from idle: limit within ±25% of its steady {steady} after {:.0} ms \
         (peak {peak_limit}); first 100 ms window with p99 <= 2x unloaded and goodput >= 90% after \
         {:.0} ms; {good_windows}/{late_windows} windows after the first second within 2x",
        converged.as_secs_f64() * 1e3,
        latency_ok_after.as_secs_f64() * 1e3
    );
    println!(
        "{name}: load down to 0.5x: nothing shed and p99 within 2x unloaded after {:.0} ms \
         (limit {} at the end)",
        recovered.as_secs_f64() * 1e3,
        trace.last().map_or(0, |&(_, l)| l)
    );
    Ok(())
}

fn parse_args() -> Result<Plan, BoxError> {
    let mut plan = Plan {
        workers: 8,
        service: Duration::from_millis(20),
        slo: Duration::from_millis(100),
        measured: Duration::from_secs(3),
        limits: [
            "gradient2",
            "gradient-controller",
            "aimd",
            "vegas",
            "vegas-tight",
            "gradient2+q",
            "fixed",
            "fixed+q",
        ]
        .map(String::from)
        .to_vec(),
        capacity: 0.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(USAGE)?;
        match flag.as_str() {
            "--workers" => plan.workers = value.parse()?,
            "--service-ms" => plan.service = Duration::from_millis(value.parse()?),
            "--slo-ms" => plan.slo = Duration::from_millis(value.parse()?),
            "--seconds" => plan.measured = Duration::from_secs_f64(value.parse()?),
            "--limits" => plan.limits = value.split(',').map(str::to_owned).collect(),
            _ => return Err(USAGE.into()),
        }
    }
    if plan.workers == 0 || plan.service.is_zero() || plan.limits.is_empty() {
        return Err(USAGE.into());
    }
    plan.capacity = plan.workers as f64 / plan.service.as_secs_f64();
    Ok(plan)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut plan = parse_args()?;
    let nominal = plan.capacity();
    let (unloaded, hold) = point(&plan, "none", 0.5).await?;
    plan.capacity = plan.workers as f64 / hold.as_secs_f64();
    let capacity = plan.capacity();
    println!(
        "test service: {} workers × {} ms sleep (nominal {nominal:.0} req/s); measured worker hold \
         {:.2} ms, so capacity {capacity:.0} req/s; SLO {} ms; {} s measured per point after {} s \
         of settling",
        plan.workers,
        plan.service.as_millis(),
        hold.as_secs_f64() * 1e3,
        plan.slo.as_millis(),
        plan.measured.as_secs_f64(),
        SETTLE.as_secs_f64(),
    );
    println!(
        "unloaded (0.5x nominal, no layer): p50 {:.1} ms, p99 {:.1} ms\n",
        unloaded.ok_p50_ms, unloaded.ok_p99_ms
    );

    println!(
        "| protection | load | offered req/s | goodput req/s | goodput % of capacity | admitted p50 ms | admitted p99 ms | p99 / unloaded p99 | shed 503/s | late or lost/s |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let names: Vec<&str> = std::iter::once("none")
        .chain(plan.limits.iter().map(String::as_str))
        .collect();
    for factor in [1.0, 2.0, 3.0, 5.0] {
        for name in &names {
            let (s, _) = point(&plan, name, factor).await?;
            let seconds = plan.measured.as_secs_f64();
            println!(
                "| {} | {factor}x | {:.0} | {:.0} | {:.0}% | {:.1} | {:.1} | {:.2} | {:.0} | {:.0} |",
                if *name == "none" {
                    "none (unprotected)"
                } else {
                    name
                },
                s.offered,
                s.goodput,
                100.0 * s.goodput / capacity,
                s.ok_p50_ms,
                s.ok_p99_ms,
                s.ok_p99_ms / unloaded.ok_p99_ms,
                s.shed as f64 / seconds,
                s.late_or_lost as f64 / seconds,
            );
        }
    }
    println!();
    for name in &plan.limits {
        convergence(&plan, name, unloaded.ok_p99_ms).await?;
    }
    Ok(())
}
