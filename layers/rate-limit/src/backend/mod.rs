//! Where the limiter keeps its state: in this process ([`MemoryBackend`]) or in Redis
//! (`RedisBackend`, feature `redis`), and the GCRA both of them run.

#[cfg(feature = "redis")]
pub(crate) mod lease;
pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;

pub use memory::MemoryBackend;
#[cfg(feature = "redis")]
pub use redis::{GlobalMode, RedisBackend};

use crate::quota::Compiled;
use std::{fmt, time::Duration};

/// What the limiter decided for one request.
#[derive(Clone)]
pub struct Decision {
    pub(crate) allowed: bool,
    /// Allowed: how long to hold the request first (wait mode). Refused: when to retry.
    pub(crate) wait: Duration,
    /// [`Decision::remaining`] is `room / per` (`per` at least 1), divided when it is read:
    /// most admitted requests report nothing.
    room: u64,
    per: u64,
    /// [`Decision::reset`], in nanoseconds.
    reset: u64,
    /// Index of the quota that bounds `remaining` (or refused the request).
    pub(crate) policy: usize,
    /// Decided by Redis's script (not an in-process store): where a held request's admission
    /// goes back to.
    pub(crate) remote: bool,
}

impl Decision {
    /// A decision with `remaining` counted already.
    pub(crate) fn new(
        allowed: bool,
        wait: Duration,
        remaining: u64,
        reset: Duration,
        policy: usize,
    ) -> Self {
        Self::counted(
            allowed,
            wait,
            remaining,
            crate::quota::duration_nanos(reset),
            policy,
        )
    }

    /// [`Decision::new`] with `reset` in nanoseconds, as the GCRA has it.
    fn counted(allowed: bool, wait: Duration, remaining: u64, reset: u64, policy: usize) -> Self {
        Self {
            allowed,
            wait,
            room: remaining,
            per: 1,
            reset,
            policy,
            remote: false,
        }
    }

    /// A decision admitting the request with nothing to report (no quotas, unkeyed pass).
    pub(crate) fn unlimited() -> Self {
        Self::new(true, Duration::ZERO, u64::MAX, Duration::ZERO, 0)
    }

    /// `true` when the request may go on (possibly after [`Decision::delay`]).
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// When a refused request may be retried; `None` when it was admitted.
    pub fn retry_after(&self) -> Option<Duration> {
        (!self.allowed).then_some(self.wait)
    }

    /// How long an admitted request waits before it goes on (always zero unless the layer
    /// waits instead of rejecting).
    pub fn delay(&self) -> Duration {
        if self.allowed {
            self.wait
        } else {
            Duration::ZERO
        }
    }

    /// How many more requests would be admitted right now, under the tightest quota.
    pub fn remaining(&self) -> u64 {
        self.room / self.per
    }

    /// How long until the tightest quota is back to its full burst.
    pub fn reset(&self) -> Duration {
        Duration::from_nanos(self.reset)
    }

    /// The index, in the key's [`Quotas`](crate::Quotas), of the quota that bounds this decision.
    pub fn policy_index(&self) -> usize {
        self.policy
    }
}

/// Equal when every reported value is.
impl PartialEq for Decision {
    fn eq(&self, other: &Self) -> bool {
        (
            self.allowed,
            self.wait,
            self.remaining(),
            self.reset,
            self.policy,
        ) == (
            other.allowed,
            other.wait,
            other.remaining(),
            other.reset,
            other.policy,
        )
    }
}

impl Eq for Decision {}

impl fmt::Debug for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decision")
            .field("allowed", &self.allowed)
            .field("wait", &self.wait)
            .field("remaining", &self.remaining())
            .field("reset", &self.reset())
            .field("policy", &self.policy)
            .finish()
    }
}

/// GCRA over several quotas at once, all or nothing.
///
/// `tats[i]` is quota `i`'s theoretical arrival time (ns on the backend's clock, `0` for a fresh
/// key). A request is admitted when, for every quota, `max(tat, now) + t - now <= tau + max_delay`
/// (`tau = burst * t`), which is governor's test `now >= tat - (burst - 1) * t`; only then are the
/// new TATs stored. This is the same arithmetic as the Redis script.
pub(crate) fn gcra(tats: &mut [u64], now: u64, quotas: &[Compiled], max_delay: u64) -> Decision {
    debug_assert_eq!(tats.len(), quotas.len());
    let mut wait = 0u64;
    let mut blocked = false;
    for (tat, q) in tats.iter().zip(quotas) {
        if q.t == u64::MAX {
            blocked = true;
            wait = wait.max(q.period);
            continue;
        }
        let next = (*tat).max(now).saturating_add(q.t);
        wait = wait.max((next - now).saturating_sub(q.tau));
    }
    let allowed = !blocked && wait <= max_delay;
    let mut remaining = u64::MAX;
    let mut reset = 0u64;
    let mut policy = 0;
    for (i, (tat, q)) in tats.iter_mut().zip(quotas).enumerate() {
        let (left, backlog) = if q.t == u64::MAX {
            (0, q.period)
        } else {
            let base = (*tat).max(now);
            let backlog = if allowed {
                *tat = base.saturating_add(q.t);
                *tat - now
            } else {
                base - now
            };
            let left = match q.tau.checked_sub(backlog) {
                _ if q.t == 0 => q.burst,
                Some(room) => room / q.t,
                None => 0,
            };
            (left, backlog)
        };
        if left < remaining || (left == remaining && backlog > reset) {
            remaining = left;
            reset = backlog;
            policy = i;
        }
    }
    let remaining = if quotas.is_empty() {
        u64::MAX
    } else {
        remaining
    };
    Decision::counted(
        allowed,
        Duration::from_nanos(wait),
        remaining,
        reset,
        policy,
    )
}

/// [`gcra`] for the common case of a single quota, without the loops (the hot path of the
/// memory backend); the same decisions, checked against [`gcra`] in the tests.
#[inline]
pub(crate) fn gcra_one(tat: &mut u64, now: u64, q: &Compiled, max_delay: u64) -> Decision {
    if q.t == u64::MAX {
        return Decision::counted(false, Duration::from_nanos(q.period), 0, q.period, 0);
    }
    let base = (*tat).max(now);
    let next = base.saturating_add(q.t);
    let wait = (next - now).saturating_sub(q.tau);
    let allowed = wait <= max_delay;
    let backlog = if allowed {
        *tat = next;
        next - now
    } else {
        base - now
    };
    // An emission interval of 0 admits everything: the full burst is always left.
    let (room, per) = if q.t == 0 {
        (q.burst, 1)
    } else {
        (q.tau.saturating_sub(backlog), q.t)
    };
    Decision {
        allowed,
        wait: if wait == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(wait)
        },
        room,
        per,
        reset: backlog,
        policy: 0,
        remote: false,
    }
}

/// GCRA taking up to `want` admissions at once (a lease), all quotas alike: returns how many
/// were granted and, when none were, how long until one would be (ns). Same arithmetic as the
/// Redis lease script (the lease tests run on it): `k` admissions fit while `backlog + k * t <= tau`.
#[cfg(test)]
pub(crate) fn gcra_take(tats: &mut [u64], now: u64, quotas: &[Compiled], want: u64) -> (u64, u64) {
    let mut grant = want;
    let mut wait = 0u64;
    for (tat, q) in tats.iter().zip(quotas) {
        if q.t == u64::MAX {
            return (0, q.period);
        }
        if q.t == 0 {
            continue;
        }
        let backlog = (*tat).max(now) - now;
        let room = q.tau.saturating_sub(backlog);
        grant = grant.min(room / q.t);
        wait = wait.max((backlog + q.t).saturating_sub(q.tau));
    }
    if grant > 0 {
        for (tat, q) in tats.iter_mut().zip(quotas) {
            *tat = (*tat).max(now).saturating_add(grant.saturating_mul(q.t));
        }
        wait = 0;
    }
    (grant, wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Quota, Quotas};

    const MS: u64 = 1_000_000;

    fn run(quotas: &Quotas, tats: &mut [u64], now: u64) -> Decision {
        gcra(tats, now, quotas.compiled(), 0)
    }

    #[test]
    fn burst_then_steady() {
        let q: Quotas = Quota::per_second(10).burst(3).into();
        let mut tats = [0];
        let now = 1_000 * MS;
        for left in [2, 1, 0] {
            let d = run(&q, &mut tats, now);
            assert!(d.allowed);
            assert_eq!(d.remaining(), left);
        }
        let d = run(&q, &mut tats, now);
        assert!(!d.allowed);
        assert_eq!(d.wait, Duration::from_millis(100));
        assert_eq!(d.reset(), Duration::from_millis(300));
        assert!(run(&q, &mut tats, now + 100 * MS).allowed);
        assert!(!run(&q, &mut tats, now + 100 * MS).allowed);
    }

    #[test]
    fn refused_by_one_counts_against_none() {
        let q: Quotas = [Quota::per_second(100), Quota::per_minute(2)].into();
        let mut tats = [0, 0];
        let now = 5 * MS;
        assert!(run(&q, &mut tats, now).allowed);
        assert!(run(&q, &mut tats, now).allowed);
        let before = tats;
        let d = run(&q, &mut tats, now);
        assert!(!d.allowed);
        assert_eq!(d.policy, 1);
        assert_eq!(d.wait, Duration::from_secs(30));
        assert_eq!(tats, before);
    }

    #[test]
    fn blocking_and_unlimited_quotas() {
        let q: Quotas = Quota::per_minute(0).into();
        let d = run(&q, &mut [0], MS);
        assert!(!d.allowed);
        assert_eq!(d.wait, Duration::from_secs(60));
        let q: Quotas = Quota::new(5, Duration::ZERO).into();
        let mut tats = [0];
        for _ in 0..100 {
            assert!(run(&q, &mut tats, MS).allowed);
        }
    }

    #[test]
    fn the_single_quota_path_decides_as_the_general_one() {
        let cases: [Quotas; 5] = [
            Quota::per_second(10).burst(3).into(),
            Quota::per_minute(0).into(),
            Quota::new(5, Duration::ZERO).into(),
            Quota::per_hour(1).into(),
            Quota::new(7, Duration::from_millis(3)).burst(2).into(),
        ];
        for q in &cases {
            let c = q.compiled();
            for max_delay in [0, 150 * MS] {
                let (mut general, mut one) = ([0u64], 0u64);
                for step in 0..40u64 {
                    let now = MS + step * 37 * MS / 10;
                    for _ in 0..3 {
                        let expected = gcra(&mut general, now, c, max_delay);
                        let got = gcra_one(&mut one, now, &c[0], max_delay);
                        assert_eq!(got, expected, "{q:?} at {now} ns");
                        assert_eq!(one, general[0]);
                    }
                }
            }
        }
    }

    #[test]
    fn a_lease_takes_what_one_by_one_checks_would_admit() {
        let q: Quotas = [Quota::per_second(10).burst(5), Quota::per_minute(100)].into();
        let c = q.compiled();
        let (mut one, mut lease) = ([0, 0], [0, 0]);
        let now = 10 * MS;
        let singles = (0..20)
            .filter(|_| gcra(&mut one, now, c, 0).allowed)
            .count() as u64;
        assert_eq!(gcra_take(&mut lease, now, c, 20), (singles, 0));
        assert_eq!(one, lease, "the same state afterwards");
        let (granted, wait) = gcra_take(&mut lease, now, c, 3);
        assert_eq!((granted, wait), (0, 100 * MS));
        assert_eq!(gcra_take(&mut lease, now + 250 * MS, c, 3).0, 2);
    }

    #[test]
    fn waiting_admits_up_to_the_bound() {
        let q: Quotas = Quota::per_second(10).burst(1).into();
        let mut tats = [0];
        let c = q.compiled();
        assert_eq!(gcra(&mut tats, MS, c, 250 * MS).wait, Duration::ZERO);
        assert_eq!(
            gcra(&mut tats, MS, c, 250 * MS).wait,
            Duration::from_millis(100)
        );
        assert_eq!(
            gcra(&mut tats, MS, c, 250 * MS).wait,
            Duration::from_millis(200)
        );
        let d = gcra(&mut tats, MS, c, 250 * MS);
        assert!(!d.allowed);
        assert_eq!(d.wait, Duration::from_millis(300));
    }
}
