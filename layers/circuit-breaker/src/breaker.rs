//! The breaker itself, usable without Tower.

#[cfg(feature = "metrics")]
use crate::metrics::BreakerCounters;
use crate::{
    CallError, CircuitOpen, Event, State, WindowSnapshot,
    config::{CircuitBreakerBuilder, Config, SlidingWindow},
    window::{Call, Verdict, Window},
};
use arc_swap::{ArcSwap, Guard};
use espresso_common::classify::{Classify, Complete, HeadTime, Outcome};
use std::{
    fmt,
    future::Future,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;

/// A circuit breaker: a cheap, cloneable handle to one shared state machine.
///
/// Ask for a [`Permit`] before a call ([`try_acquire`](Self::try_acquire)), then record how the
/// call went on it; or let [`call`](Self::call) do both around a future. The Tower layer
/// ([`CircuitBreakerLayer`](crate::CircuitBreakerLayer)) does the same around a service, so one
/// breaker can guard a server route and a client call alike.
///
/// # Time
///
/// Every instant is a [`tokio::time::Instant`], so paused-time tests are exact. The OPEN →
/// HALF_OPEN transition (and the half-open timeout) is computed from time whenever the breaker
/// is looked at, by a call, by [`state`](Self::state) or by a metrics scrape; it needs no call.
/// When the breaker opens inside a Tokio runtime it also spawns a small timer task (holding only
/// a weak reference) that looks at the breaker when the wait runs out, so the transition's
/// event and trace fire on time even when nothing else happens. The event's `at` is the instant
/// the wait ran out in every case.
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    config: Config,
    phase: ArcSwap<Phase>,
    transition: Mutex<()>,
    #[cfg(feature = "metrics")]
    counters: Option<BreakerCounters>,
}

/// One stay in a state. A transition replaces the whole phase, so calls permitted in an older
/// phase (an older generation) never count in a newer one.
struct Phase {
    generation: u64,
    kind: PhaseKind,
}

enum PhaseKind {
    Closed(Window),
    Open { until: Instant, attempt: u32 },
    HalfOpen(HalfOpen),
    Disabled,
    ForcedOpen,
    MetricsOnly(Window),
}

struct HalfOpen {
    attempt: u32,
    deadline: Option<Instant>,
    issued: AtomicU32,
    recorded: AtomicU64,
}

#[derive(Clone, Copy)]
enum Target {
    Closed,
    Open { attempt: u32 },
    HalfOpen { attempt: u32 },
    Disabled,
    ForcedOpen,
    MetricsOnly,
}

/// `at + wait`, or about thirty years on for a wait no clock can add (an uncapped backoff after
/// many openings): the breaker then stays where it is, as for any wait that long.
fn later(at: Instant, wait: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);
    at.checked_add(wait.min(FAR)).unwrap_or(at)
}

impl Phase {
    fn new(generation: u64, target: Target, at: Instant, config: &Config) -> Self {
        let kind = match target {
            Target::Closed => PhaseKind::Closed(Window::new(config.window, at)),
            Target::Open { attempt } => PhaseKind::Open {
                until: later(at, config.wait_in_open.wait(attempt)),
                attempt,
            },
            Target::HalfOpen { attempt } => PhaseKind::HalfOpen(HalfOpen {
                attempt,
                deadline: config.max_wait_in_half_open.map(|w| later(at, w)),
                issued: AtomicU32::new(0),
                recorded: AtomicU64::new(0),
            }),
            Target::Disabled => PhaseKind::Disabled,
            Target::ForcedOpen => PhaseKind::ForcedOpen,
            Target::MetricsOnly => PhaseKind::MetricsOnly(Window::new(config.window, at)),
        };
        Self { generation, kind }
    }

    fn state(&self) -> State {
        match self.kind {
            PhaseKind::Closed(_) => State::Closed,
            PhaseKind::Open { .. } => State::Open,
            PhaseKind::HalfOpen(_) => State::HalfOpen,
            PhaseKind::Disabled => State::Disabled,
            PhaseKind::ForcedOpen => State::ForcedOpen,
            PhaseKind::MetricsOnly(_) => State::MetricsOnly,
        }
    }

    /// How many times in a row the breaker has opened, counting this phase.
    fn attempt(&self) -> u32 {
        match &self.kind {
            PhaseKind::Open { attempt, .. } => *attempt,
            PhaseKind::HalfOpen(h) => h.attempt,
            _ => 0,
        }
    }
}

// === impl CircuitBreaker ===

impl CircuitBreaker {
    /// Starts configuring a breaker called `name`.
    pub fn builder(name: impl Into<Arc<str>>) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder::new(name)
    }

    pub(crate) fn from_config(config: Config) -> Self {
        let first = Phase::new(0, Target::Closed, Instant::now(), &config);
        let shared = Arc::new(Shared {
            phase: ArcSwap::from_pointee(first),
            transition: Mutex::new(()),
            #[cfg(feature = "metrics")]
            counters: config.metrics.as_ref().map(|m| m.counters(&config.name)),
            config,
        });
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &shared.config.metrics {
            metrics.track(shared.config.name.clone(), Arc::downgrade(&shared));
        }
        Self { shared }
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// The current state, after any transition that time alone brings (see "Time" above).
    pub fn state(&self) -> State {
        self.current(Instant::now(), false).state()
    }

    /// The calls the current window holds: CLOSED's or METRICS_ONLY's sliding window, or the
    /// probes HALF_OPEN has recorded; empty in the other states. In consecutive-failures mode,
    /// `calls` and `failed_calls` are the current streak.
    pub fn snapshot(&self) -> WindowSnapshot {
        let phase = self.current(Instant::now(), false);
        match &phase.kind {
            PhaseKind::Closed(w) | PhaseKind::MetricsOnly(w) => w.snapshot(Instant::now()),
            PhaseKind::HalfOpen(h) => WindowSnapshot::unpack(h.recorded.load(Ordering::Acquire)),
            _ => WindowSnapshot::default(),
        }
    }

    /// Asks to make one call. `Ok` carries the [`Permit`] to record the outcome on; `Err` says
    /// the breaker is open (and for how long, when it knows).
    pub fn try_acquire(&self) -> Result<Permit, CircuitOpen> {
        let now = Instant::now();
        let phase = self.current(now, true);
        let generation = phase.generation;
        match &phase.kind {
            PhaseKind::Closed(_) | PhaseKind::MetricsOnly(_) => {
                Ok(Permit::new(self, generation, now, true))
            }
            PhaseKind::Disabled => Ok(Permit::new(self, generation, now, false)),
            PhaseKind::HalfOpen(h) => {
                let permitted = self.shared.config.permitted_calls_in_half_open;
                let issued = h
                    .issued
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < permitted).then_some(n + 1)
                    });
                match issued {
                    Ok(_) => Ok(Permit::new(self, generation, now, true)),
                    Err(_) => Err(self.reject(State::HalfOpen, None)),
                }
            }
            PhaseKind::Open { until, .. } => {
                Err(self.reject(State::Open, Some(until.saturating_duration_since(now))))
            }
            PhaseKind::ForcedOpen => Err(self.reject(State::ForcedOpen, None)),
        }
    }

    /// Runs `call` if the breaker permits it, counting an `Err` as a failure.
    ///
    /// The future is not polled at all when the breaker rejects the call. If the returned future
    /// is dropped before `call` finishes, the call counts as the builder's
    /// [`dropped_call_outcome`](CircuitBreakerBuilder::dropped_call_outcome).
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_classified(errors_as_failures, call).await
    }

    /// Runs `call` if the breaker permits it, letting `classify` decide how its result counts.
    ///
    /// A closure classifier decides at once and returns the result as it is; a classifier that
    /// decides at the end of a response body (a gRPC answer) returns the response with a body that
    /// records the outcome when it ends.
    pub async fn call_classified<T, E, F, C>(
        &self,
        classify: C,
        call: F,
    ) -> Result<C::Response<Permit>, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
    {
        let permit = self.try_acquire().map_err(CallError::Open)?;
        classify
            .classify(call.await, permit)
            .map_err(CallError::Inner)
    }

    /// Moves to `state` now, whatever the current state. Moving to the state the breaker is in
    /// starts it afresh (an empty window, a new wait) without a transition event. OPEN reached
    /// this way counts as one more opening in a row for the wait interval.
    pub fn transition_to(&self, state: State) {
        let current = self.shared.phase.load();
        let attempt = current.attempt();
        let target = match state {
            State::Closed => Target::Closed,
            State::Open => Target::Open {
                attempt: attempt.saturating_add(1),
            },
            State::HalfOpen => Target::HalfOpen {
                attempt: attempt.max(1),
            },
            State::Disabled => Target::Disabled,
            State::ForcedOpen => Target::ForcedOpen,
            State::MetricsOnly => Target::MetricsOnly,
        };
        drop(current);
        self.transition(None, target, Instant::now());
    }

    /// Back to CLOSED with an empty window and the wait interval's attempt count reset; reports
    /// [`Event::Reset`].
    pub fn reset(&self) {
        let now = Instant::now();
        self.transition(None, Target::Closed, now);
        self.emit(&Event::Reset {
            name: self.shared.config.name.clone(),
            at: now,
        });
        tracing::info!(breaker = %self.shared.config.name, "circuit breaker reset");
    }

    /// `true` when both handles drive the same breaker.
    pub fn same_as(&self, other: &CircuitBreaker) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    // --- internals ---

    /// The current phase, after the transitions time has brought. `by_call` also moves an OPEN
    /// breaker whose automatic transition is off.
    fn current(&self, now: Instant, by_call: bool) -> Guard<Arc<Phase>> {
        loop {
            let phase = self.shared.phase.load();
            match &phase.kind {
                PhaseKind::Open { until, attempt }
                    if now >= *until && (by_call || self.shared.config.automatic_transition) =>
                {
                    // a timer moves it when the wait ends; without one, the call does, and the
                    // half-open wait counts from the call
                    let at = if self.shared.config.automatic_transition {
                        *until
                    } else {
                        now
                    };
                    let (generation, attempt) = (phase.generation, *attempt);
                    drop(phase);
                    self.transition(Some(generation), Target::HalfOpen { attempt }, at);
                }
                PhaseKind::HalfOpen(h) if h.deadline.is_some_and(|d| now >= d) => {
                    let (generation, attempt) = (phase.generation, h.attempt.saturating_add(1));
                    let at = h.deadline.unwrap_or(now);
                    drop(phase);
                    self.transition(Some(generation), Target::Open { attempt }, at);
                }
                _ => return phase,
            }
        }
    }

    /// Whether the breaker is still in the half-open round of `generation`.
    fn half_open_in(&self, generation: u64) -> bool {
        let phase = self.shared.phase.load();
        phase.generation == generation && matches!(phase.kind, PhaseKind::HalfOpen(_))
    }

    fn on_result(&self, generation: u64, outcome: Outcome, duration: Duration) {
        let config = &self.shared.config;
        let slow = duration > config.slow_call_duration_threshold;
        #[cfg(feature = "metrics")]
        if let Some(counters) = &self.shared.counters {
            counters.record(outcome, slow);
        }
        let phase = self.shared.phase.load();
        if phase.generation != generation {
            return;
        }
        let call = match outcome {
            Outcome::Success => Call {
                failure: false,
                slow,
            },
            Outcome::Failure => Call {
                failure: true,
                slow,
            },
            Outcome::Ignored => {
                if let PhaseKind::HalfOpen(h) = &phase.kind {
                    // Give the probe slot back: an ignored call proved nothing.
                    h.issued.fetch_sub(1, Ordering::AcqRel);
                }
                return;
            }
        };
        match &phase.kind {
            PhaseKind::Closed(window) => {
                if self.exceeded(&window.record(call)) {
                    drop(phase);
                    self.transition(
                        Some(generation),
                        Target::Open { attempt: 1 },
                        Instant::now(),
                    );
                }
            }
            PhaseKind::MetricsOnly(window) => {
                window.record(call);
            }
            PhaseKind::HalfOpen(h) => {
                let packed = call.packed();
                let recorded =
                    WindowSnapshot::unpack(h.recorded.fetch_add(packed, Ordering::AcqRel) + packed);
                let permitted = config.permitted_calls_in_half_open;
                let reopen = Target::Open {
                    attempt: h.attempt.saturating_add(1),
                };
                let decision = match config.window {
                    SlidingWindow::ConsecutiveFailures { .. } if call.failure || call.slow => {
                        Some(reopen)
                    }
                    SlidingWindow::ConsecutiveFailures { .. } => {
                        (recorded.calls >= permitted).then_some(Target::Closed)
                    }
                    _ if recorded.calls == permitted => Some(if self.rates_exceeded(&recorded) {
                        reopen
                    } else {
                        Target::Closed
                    }),
                    _ => None,
                };
                if let Some(target) = decision {
                    drop(phase);
                    self.transition(Some(generation), target, Instant::now());
                }
            }
            PhaseKind::Open { .. } | PhaseKind::Disabled | PhaseKind::ForcedOpen => {}
        }
    }

    fn exceeded(&self, verdict: &Verdict) -> bool {
        match (verdict, self.shared.config.window) {
            (Verdict::Streak(n), SlidingWindow::ConsecutiveFailures { threshold }) => {
                *n >= threshold
            }
            (Verdict::Rates(s), _) => {
                s.calls >= self.shared.config.effective_minimum_calls() && self.rates_exceeded(s)
            }
            (Verdict::Streak(_), _) => false,
        }
    }

    fn rates_exceeded(&self, s: &WindowSnapshot) -> bool {
        let config = &self.shared.config;
        s.failure_rate() >= config.failure_rate_threshold
            || s.slow_call_rate() >= config.slow_call_rate_threshold
    }

    /// Replaces the phase if it is still `expected` (any phase when `None`), then reports.
    fn transition(&self, expected: Option<u64>, target: Target, at: Instant) {
        let (from, to, deadline) = {
            let _lock = self
                .shared
                .transition
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let current = self.shared.phase.load_full();
            if expected.is_some_and(|g| g != current.generation) {
                return;
            }
            let next = Phase::new(current.generation + 1, target, at, &self.shared.config);
            let deadline = match &next.kind {
                PhaseKind::Open { until, .. } if self.shared.config.automatic_transition => {
                    Some(*until)
                }
                PhaseKind::HalfOpen(h) => h.deadline,
                _ => None,
            };
            let to = next.state();
            self.shared.phase.store(Arc::new(next));
            (current.state(), to, deadline)
        };
        if let Some(deadline) = deadline {
            self.wake_at(deadline);
        }
        if from == to {
            return;
        }
        let name = &self.shared.config.name;
        match to {
            State::Open | State::ForcedOpen => {
                tracing::warn!(breaker = %name, %from, %to, "circuit breaker opened")
            }
            State::Closed => tracing::info!(breaker = %name, %from, %to, "circuit breaker closed"),
            _ => tracing::info!(breaker = %name, %from, %to, "circuit breaker changed state"),
        }
        #[cfg(feature = "metrics")]
        if let Some(counters) = &self.shared.counters {
            counters.transition(from, to);
        }
        self.emit(&Event::StateTransition {
            name: name.clone(),
            from,
            to,
            at,
        });
    }

    /// Looks at the breaker at `deadline`, from a task that does not keep it alive.
    fn wake_at(&self, deadline: Instant) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        runtime.spawn(async move {
            tokio::time::sleep_until(deadline).await;
            if let Some(shared) = shared.upgrade() {
                CircuitBreaker { shared }.state();
            }
        });
    }

    fn reject(&self, state: State, retry_after: Option<Duration>) -> CircuitOpen {
        let name = &self.shared.config.name;
        #[cfg(feature = "metrics")]
        if let Some(counters) = &self.shared.counters {
            counters.rejected();
        }
        tracing::debug!(breaker = %name, %state, ?retry_after, "call not permitted");
        if self.shared.config.listener.is_some() {
            self.emit(&Event::CallNotPermitted {
                name: name.clone(),
                state,
                retry_after,
            });
        }
        CircuitOpen {
            name: name.clone(),
            state,
            retry_after,
        }
    }

    fn emit(&self, event: &Event) {
        if let Some(listener) = &self.shared.config.listener {
            listener(event);
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.config.name)
            .field("state", &self.shared.phase.load().state())
            .finish()
    }
}

impl Shared {
    #[cfg(feature = "metrics")]
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.config.name
    }
}

fn errors_as_failures<T, E>(result: Result<&T, &E>) -> Outcome {
    if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

// === impl Permit ===

/// Leave to make one call, on which its outcome is recorded.
///
/// Record with [`record`](Self::record) (outcome and duration) or [`complete`](Self::complete)
/// (outcome; the duration is the time since the permit was granted). A permit dropped without
/// either counts as the builder's
/// [`dropped_call_outcome`](CircuitBreakerBuilder::dropped_call_outcome), by default
/// [`Outcome::Ignored`]: not recorded in the window, and a half-open probe slot is given back.
///
/// A permit granted in one state never counts in a later one: a slow call let through while
/// CLOSED that finishes after the breaker opened is not taken for a half-open probe.
#[must_use = "record the call's outcome on the permit"]
pub struct Permit {
    breaker: CircuitBreaker,
    generation: u64,
    started: Instant,
    pending: bool,
    /// The time to the response head, for a call classified when its body ends.
    answered_after: HeadTime,
}

impl Permit {
    fn new(breaker: &CircuitBreaker, generation: u64, started: Instant, tracked: bool) -> Self {
        Self {
            breaker: breaker.clone(),
            generation,
            started,
            pending: tracked,
            answered_after: HeadTime::NONE,
        }
    }

    /// The call's time so far: to its response head once that came (see
    /// [`Complete::deferred`]).
    fn took(&self) -> Duration {
        self.answered_after
            .get()
            .unwrap_or_else(|| self.started.elapsed())
    }

    /// When the permit was granted.
    pub fn started_at(&self) -> Instant {
        self.started
    }

    /// Records the call's outcome and how long it took.
    pub fn record(mut self, outcome: Outcome, duration: Duration) {
        if std::mem::take(&mut self.pending) {
            self.breaker.on_result(self.generation, outcome, duration);
        }
    }

    /// Records the call's outcome; it took the time since the permit was granted, or, for a
    /// call classified when its response body ends, the time to its response head.
    pub fn complete(self, outcome: Outcome) {
        let duration = self.took();
        self.record(outcome, duration);
    }
}

/// A permit is completed by a classification, at the response head or at the end of its body.
impl Complete<Outcome> for Permit {
    fn complete(self, outcome: Outcome) {
        Permit::complete(self, outcome);
    }

    /// The callee answered; the outcome comes when the body ends. The call's time is taken
    /// now: how long the caller reads a stream is not the callee's slowness. A half-open probe
    /// counts now, as a success (slow or not): the callee answered, which is what a probe asks,
    /// and a stream held open for hours would otherwise hold the round open; what its trailers
    /// say later is not counted again.
    fn deferred(&mut self) {
        self.answered_after.set(self.started.elapsed());
        if self.pending && self.breaker.half_open_in(self.generation) {
            self.pending = false;
            self.breaker
                .on_result(self.generation, Outcome::Success, self.took());
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if std::mem::take(&mut self.pending) {
            let outcome = self.breaker.shared.config.dropped_call_outcome;
            self.breaker
                .on_result(self.generation, outcome, self.took());
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.shared.config.name)
            .field("started", &self.started)
            .finish()
    }
}
