//! Prometheus metrics, registered into a registry the caller owns.

use crate::{CircuitBreaker, State, breaker::Shared};
use espresso_common::classify::Outcome;
use prometheus::{
    GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    core::{Collector, Desc},
    proto::MetricFamily,
};
use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError, Weak},
};

/// The breakers' Prometheus metrics; give it to any number of breakers with
/// [`CircuitBreakerBuilder::metrics`](crate::CircuitBreakerBuilder::metrics).
///
/// | metric | type | labels |
/// | --- | --- | --- |
/// | `espresso_circuit_breaker_state` | gauge, 1 for the current state and 0 for the others | `name`, `state` |
/// | `espresso_circuit_breaker_failure_ratio` | gauge, failed calls in the current window, 0 to 1 | `name` |
/// | `espresso_circuit_breaker_slow_call_ratio` | gauge, slow calls in the current window, 0 to 1 | `name` |
/// | `espresso_circuit_breaker_calls_total` | counter | `name`, `outcome` = `success`, `failure`, `slow_success`, `slow_failure`, `ignored`, `rejected` |
/// | `espresso_circuit_breaker_transitions_total` | counter | `name`, `from`, `to` |
///
/// A breaker's series exist, at 0, as soon as it is built with these metrics, before any call.
///
/// The state and rate gauges are computed when Prometheus scrapes, so a breaker whose wait ran
/// out shows HALF_OPEN at the next scrape even if no call came. Breakers in DISABLED record no
/// calls. Per-key breakers are labelled with their own names; keep the keys few.
#[derive(Clone)]
pub struct CircuitBreakerMetrics {
    calls: IntCounterVec,
    transitions: IntCounterVec,
    breakers: Tracked,
}

/// The breakers reporting into one set of metrics, with their names: a name is read without
/// upgrading (an upgrade could end up dropping the last reference under the lock).
type Tracked = Arc<Mutex<Vec<(Arc<str>, Weak<Shared>)>>>;

impl fmt::Debug for CircuitBreakerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerMetrics")
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerMetrics {
    /// Creates the metrics and registers them into `registry`, all or none; fails, naming the
    /// family, when `registry` has one of these names already.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let calls = IntCounterVec::new(
            Opts::new(
                "espresso_circuit_breaker_calls_total",
                "Calls seen by a circuit breaker, by outcome.",
            ),
            &["name", "outcome"],
        )?;
        let transitions = IntCounterVec::new(
            Opts::new(
                "espresso_circuit_breaker_transitions_total",
                "Circuit breaker state transitions.",
            ),
            &["name", "from", "to"],
        )?;
        let breakers = Arc::new(Mutex::new(Vec::new()));
        let gauges = Gauges::new(breakers.clone())?;
        espresso_common::metrics::register_all(
            registry,
            [
                Box::new(calls.clone()) as _,
                Box::new(transitions.clone()) as _,
                Box::new(gauges) as _,
            ],
        )?;
        Ok(Self {
            calls,
            transitions,
            breakers,
        })
    }

    pub(crate) fn counters(&self, name: &Arc<str>) -> BreakerCounters {
        // Every transition series at 0 from the start, so that dashboards have data before the
        // first transition.
        for from in State::ALL {
            for to in State::ALL.into_iter().filter(|to| *to != from) {
                self.transitions
                    .with_label_values(&[name.as_ref(), from.as_str(), to.as_str()]);
            }
        }
        let c = |outcome: &str| {
            debug_assert!(OUTCOMES.contains(&outcome));
            self.calls.with_label_values(&[name.as_ref(), outcome])
        };
        BreakerCounters {
            name: name.clone(),
            success: c("success"),
            failure: c("failure"),
            slow_success: c("slow_success"),
            slow_failure: c("slow_failure"),
            ignored: c("ignored"),
            rejected: c("rejected"),
            calls: self.calls.clone(),
            transitions: self.transitions.clone(),
            breakers: self.breakers.clone(),
        }
    }

    pub(crate) fn track(&self, name: Arc<str>, breaker: Weak<Shared>) {
        let mut list = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|(_, b)| b.strong_count() > 0);
        list.push((name, breaker));
    }

    /// Whether a live breaker reports under `name`.
    pub(crate) fn reports(&self, name: &str) -> bool {
        reports(&self.breakers, name)
    }
}

fn reports(breakers: &Tracked, name: &str) -> bool {
    let list = breakers.lock().unwrap_or_else(PoisonError::into_inner);
    list.iter()
        .any(|(n, b)| b.strong_count() > 0 && n.as_ref() == name)
}

/// One breaker's counters, resolved once so the hot path is a single atomic add.
pub(crate) struct BreakerCounters {
    name: Arc<str>,
    success: IntCounter,
    failure: IntCounter,
    slow_success: IntCounter,
    slow_failure: IntCounter,
    ignored: IntCounter,
    rejected: IntCounter,
    calls: IntCounterVec,
    transitions: IntCounterVec,
    breakers: Tracked,
}

/// A dropped breaker's series leave `/metrics` with it (per-key breakers come and go), unless
/// a live breaker reports under the same name (a key's breaker made again after its removal).
impl Drop for BreakerCounters {
    fn drop(&mut self) {
        if reports(&self.breakers, &self.name) {
            return;
        }
        let name = self.name.as_ref();
        for outcome in OUTCOMES {
            let _ = self.calls.remove_label_values(&[name, outcome]);
        }
        for from in State::ALL {
            for to in State::ALL {
                let _ = self
                    .transitions
                    .remove_label_values(&[name, from.as_str(), to.as_str()]);
            }
        }
    }
}

impl BreakerCounters {
    pub(crate) fn record(&self, outcome: Outcome, slow: bool) {
        match (outcome, slow) {
            (Outcome::Success, false) => &self.success,
            (Outcome::Success, true) => &self.slow_success,
            (Outcome::Failure, false) => &self.failure,
            (Outcome::Failure, true) => &self.slow_failure,
            (Outcome::Ignored, _) => &self.ignored,
        }
        .inc();
    }

    pub(crate) fn rejected(&self) {
        self.rejected.inc();
    }

    pub(crate) fn transition(&self, from: State, to: State) {
        self.transitions
            .with_label_values(&[self.name.as_ref(), from.as_str(), to.as_str()])
            .inc();
    }
}

const OUTCOMES: [&str; 6] = [
    "success",
    "failure",
    "slow_success",
    "slow_failure",
    "ignored",
    "rejected",
];

/// The gauges, computed from the live breakers at each scrape.
struct Gauges {
    breakers: Tracked,
    descs: Vec<Desc>,
}

fn state_gauge() -> Result<IntGaugeVec, prometheus::Error> {
    IntGaugeVec::new(
        Opts::new(
            "espresso_circuit_breaker_state",
            "1 for a circuit breaker's current state, 0 for the others.",
        ),
        &["name", "state"],
    )
}

fn rate_gauges() -> Result<(GaugeVec, GaugeVec), prometheus::Error> {
    Ok((
        GaugeVec::new(
            Opts::new(
                "espresso_circuit_breaker_failure_ratio",
                "Failed calls in the current window, as a ratio.",
            ),
            &["name"],
        )?,
        GaugeVec::new(
            Opts::new(
                "espresso_circuit_breaker_slow_call_ratio",
                "Slow calls in the current window, as a ratio.",
            ),
            &["name"],
        )?,
    ))
}

impl Gauges {
    fn new(breakers: Tracked) -> Result<Self, prometheus::Error> {
        let state = state_gauge()?;
        let (failure, slow) = rate_gauges()?;
        let descs = [state.desc(), failure.desc(), slow.desc()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        Ok(Self { breakers, descs })
    }
}

impl Collector for Gauges {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (Ok(state), Ok((failure, slow))) = (state_gauge(), rate_gauges()) else {
            return Vec::new();
        };
        // Upgrade first, look later: looking may fire events into user code.
        let live: Vec<Arc<Shared>> = {
            let mut list = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
            list.retain(|(_, b)| b.strong_count() > 0);
            list.iter().filter_map(|(_, b)| b.upgrade()).collect()
        };
        for shared in live {
            let name = shared.name().clone();
            let breaker = CircuitBreaker::from_shared(shared);
            let current = breaker.state();
            for s in State::ALL {
                state
                    .with_label_values(&[name.as_ref(), s.as_str()])
                    .set(i64::from(s == current));
            }
            let window = breaker.snapshot();
            failure
                .with_label_values(&[name.as_ref()])
                .set(window.failure_rate() / 100.0);
            slow.with_label_values(&[name.as_ref()])
                .set(window.slow_call_rate() / 100.0);
        }
        let mut families = state.collect();
        families.extend(failure.collect());
        families.extend(slow.collect());
        families
    }
}
