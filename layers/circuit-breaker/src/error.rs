//! The errors a breaker returns.

use crate::State;
use espresso_common::{Rejection, refusal::Refusal};
use http::{HeaderName, HeaderValue};
use std::{error::Error, fmt, sync::Arc, time::Duration};

/// A call the breaker did not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitOpen {
    pub(crate) name: Arc<str>,
    pub(crate) state: State,
    pub(crate) retry_after: Option<Duration>,
}

impl CircuitOpen {
    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state that rejected the call: OPEN, FORCED_OPEN, or HALF_OPEN with every probe
    /// already out.
    pub fn state(&self) -> State {
        self.state
    }

    /// How long until the breaker lets calls through again, when it knows (OPEN does; FORCED_OPEN
    /// and a busy HALF_OPEN do not).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker '{}' is {}", self.name, self.state)?;
        if let Some(after) = self.retry_after {
            write!(f, "; retry in {after:?}")?;
        }
        Ok(())
    }
}

impl Error for CircuitOpen {}

static BREAKER_HEADER: HeaderName = HeaderName::from_static("x-circuit-breaker");

/// The default rejection's message, for an OPEN breaker; the other refusing states say theirs.
pub(crate) const OPEN_MESSAGE: &str = "circuit breaker is open";

/// An open breaker's answer: `Retry-After` with the rest of the wait when the breaker knows it,
/// and `x-circuit-breaker` naming the breaker. The default message says which state refused.
impl Refusal for CircuitOpen {
    fn rejection(&self, template: &Rejection) -> Rejection {
        let mut rejection = template.clone();
        if template.error_message() == OPEN_MESSAGE {
            match self.state {
                State::HalfOpen => {
                    rejection = rejection
                        .message("circuit breaker is half-open and its trial calls are all out");
                }
                State::ForcedOpen => {
                    rejection = rejection.message("circuit breaker is forced open")
                }
                _ => {}
            }
        }
        if let Some(after) = self.retry_after {
            rejection = rejection.retry_after(after);
        }
        if let Ok(name) = HeaderValue::from_str(&self.name) {
            rejection = rejection.header(BREAKER_HEADER.clone(), name);
        }
        rejection
    }
}

/// The error of a call made through a breaker in fail-fast mode: rejected, or failed inside.
#[derive(Debug)]
pub enum CallError<E> {
    /// The breaker rejected the call; the inner service was not called.
    Open(CircuitOpen),
    /// The inner service's own error.
    Inner(E),
}

impl<E> CallError<E> {
    /// The rejection, if this is one.
    pub fn as_open(&self) -> Option<&CircuitOpen> {
        match self {
            Self::Open(open) => Some(open),
            Self::Inner(_) => None,
        }
    }

    /// The inner error, if this is one.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Open(_) => None,
            Self::Inner(e) => Some(e),
        }
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open(open) => open.fmt(f),
            Self::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: Error + 'static> Error for CallError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Open(_) => None,
            Self::Inner(e) => Some(e),
        }
    }
}
