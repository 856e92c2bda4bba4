//! The queueing-delay rule (after CoDel).
//!
//! Requests that find the limit reached may wait in a short queue. Every time a request leaves it
//! (admitted, or given up on), the time it waited (its *sojourn*) is observed:
//!
//! - a sojourn below `target` means the queue drains: the rule is *calm*;
//! - when sojourns have stayed at or above `target` for a whole `interval`, the queue is a
//!   standing queue, not a burst: the rule turns *shedding*, and waiting requests are given up on
//!   (sent to the fallback) once they have waited `target`, instead of `interval`.
//!
//! So a burst is absorbed by waiting up to `interval`, while sustained overload costs admitted
//! requests at most about `target` of queueing. A request admitted without waiting counts as a
//! sojourn of zero (the queue was empty), which ends a shedding period.

use std::time::Duration;
use tokio::time::Instant;

/// The settings of the queueing-delay rule; CoDel's classic values (5 ms, 100 ms) by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDelay {
    /// The queueing delay acceptable under sustained load.
    pub target: Duration,
    /// How long the delay must stay above `target` before the rule sheds; also the longest any
    /// request waits, so at least `target`.
    pub interval: Duration,
}

impl Default for QueueDelay {
    fn default() -> Self {
        Self {
            target: Duration::from_millis(5),
            interval: Duration::from_millis(100),
        }
    }
}

/// The state of the rule.
#[derive(Debug, Default)]
pub(crate) struct CoDel {
    first_above: Option<Instant>,
    shedding: bool,
}

impl CoDel {
    /// Observes one sojourn; answers `Some(new state)` when the rule changed state.
    pub(crate) fn observe(
        &mut self,
        rule: &QueueDelay,
        sojourn: Duration,
        now: Instant,
    ) -> Option<bool> {
        if sojourn < rule.target {
            return self.below_target().then_some(false);
        }
        let was = self.shedding;
        match self.first_above {
            None => self.first_above = Some(now + rule.interval),
            Some(at) if now >= at => self.shedding = true,
            Some(_) => {}
        }
        (was != self.shedding).then_some(self.shedding)
    }

    /// Observes one sojourn below `target` (which needs no clock); answers `true` when that ends
    /// a shedding period.
    pub(crate) fn below_target(&mut self) -> bool {
        self.first_above = None;
        std::mem::replace(&mut self.shedding, false)
    }

    /// `true` while waiting requests are given up on after `target`.
    pub(crate) fn shedding(&self) -> bool {
        self.shedding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_short_burst_is_absorbed() {
        let rule = QueueDelay::default();
        let mut codel = CoDel::default();
        let t0 = Instant::now();
        // above target for 90 ms, then the queue drains
        for i in 0..10 {
            codel.observe(&rule, 20 * MS, t0 + i * 10 * MS);
            assert!(!codel.shedding());
        }
        codel.observe(&rule, MS, t0 + 95 * MS);
        codel.observe(&rule, 20 * MS, t0 + 150 * MS);
        assert!(!codel.shedding());
    }

    #[test]
    fn a_standing_queue_turns_shedding_after_an_interval() {
        let rule = QueueDelay::default();
        let mut codel = CoDel::default();
        let t0 = Instant::now();
        assert_eq!(codel.observe(&rule, 6 * MS, t0), None);
        assert_eq!(codel.observe(&rule, 6 * MS, t0 + 99 * MS), None);
        assert_eq!(codel.observe(&rule, 6 * MS, t0 + 100 * MS), Some(true));
        assert!(codel.shedding());
        // one sojourn below target ends it
        assert_eq!(codel.observe(&rule, 4 * MS, t0 + 101 * MS), Some(false));
        assert!(!codel.shedding());
    }
}
