//! The load of the fault runs: clients that keep sending `POST /v1/filter` through the phases
//! of a run and count every request by how it ended, and a monitor that scrapes `/metrics` to
//! time the breakers. One file for both: the CI suite (`server/tests/server/faults.rs`) and the
//! long run (`benches/src/bin/faults/`, which includes it by path); each uses part of it.
//!
//! Each client owns one keep-alive HTTP/1.1 connection and sends its next request as soon as the
//! last one is answered (closed loop), or, given a rate, on a fixed schedule (a client whose
//! answer comes late skips the slots it missed). Every text is new (client and sequence number
//! in it), so no answer comes from the verdict cache and every request reaches the remote
//! stages.

#![allow(dead_code)]

use bytes::Bytes;
use http::{
    Request, Response, StatusCode,
    header::{CONNECTION, CONTENT_TYPE, HOST, RETRY_AFTER},
};
use http_body_util::{BodyExt, Full};
use hyper::{
    body::Incoming,
    client::conn::http1::{self, SendRequest},
};
use hyper_util::rt::TokioIo;
use std::{
    collections::HashMap,
    fmt::Write as _,
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::{net::TcpStream, task::JoinHandle, time::Instant};

/// A request still unanswered after this long is lost.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 200 with every stage's opinion.
    Ok,
    /// 200 with `degraded: true`.
    Degraded,
    /// 429 with the error JSON and `Retry-After`.
    Limited,
    /// 503 with the error JSON.
    Shed,
    /// The connection was refused: nothing listens any more.
    Refused,
    /// The connection closed after the request was written, before any byte of an answer.
    Closed,
    /// Anything else: another status, a malformed or cut answer.
    Unexpected,
    /// No answer within [`ANSWER_TIMEOUT`].
    Lost,
}

/// The requests sent during one phase, by outcome.
#[derive(Debug, Clone)]
pub(crate) struct Phase {
    pub(crate) name: &'static str,
    pub(crate) started: Instant,
    pub(crate) ok: u64,
    pub(crate) degraded: u64,
    pub(crate) limited: u64,
    pub(crate) shed: u64,
    pub(crate) refused: u64,
    pub(crate) closed: u64,
    pub(crate) unexpected: u64,
    pub(crate) lost: u64,
    /// 200 answers that arrived after the next phase began (in flight at the change).
    pub(crate) answered_late: u64,
    /// When the first `Ok` answer to a request of this phase arrived.
    pub(crate) first_ok: Option<Instant>,
    /// When the first `Degraded` answer to a request of this phase arrived.
    pub(crate) first_degraded: Option<Instant>,
}

impl Phase {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            started: Instant::now(),
            ok: 0,
            degraded: 0,
            limited: 0,
            shed: 0,
            refused: 0,
            closed: 0,
            unexpected: 0,
            lost: 0,
            answered_late: 0,
            first_ok: None,
            first_degraded: None,
        }
    }

    /// Every request of the phase, whatever became of it.
    pub(crate) fn sent(&self) -> u64 {
        self.ok
            + self.degraded
            + self.limited
            + self.shed
            + self.refused
            + self.closed
            + self.unexpected
            + self.lost
    }

    fn record(&mut self, outcome: Outcome, at: Instant, late: bool) {
        let count = match outcome {
            Outcome::Ok => {
                self.first_ok.get_or_insert(at);
                &mut self.ok
            }
            Outcome::Degraded => {
                self.first_degraded.get_or_insert(at);
                &mut self.degraded
            }
            Outcome::Limited => &mut self.limited,
            Outcome::Shed => &mut self.shed,
            Outcome::Refused => &mut self.refused,
            Outcome::Closed => &mut self.closed,
            Outcome::Unexpected => &mut self.unexpected,
            Outcome::Lost => &mut self.lost,
        };
        *count += 1;
        if late && matches!(outcome, Outcome::Ok | Outcome::Degraded) {
            self.answered_late += 1;
        }
    }
}

/// The phases as a table, one row each.
pub(crate) fn table(phases: &[Phase]) -> String {
    let mut out = format!(
        "{:<14} {:>7} {:>7} {:>8} {:>5} {:>5} {:>7} {:>6} {:>10} {:>4}\n",
        "phase", "sent", "ok", "degraded", "429", "503", "refused", "closed", "unexpected", "lost"
    );
    for p in phases {
        let _ = writeln!(
            out,
            "{:<14} {:>7} {:>7} {:>8} {:>5} {:>5} {:>7} {:>6} {:>10} {:>4}",
            p.name,
            p.sent(),
            p.ok,
            p.degraded,
            p.limited,
            p.shed,
            p.refused,
            p.closed,
            p.unexpected,
            p.lost
        );
    }
    out
}

struct Shared {
    phases: Mutex<Vec<Phase>>,
    /// The first few unexpected answers, for the failure message.
    unexpected: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn current(&self) -> usize {
        self.phases.lock().unwrap().len() - 1
    }

    fn record(&self, phase: usize, outcome: Outcome, detail: Option<String>) {
        let now = Instant::now();
        let mut phases = self.phases.lock().unwrap();
        let late = phase + 1 < phases.len();
        phases[phase].record(outcome, now, late);
        drop(phases);
        if let Some(detail) = detail
            && matches!(outcome, Outcome::Unexpected | Outcome::Lost)
        {
            let mut samples = self.unexpected.lock().unwrap();
            if samples.len() < 10 {
                samples.push(detail);
            }
        }
    }
}

/// Clients sending to one server until [`Load::stop`].
pub(crate) struct Load {
    shared: Arc<Shared>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` clients against `addr`, in a first phase named `phase`; `rate`: requests
    /// per second of them all, `None` for a closed loop.
    pub(crate) fn start(
        addr: SocketAddr,
        clients: usize,
        rate: Option<f64>,
        phase: &'static str,
    ) -> Self {
        let shared = Arc::new(Shared {
            phases: Mutex::new(vec![Phase::new(phase)]),
            unexpected: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let started = Instant::now();
        let clients = (0..clients)
            .map(|id| {
                // Each client's schedule starts a slice of the interval after the previous one's.
                let schedule = rate.map(|rate| {
                    let interval = Duration::from_secs_f64(clients as f64 / rate);
                    (
                        started + interval.mul_f64(id as f64 / clients as f64),
                        interval,
                    )
                });
                tokio::spawn(client(id, addr, schedule, shared.clone()))
            })
            .collect();
        Self { shared, clients }
    }

    /// Begins the next phase: requests sent from now on count in it. Returns its start.
    pub(crate) fn phase(&self, name: &'static str) -> Instant {
        let phase = Phase::new(name);
        let started = phase.started;
        self.shared.phases.lock().unwrap().push(phase);
        started
    }

    /// The current phase as counted so far.
    pub(crate) fn current(&self) -> Phase {
        let phases = self.shared.phases.lock().unwrap();
        phases.last().unwrap().clone()
    }

    /// Waits until the current phase has an `Ok` answer, at most `limit`; returns when it came.
    pub(crate) async fn first_ok(&self, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = self.current().first_ok {
                return Some(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the clients (each finishes the request it is waiting for) and returns the phases
    /// and the first unexpected answers.
    pub(crate) async fn stop(self) -> (Vec<Phase>, Vec<String>) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.unwrap();
        }
        let phases = self.shared.phases.lock().unwrap().clone();
        let unexpected = self.shared.unexpected.lock().unwrap().clone();
        (phases, unexpected)
    }
}

async fn client(
    id: usize,
    addr: SocketAddr,
    mut schedule: Option<(Instant, Duration)>,
    shared: Arc<Shared>,
) {
    let mut connection = None;
    let mut sequence = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        if let Some((next, interval)) = &mut schedule {
            tokio::time::sleep_until(*next).await;
            *next = (*next + *interval).max(Instant::now());
        }
        sequence += 1;
        let phase = shared.current();
        let content = format!("client {id} line {sequence}: click here for a DISCOUNT");
        let (outcome, detail) =
            match tokio::time::timeout(ANSWER_TIMEOUT, send(&mut connection, addr, &content)).await
            {
                Ok(ended) => ended,
                Err(_) => {
                    connection = None;
                    (Outcome::Lost, Some(format!("no answer to {content:?}")))
                }
            };
        shared.record(phase, outcome, detail);
        if outcome == Outcome::Refused {
            // Nothing listens: try again later instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sends one request on the client's connection (opening one when needed).
async fn send(
    connection: &mut Option<SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
    content: &str,
) -> (Outcome, Option<String>) {
    let body = Bytes::from(serde_json::json!({ "content": content }).to_string());
    // A request hyper hands back unwritten (the connection closed first) goes out again on a
    // new connection; anything else ends the request.
    for _ in 0..3 {
        let sender = match connection {
            Some(sender) if !sender.is_closed() => sender,
            _ => match connect(addr).await {
                Ok(sender) => connection.insert(sender),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    return (Outcome::Refused, None);
                }
                Err(e) => return (Outcome::Unexpected, Some(format!("connect: {e}"))),
            },
        };
        if sender.ready().await.is_err() {
            *connection = None;
            continue;
        }
        let request = Request::post("/v1/filter")
            .header(HOST, addr.to_string())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))
            .unwrap();
        match sender.try_send_request(request).await {
            Ok(response) => {
                let (outcome, detail, close) = answer(response).await;
                if close {
                    *connection = None;
                }
                return (outcome, detail);
            }
            Err(mut error) => {
                *connection = None;
                if error.take_message().is_some() {
                    continue;
                }
                let error = error.into_error();
                return if error.is_parse() || error.is_user() {
                    (Outcome::Unexpected, Some(format!("send: {error}")))
                } else {
                    (Outcome::Closed, Some(format!("send: {error}")))
                };
            }
        }
    }
    (
        Outcome::Unexpected,
        Some("every connection closed before the request went out".into()),
    )
}

async fn connect(addr: SocketAddr) -> io::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    // Ends when either side closes.
    tokio::spawn(connection);
    Ok(sender)
}

/// Reads the whole answer and checks it has the shape `docs/http-api.md` gives its status. The
/// flag says the server closes the connection after it.
async fn answer(response: Response<Incoming>) -> (Outcome, Option<String>, bool) {
    let (parts, body) = response.into_parts();
    let close = parts
        .headers
        .get(CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            let detail = format!("{}: answer cut: {e}", parts.status);
            return (Outcome::Unexpected, Some(detail), true);
        }
    };
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let has_id = parts.headers.contains_key("x-request-id");
    let is_error = json["error"]["code"].is_string()
        && json["error"]["message"].is_string()
        && json["request_id"].is_string();
    let outcome = match parts.status {
        _ if !has_id => Outcome::Unexpected,
        StatusCode::OK => match (json["verdict"].as_str(), json["degraded"].as_bool()) {
            (Some(_), Some(false)) => Outcome::Ok,
            (Some(_), Some(true)) => Outcome::Degraded,
            _ => Outcome::Unexpected,
        },
        StatusCode::TOO_MANY_REQUESTS if is_error && parts.headers.contains_key(RETRY_AFTER) => {
            Outcome::Limited
        }
        StatusCode::SERVICE_UNAVAILABLE if is_error => Outcome::Shed,
        _ => Outcome::Unexpected,
    };
    let detail = (outcome == Outcome::Unexpected).then(|| {
        let text = String::from_utf8_lossy(&body);
        format!(
            "{}: {}",
            parts.status,
            text.chars().take(200).collect::<String>()
        )
    });
    (outcome, detail, close)
}

// === impl Monitor ===

/// Scrapes `/metrics` every 20 ms and keeps each change of the samples it watches.
pub(crate) struct Monitor {
    shared: Arc<MonitorShared>,
    task: JoinHandle<()>,
}

struct MonitorShared {
    /// (when, sample, new value), in time order.
    changes: Mutex<Vec<(Instant, String, f64)>>,
    stop: AtomicBool,
}

impl Monitor {
    /// Watches every sample whose name starts with one of `prefixes`.
    pub(crate) fn start(addr: SocketAddr, prefixes: &'static [&'static str]) -> Self {
        let shared = Arc::new(MonitorShared {
            changes: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let task = tokio::spawn(scrape(addr, prefixes, shared.clone()));
        Self { shared, task }
    }

    /// When `sample` first had `value` at or after `since` (`since` itself if it had it then).
    pub(crate) fn reached(&self, sample: &str, value: f64, since: Instant) -> Option<Instant> {
        let changes = self.shared.changes.lock().unwrap();
        let of_sample: Vec<_> = changes.iter().filter(|(_, s, _)| s == sample).collect();
        let then = of_sample.iter().rev().find(|(at, _, _)| *at <= since);
        if then.is_some_and(|(_, _, v)| *v == value) {
            return Some(since);
        }
        of_sample
            .iter()
            .find(|(at, _, v)| *at > since && *v == value)
            .map(|(at, _, _)| *at)
    }

    /// Every change of `sample`: when, and the new value.
    pub(crate) fn changes(&self, sample: &str) -> Vec<(Instant, f64)> {
        let changes = self.shared.changes.lock().unwrap();
        changes
            .iter()
            .filter(|(_, s, _)| s == sample)
            .map(|(at, _, v)| (*at, *v))
            .collect()
    }

    /// The value of `sample` at the last scrape before `at` (0 before the first: counters
    /// start there).
    pub(crate) fn value_at(&self, sample: &str, at: Instant) -> f64 {
        let changes = self.shared.changes.lock().unwrap();
        changes
            .iter()
            .rev()
            .find(|(when, s, _)| s == sample && *when <= at)
            .map_or(0.0, |(_, _, v)| *v)
    }

    /// The sum of every watched sample that starts with `prefix` and contains `part`, at the
    /// last scrape before `at`.
    pub(crate) fn sum_at(&self, prefix: &str, part: &str, at: Instant) -> f64 {
        let changes = self.shared.changes.lock().unwrap();
        let mut last = HashMap::<&str, f64>::new();
        for (_, sample, value) in changes.iter().take_while(|(when, _, _)| *when <= at) {
            if sample.starts_with(prefix) && sample.contains(part) {
                last.insert(sample, *value);
            }
        }
        last.values().sum()
    }

    /// Stops scraping.
    pub(crate) async fn stop(self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

async fn scrape(addr: SocketAddr, prefixes: &'static [&'static str], shared: Arc<MonitorShared>) {
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    let mut last = HashMap::<String, f64>::new();
    while !shared.stop.load(Ordering::Relaxed) {
        if let Some(text) = metrics(&mut connection, addr).await {
            let now = Instant::now();
            let mut changes = shared.changes.lock().unwrap();
            for line in text
                .lines()
                .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
            {
                let Some((sample, value)) = line.rsplit_once(' ') else {
                    continue;
                };
                let Ok(value) = value.parse::<f64>() else {
                    continue;
                };
                if last.insert(sample.to_owned(), value) != Some(value) {
                    changes.push((now, sample.to_owned(), value));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One scrape; `None` when the server did not answer 200 (then the next scrape reconnects).
async fn metrics(
    connection: &mut Option<SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
) -> Option<String> {
    if connection.as_ref().is_none_or(SendRequest::is_closed) {
        *connection = Some(connect(addr).await.ok()?);
    }
    let sender = connection.as_mut()?;
    let request = Request::get("/metrics")
        .header(HOST, addr.to_string())
        .body(Full::default())
        .unwrap();
    let scraped = async {
        sender.ready().await.ok()?;
        let response = sender.send_request(request).await.ok()?;
        if response.status() != StatusCode::OK {
            return None;
        }
        let body = response.into_body().collect().await.ok()?.to_bytes();
        String::from_utf8(body.to_vec()).ok()
    };
    let text = tokio::time::timeout(Duration::from_secs(2), scraped)
        .await
        .ok()
        .flatten();
    if text.is_none() {
        *connection = None;
    }
    text
}
