//! The breaker's states and the events it reports.

use std::{fmt, sync::Arc, time::Duration};
use tokio::time::Instant;

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls go through; outcomes are recorded and may open the breaker.
    Closed,
    /// Calls are rejected until the wait is over.
    Open,
    /// A few probe calls go through; their outcome closes or re-opens the breaker.
    HalfOpen,
    /// Calls go through and nothing is recorded. Left only by an explicit transition.
    Disabled,
    /// Calls are rejected. Left only by an explicit transition.
    ForcedOpen,
    /// Calls go through and are recorded (rates, metrics), but the breaker never opens.
    /// Left only by an explicit transition.
    MetricsOnly,
}

impl State {
    /// Every state, in the order above.
    pub const ALL: [State; 6] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::Disabled,
        State::ForcedOpen,
        State::MetricsOnly,
    ];

    /// The lower-case name used in traces and metric labels (`"half_open"`).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::Disabled => "disabled",
            State::ForcedOpen => "forced_open",
            State::MetricsOnly => "metrics_only",
        }
    }

    /// `true` for the states that let calls through unconditionally or as probes.
    pub fn permits_calls(self) -> bool {
        !matches!(self, State::Open | State::ForcedOpen)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a breaker reports to its listener (see
/// [`CircuitBreakerBuilder::on_event`](crate::CircuitBreakerBuilder::on_event)) and to `tracing`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The state changed.
    ///
    /// `at` is when the transition took effect. For OPEN → HALF_OPEN and for the half-open
    /// timeout, that is the instant the wait ran out, even when the breaker noticed later.
    StateTransition {
        /// The breaker's name.
        name: Arc<str>,
        /// The state before.
        from: State,
        /// The state after.
        to: State,
        /// When the transition took effect.
        at: Instant,
    },
    /// A call was rejected.
    CallNotPermitted {
        /// The breaker's name.
        name: Arc<str>,
        /// The state that rejected it (OPEN, FORCED_OPEN, or HALF_OPEN with all probes out).
        state: State,
        /// When the breaker expects to let calls through again, if it knows.
        retry_after: Option<Duration>,
    },
    /// The breaker was reset: CLOSED, with an empty window.
    Reset {
        /// The breaker's name.
        name: Arc<str>,
        /// When.
        at: Instant,
    },
}
