//! Whether a backend is failing, as the stages' log lines say.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio::time::{Duration, Instant};

/// Whether a backend (the cache's Redis, the classifier) is failing, as its log lines say: a
/// failure starts an outage (one WARN), and the outage ends (one INFO) at the first success
/// [`QUIET`] or more after its last failure, so that successes between failures (a cluster with
/// one master down) do not make the lines flap.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failing: AtomicBool,
    last_failure: Mutex<Option<Instant>>,
}

/// How long after the last failure a success ends an outage.
const QUIET: Duration = Duration::from_secs(1);

impl Health {
    /// Notes a failure at `now`; whether it starts an outage (the WARN).
    pub(crate) fn failed(&self, now: Instant) -> bool {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now);
        !self.failing.swap(true, Ordering::AcqRel)
    }

    /// Notes a success; whether it ends an outage (the INFO). One atomic load while the
    /// backend is well.
    pub(crate) fn succeeded(&self) -> bool {
        if !self.failing.load(Ordering::Acquire) {
            return false;
        }
        let last = *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        last.is_none_or(|at| at.elapsed() >= QUIET) && self.failing.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::{Health, QUIET};
    use tokio::time::{Duration, Instant, advance};

    #[tokio::test(start_paused = true)]
    async fn an_outage_ends_at_a_success_a_second_after_the_last_failure() {
        let health = Health::default();
        assert!(!health.succeeded(), "no outage yet");
        assert!(
            health.failed(Instant::now()),
            "the first failure starts one"
        );
        assert!(!health.failed(Instant::now()), "the next ones do not");
        // a cluster with one master down: successes between failures
        for _ in 0..5 {
            advance(Duration::from_millis(300)).await;
            assert!(!health.succeeded());
            assert!(!health.failed(Instant::now()));
        }
        advance(QUIET - Duration::from_millis(1)).await;
        assert!(!health.succeeded());
        advance(Duration::from_millis(1)).await;
        assert!(health.succeeded(), "a quiet second, then a success ends it");
        assert!(!health.succeeded(), "once");
    }
}
