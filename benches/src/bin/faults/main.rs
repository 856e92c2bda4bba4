//! `faults [--seconds-per-phase 10] [--clients 32] [--rate 3000] [--only classifier,redis,sigterm]`
//! `[--server target/release/espresso-server]`
//!
//! Fault injection under load against the release demo server: the long version of
//! `server/tests/server/faults.rs`. Clients keep sending `POST /v1/filter` (one keep-alive
//! connection each, every text new so no answer comes from the cache) at a fixed total rate
//! (`--rate 0`: each as fast as it gets answers), while three runs inject faults, each on a
//! fresh server. The default rate is well under what the server sustains on 2 shared cores, so
//! the degraded answers come from the faults, not from overload shedding.
//!
//! 1. Classifier: healthy, then slow (10× the 50 ms stage timeout), recovered, failing
//!    (`INTERNAL`), recovered, dead (its port refuses connections), back.
//! 2. Redis (the rate limiter's backend and the shared verdict cache): up, killed (`kill -9`),
//!    restarted on the same port.
//! 3. SIGTERM while every client has a request in flight (the classifier takes 20 ms a call).
//!
//! Every request counts in the phase it was sent in, by how it ended: `ok` (200), `degraded`
//! (200 with `degraded: true`), `429` and `503` (with the documented error JSON), `refused`
//! (nothing listens), `closed` (the connection closed under the request before any answer),
//! `unexpected` (anything else) and `lost` (no answer within 5 s). The breaker timings come
//! from the server's `/metrics`, scraped every 20 ms. The exit status is 1 when a request was
//! lost or answered unexpectedly, or the server was not up for every request it should have
//! been.
//!
//! Command used for RELIABILITY.md: `bash benches/faults.sh 10` (builds the release binaries,
//! then runs `target/release/faults --seconds-per-phase 10`).

mod backends;
// The same driver as the CI suite.
#[path = "../../../../server/tests/server/faults/load.rs"]
mod load;

use backends::{Classifier, Server};
use espresso_test_support::RedisServer;
use load::{Load, Monitor, Phase, table};
use std::{path::PathBuf, time::Duration};
use tokio::time::{Instant, sleep, sleep_until};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: faults [--seconds-per-phase 10] [--clients 32] [--server target/release/espresso-server]";
/// A rate limit the clients never reach (the limiter still runs).
const NO_LIMIT: &str = "[rate_limit]\nper_second = 1000000\nburst = 1000000\n";
/// The classifier stage's timeout in the classifier run (the server's default).
const CLASSIFIER_TIMEOUT: Duration = Duration::from_millis(50);

struct Args {
    phase: Duration,
    clients: usize,
    /// Requests per second of all clients; `None`: closed loop.
    rate: Option<f64>,
    /// Runs to do: `classifier`, `redis`, `sigterm`.
    runs: Vec<String>,
    server: PathBuf,
}

fn args() -> Result<Args, BoxError> {
    let mut parsed = Args {
        phase: Duration::from_secs(10),
        clients: 32,
        rate: Some(3000.0),
        runs: vec!["classifier".into(), "redis".into(), "sigterm".into()],
        server: std::env::current_exe()?.with_file_name("espresso-server"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(USAGE)?;
        match flag.as_str() {
            "--seconds-per-phase" => parsed.phase = Duration::from_secs_f64(value.parse()?),
            "--clients" => parsed.clients = value.parse()?,
            "--rate" => parsed.rate = Some(value.parse::<f64>()?).filter(|r| *r > 0.0),
            "--server" => parsed.server = value.into(),
            "--only" => parsed.runs = value.split(',').map(str::to_owned).collect(),
            _ => return Err(USAGE.into()),
        }
    }
    if !parsed.server.is_file() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p espresso-server` or pass --server",
            parsed.server.display()
        )
        .into());
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = args()?;
    let dir = std::env::temp_dir().join(format!("espresso-faults-{}", std::process::id()));
    println!(
        "machine: {} cores; {} clients, {}; {} s per phase; server {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.clients,
        args.rate
            .map_or("closed loop".into(), |r| format!("{r} requests/s")),
        args.phase.as_secs_f64(),
        args.server.display()
    );
    let mut passed = true;
    for run in &args.runs {
        let folder = dir.join(run);
        passed &= match run.as_str() {
            "classifier" => classifier_run(&args, &folder).await?,
            "redis" => redis_run(&args, &folder).await?,
            "sigterm" => sigterm_run(&args, &folder).await?,
            _ => return Err(USAGE.into()),
        };
    }
    if passed {
        let _ = std::fs::remove_dir_all(&dir);
        println!("every request answered as documented: lost = 0, unexpected = 0");
        Ok(())
    } else {
        println!("FAILED; server logs in {}", dir.display());
        std::process::exit(1);
    }
}

/// Prints the table and whether the run passed: nothing lost or unexpected, and (unless the
/// server was meant to go away) nothing refused or closed.
fn verdict(phases: &[Phase], unexpected: &[String], server_stays: bool) -> bool {
    print!("{}", table(phases));
    let lost: u64 = phases.iter().map(|p| p.lost + p.unexpected).sum();
    let gone: u64 = phases.iter().map(|p| p.refused + p.closed).sum();
    for sample in unexpected {
        println!("  unexpected: {sample}");
    }
    let passed = lost == 0 && (!server_stays || gone == 0);
    if !passed {
        println!("FAILED: {lost} lost or unexpected, {gone} refused or closed");
    }
    println!();
    passed
}

/// A reason for degraded answers, as metric samples to sum: those starting with the prefix and
/// containing the part.
type Cause = (&'static str, &'static str, &'static str);

/// What the classifier stage did instead of asking (outcomes other than `ok`).
const CLASSIFIER_CAUSES: [Cause; 4] = [
    (
        "timeout",
        "espresso_filter_classifier_requests_total",
        "\"timeout\"",
    ),
    (
        "error",
        "espresso_filter_classifier_requests_total",
        "\"error\"",
    ),
    (
        "breaker open",
        "espresso_filter_classifier_requests_total",
        "\"open\"",
    ),
    (
        "shed",
        "espresso_filter_classifier_requests_total",
        "\"shed\"",
    ),
];
/// Requests the overload protection answered from the word lists alone.
const OVERLOAD: Cause = (
    "overload",
    "espresso_degrade_requests_total",
    "route=\"fallback\"",
);

/// Prints, per phase, how often each cause happened (by the server's counters).
fn print_causes(monitor: &Monitor, phases: &[Phase], end: Instant, causes: &[Cause]) {
    println!("causes of degraded answers, by phase:");
    for (i, phase) in phases.iter().enumerate() {
        let until = phases.get(i + 1).map_or(end, |next| next.started);
        let counts: Vec<String> = causes
            .iter()
            .map(|(label, prefix, part)| {
                let count = monitor.sum_at(prefix, part, until)
                    - monitor.sum_at(prefix, part, phase.started);
                format!("{label} {count}")
            })
            .collect();
        println!("  {:<14} {}", phase.name, counts.join(", "));
    }
}

/// How long after `from` something happened: "already" when it held at `from`.
fn millis(from: Instant, to: Option<Instant>) -> String {
    match to {
        None => "never".into(),
        Some(to) if to == from => "already".into(),
        Some(to) => format!("{} ms", (to - from).as_millis()),
    }
}

fn breaker_state(name: &str, state: &str) -> String {
    format!(r#"espresso_circuit_breaker_state{{name="{name}",state="{state}"}}"#)
}

// === the classifier run ===

#[derive(Clone, Copy)]
enum Fault {
    Slow,
    Failing,
    Dead,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Slow => "slow",
            Fault::Failing => "failing",
            Fault::Dead => "dead",
        }
    }

    fn healed_name(self) -> &'static str {
        match self {
            Fault::Slow => "after slow",
            Fault::Failing => "after failing",
            Fault::Dead => "back",
        }
    }

    async fn inject(self, classifier: &mut Classifier) {
        match self {
            Fault::Slow => classifier.rules.set_delay(CLASSIFIER_TIMEOUT * 10),
            Fault::Failing => classifier.rules.set_failing(true),
            Fault::Dead => classifier.die().await,
        }
    }

    async fn heal(self, classifier: &mut Classifier) -> Result<(), BoxError> {
        match self {
            Fault::Slow => classifier.rules.set_delay(Duration::ZERO),
            Fault::Failing => classifier.rules.set_failing(false),
            Fault::Dead => classifier.come_back().await?,
        }
        Ok(())
    }
}

async fn classifier_run(args: &Args, dir: &std::path::Path) -> Result<bool, BoxError> {
    println!(
        "## classifier: slow ({} ms, stage timeout {} ms), failing (INTERNAL), dead (port closed)",
        (CLASSIFIER_TIMEOUT * 10).as_millis(),
        CLASSIFIER_TIMEOUT.as_millis()
    );
    let mut classifier = Classifier::start().await?;
    let server = Server::start(
        &args.server,
        dir,
        &format!(
            "[classifier]\nendpoint = \"{}\"\ntimeout_ms = {}\n{NO_LIMIT}",
            classifier.endpoint(),
            CLASSIFIER_TIMEOUT.as_millis()
        ),
    )
    .await?;
    let monitor = Monitor::start(
        server.addr,
        &[
            "espresso_circuit_breaker_",
            "espresso_filter_classifier_requests_total",
            "espresso_degrade_requests_total",
        ],
    );
    let load = Load::start(server.addr, args.clients, args.rate, "healthy");
    sleep(args.phase).await;

    struct Timing {
        fault: Fault,
        started: Instant,
        healed: Instant,
        recovered: Option<Instant>,
        calls: u64,
    }
    let mut timings = Vec::new();
    for fault in [Fault::Slow, Fault::Failing, Fault::Dead] {
        let calls = classifier.rules.calls();
        let started = load.phase(fault.name());
        fault.inject(&mut classifier).await;
        sleep_until(started + args.phase).await;
        let calls = classifier.rules.calls() - calls;
        let healed = load.phase(fault.healed_name());
        fault.heal(&mut classifier).await?;
        let recovered = load.first_ok(args.phase).await;
        sleep_until(healed + args.phase).await;
        timings.push(Timing {
            fault,
            started,
            healed,
            recovered,
            calls,
        });
    }
    let (phases, unexpected) = load.stop().await;
    let end = Instant::now();
    let passed = verdict(&phases, &unexpected, true);
    let mut causes = CLASSIFIER_CAUSES.to_vec();
    causes.push(OVERLOAD);
    print_causes(&monitor, &phases, end, &causes);
    println!();

    let open = breaker_state("classifier", "open");
    let closed = breaker_state("classifier", "closed");
    let opens = |from: &str, at: Instant| {
        let sample = format!(
            r#"espresso_circuit_breaker_transitions_total{{from="{from}",name="classifier",to="open"}}"#
        );
        monitor.value_at(&sample, at)
    };
    println!(
        "{:<8} {:>12} {:>6} {:>16} {:>6} {:>18} {:>14}",
        "fault",
        "breaker open",
        "opens",
        "classifier calls",
        "sent",
        "first ok after fix",
        "breaker closed"
    );
    for t in &timings {
        let times_opened = opens("closed", t.healed) + opens("half_open", t.healed)
            - opens("closed", t.started)
            - opens("half_open", t.started);
        let sent = phases
            .iter()
            .find(|p| p.name == t.fault.name())
            .map_or(0, Phase::sent);
        println!(
            "{:<8} {:>12} {:>6} {:>16} {:>6} {:>18} {:>14}",
            t.fault.name(),
            millis(t.started, monitor.reached(&open, 1.0, t.started)),
            times_opened,
            t.calls,
            sent,
            millis(t.healed, t.recovered),
            millis(t.healed, monitor.reached(&closed, 1.0, t.healed)),
        );
    }
    println!();
    print_timeline(&monitor, "classifier", &phases);
    monitor.stop().await;
    Ok(passed)
}

/// Prints when breaker `name` changed state, in seconds since the run began, with the phases.
fn print_timeline(monitor: &Monitor, name: &str, phases: &[Phase]) {
    let Some(begin) = phases.first().map(|p| p.started) else {
        return;
    };
    let mut events: Vec<(Instant, String)> = phases
        .iter()
        .map(|p| (p.started, format!("[{}]", p.name)))
        .collect();
    for state in ["closed", "open", "half_open"] {
        for (at, value) in monitor.changes(&breaker_state(name, state)) {
            if value == 1.0 {
                events.push((at, state.to_owned()));
            }
        }
    }
    events.sort_by_key(|(at, _)| *at);
    let line: Vec<String> = events
        .iter()
        .map(|(at, event)| format!("{:.2} {event}", (*at - begin).as_secs_f64()))
        .collect();
    println!(
        "{name} breaker, seconds since the run began: {}\n",
        line.join(", ")
    );
}

// === the Redis run ===

/// Whether the server uses `redis`: the rate limiter runs its script there and the verdict cache
/// writes to it. (A restarted Redis starts empty, with fresh statistics.)
fn uses(redis: &RedisServer) -> bool {
    redis.calls("evalsha") > 0 && !redis.keys("espresso:filter:verdict:*").is_empty()
}

async fn redis_run(args: &Args, dir: &std::path::Path) -> Result<bool, BoxError> {
    println!("## Redis (rate limiter backend and shared verdict cache): killed with -9, restarted");
    let mut redis = RedisServer::try_start()?;
    let url = redis.url();
    let server = Server::start(
        &args.server,
        dir,
        &format!(
            "[rate_limit]\nbackend = \"redis\"\nredis_url = \"{url}\"\n\
             per_second = 1000000\nburst = 1000000\n\
             [cache]\nredis_url = \"{url}\"\n"
        ),
    )
    .await?;
    let monitor = Monitor::start(
        server.addr,
        &[
            "espresso_circuit_breaker_state",
            "espresso_rate_limit_backend_local",
            "espresso_filter_cache_redis_errors_total",
            "espresso_degrade_requests_total",
        ],
    );
    let load = Load::start(server.addr, args.clients, args.rate, "redis up");
    sleep(args.phase).await;
    let used_before = uses(&redis);

    let killed = load.phase("redis killed");
    redis.kill();
    sleep_until(killed + args.phase).await;

    let back = load.phase("redis back");
    redis.try_restart()?;
    let mut used_again = None;
    while used_again.is_none() && Instant::now() < back + args.phase {
        if uses(&redis) {
            used_again = Some(Instant::now());
        }
        sleep(Duration::from_millis(20)).await;
    }
    sleep_until(back + args.phase).await;
    let (phases, unexpected) = load.stop().await;
    let end = Instant::now();
    let mut passed = verdict(&phases, &unexpected, true);
    let cache_errors = (
        "cache calls to Redis failed or skipped",
        "espresso_filter_cache_redis_errors_total",
        "",
    );
    print_causes(&monitor, &phases, end, &[OVERLOAD, cache_errors]);
    println!();

    let limiter_local = r#"espresso_rate_limit_backend_local{limiter="default"}"#;
    let cache_open = breaker_state("filter_cache_redis", "open");
    let cache_closed = breaker_state("filter_cache_redis", "closed");
    println!(
        "after the kill: cache breaker open {}, rate limiter on its local fallback {}\n\
         after the restart: cache breaker closed {}, rate limiter on Redis {}, both using Redis {}\n",
        millis(killed, monitor.reached(&cache_open, 1.0, killed)),
        millis(killed, monitor.reached(limiter_local, 1.0, killed)),
        millis(back, monitor.reached(&cache_closed, 1.0, back)),
        millis(back, monitor.reached(limiter_local, 0.0, back)),
        millis(back, used_again),
    );
    print_timeline(&monitor, "filter_cache_redis", &phases);
    if !used_before || used_again.is_none() {
        println!("FAILED: the server did not use Redis (before: {used_before})\n");
        passed = false;
    }
    monitor.stop().await;
    Ok(passed)
}

// === the SIGTERM run ===

async fn sigterm_run(args: &Args, dir: &std::path::Path) -> Result<bool, BoxError> {
    println!("## SIGTERM with a request in flight on every connection");
    let classifier = Classifier::start().await?;
    classifier.rules.set_delay(Duration::from_millis(20));
    let drain = Duration::from_secs(10);
    let mut server = Server::start(
        &args.server,
        dir,
        &format!(
            "[server]\ndrain_timeout_ms = {}\nshutdown_delay_ms = 1000\n\
             [classifier]\nendpoint = \"{}\"\ntimeout_ms = 1000\n{NO_LIMIT}",
            drain.as_millis(),
            classifier.endpoint()
        ),
    )
    .await?;
    let load = Load::start(server.addr, args.clients, args.rate, "serving");
    sleep(args.phase).await;

    let signal = load.phase("after SIGTERM");
    server.terminate()?;
    let status = server.wait(drain + Duration::from_secs(5)).await;
    let exited = signal.elapsed();
    // The clients find the port closed.
    sleep(Duration::from_millis(500)).await;
    let (phases, unexpected) = load.stop().await;
    let mut passed = verdict(&phases, &unexpected, false);
    let answered_late = phases.first().map_or(0, |p| p.answered_late);
    println!(
        "exit {} after {} ms (drain timeout {} ms); {answered_late} requests in flight at the signal answered\n",
        status.map_or("none (killed)".into(), |s| s.to_string()),
        exited.as_millis(),
        drain.as_millis()
    );
    if !status.is_some_and(|s| s.success()) {
        println!("FAILED: no clean exit; see {}\n", server.log.display());
        passed = false;
    }
    Ok(passed)
}
