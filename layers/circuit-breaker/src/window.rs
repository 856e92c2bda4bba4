//! Sliding windows of recorded calls.
//!
//! The count window is lock-free: a ring of one-byte slots plus one packed `u64` of totals
//! (calls, failures, slow calls; 21 bits each). Recording a call adds it to the totals, swaps it
//! into its slot and subtracts whatever it displaced, so every reader of the totals sees a
//! consistent triple. The time window keeps per-bucket totals behind a short critical section.

use crate::config::SlidingWindow;
use std::{
    sync::{
        Mutex,
        atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;

const FIELD: u32 = 21;
const MASK: u64 = (1 << FIELD) - 1;

/// What one recorded call was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
}

impl Call {
    pub(crate) fn packed(self) -> u64 {
        1 | u64::from(self.failure) << FIELD | u64::from(self.slow) << (2 * FIELD)
    }

    fn slot(self) -> u8 {
        1 | u8::from(self.failure) << 1 | u8::from(self.slow) << 2
    }

    fn from_slot(slot: u8) -> u64 {
        if slot == 0 {
            return 0;
        }
        Call {
            failure: slot & 2 != 0,
            slow: slot & 4 != 0,
        }
        .packed()
    }
}

/// The calls a window holds, and their rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowSnapshot {
    /// Calls recorded (ignored calls are not).
    pub calls: u32,
    /// Of which failed.
    pub failed_calls: u32,
    /// Of which were slow (failed or not).
    pub slow_calls: u32,
}

impl WindowSnapshot {
    pub(crate) fn unpack(packed: u64) -> Self {
        Self {
            calls: (packed & MASK) as u32,
            failed_calls: (packed >> FIELD & MASK) as u32,
            slow_calls: (packed >> (2 * FIELD) & MASK) as u32,
        }
    }

    /// Failed calls in percent (0 with no calls).
    pub fn failure_rate(&self) -> f64 {
        percent(self.failed_calls, self.calls)
    }

    /// Slow calls in percent (0 with no calls).
    pub fn slow_call_rate(&self) -> f64 {
        percent(self.slow_calls, self.calls)
    }

    // Saturating: a time window over 4 billion calls (an hour at 1.2 M/s) stays at the most
    // a `u32` holds rather than wrapping to a few calls and a wrong failure rate.
    fn add(&mut self, call: Call) {
        self.calls = self.calls.saturating_add(1);
        self.failed_calls = self.failed_calls.saturating_add(u32::from(call.failure));
        self.slow_calls = self.slow_calls.saturating_add(u32::from(call.slow));
    }

    fn sub(&mut self, other: WindowSnapshot) {
        self.calls = self.calls.saturating_sub(other.calls);
        self.failed_calls = self.failed_calls.saturating_sub(other.failed_calls);
        self.slow_calls = self.slow_calls.saturating_sub(other.slow_calls);
    }
}

fn percent(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) * 100.0 / f64::from(whole)
    }
}

/// A window, fresh for each CLOSED (or METRICS_ONLY) period.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
    Consecutive(AtomicU32),
}

/// What the window says after a call was recorded.
pub(crate) enum Verdict {
    Rates(WindowSnapshot),
    Streak(u32),
}

impl Window {
    pub(crate) fn new(kind: SlidingWindow, now: Instant) -> Self {
        match kind {
            SlidingWindow::CountBased { size } => Self::Count(CountWindow::new(size)),
            SlidingWindow::TimeBased { duration, buckets } => {
                Self::Time(TimeWindow::new(duration, buckets, now))
            }
            SlidingWindow::ConsecutiveFailures { .. } => Self::Consecutive(AtomicU32::new(0)),
        }
    }

    pub(crate) fn record(&self, call: Call) -> Verdict {
        match self {
            Self::Count(w) => Verdict::Rates(w.record(call)),
            Self::Time(w) => Verdict::Rates(w.record(call, Instant::now())),
            Self::Consecutive(streak) => {
                if call.failure || call.slow {
                    Verdict::Streak(streak.fetch_add(1, Ordering::AcqRel).saturating_add(1))
                } else {
                    // Read first: a healthy service writes nothing, so threads do not contend.
                    if streak.load(Ordering::Relaxed) != 0 {
                        streak.store(0, Ordering::Release);
                    }
                    Verdict::Streak(0)
                }
            }
        }
    }

    pub(crate) fn snapshot(&self, now: Instant) -> WindowSnapshot {
        match self {
            Self::Count(w) => WindowSnapshot::unpack(w.totals.load(Ordering::Acquire)),
            Self::Time(w) => w.snapshot(now),
            Self::Consecutive(streak) => {
                let n = streak.load(Ordering::Acquire);
                WindowSnapshot {
                    calls: n,
                    failed_calls: n,
                    slow_calls: 0,
                }
            }
        }
    }
}

// === impl CountWindow ===

#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    head: AtomicU64,
    totals: AtomicU64,
}

impl CountWindow {
    fn new(size: u32) -> Self {
        Self {
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            head: AtomicU64::new(0),
            totals: AtomicU64::new(0),
        }
    }

    fn record(&self, call: Call) -> WindowSnapshot {
        let added = call.packed();
        // Add before publishing the slot: whoever displaces this call later subtracts only what
        // was already added, so no field ever underflows into its neighbour.
        self.totals.fetch_add(added, Ordering::AcqRel);
        let index = self.head.fetch_add(1, Ordering::Relaxed) % self.slots.len() as u64;
        let displaced =
            Call::from_slot(self.slots[index as usize].swap(call.slot(), Ordering::AcqRel));
        let totals = if displaced == 0 {
            self.totals.load(Ordering::Acquire)
        } else {
            self.totals.fetch_sub(displaced, Ordering::AcqRel) - displaced
        };
        WindowSnapshot::unpack(totals)
    }
}

// === impl TimeWindow ===

#[derive(Debug)]
pub(crate) struct TimeWindow {
    start: Instant,
    bucket_nanos: u128,
    inner: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    /// `(epoch, totals)` per bucket; epoch `e` lives at index `e % len`.
    buckets: Box<[(u64, WindowSnapshot)]>,
    latest: u64,
    totals: WindowSnapshot,
}

impl TimeWindow {
    fn new(duration: Duration, buckets: u32, now: Instant) -> Self {
        let bucket_nanos = (duration.as_nanos() / u128::from(buckets)).max(1);
        Self {
            start: now,
            bucket_nanos,
            inner: Mutex::new(Buckets {
                buckets: vec![(0, WindowSnapshot::default()); buckets as usize].into_boxed_slice(),
                latest: 0,
                totals: WindowSnapshot::default(),
            }),
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let nanos = now.saturating_duration_since(self.start).as_nanos() / self.bucket_nanos;
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    fn record(&self, call: Call, now: Instant) -> WindowSnapshot {
        let epoch = self.epoch(now);
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        b.roll(epoch);
        // A call measured just before a concurrent roll lands in the newest bucket.
        let epoch = epoch.max(b.latest);
        let len = b.buckets.len() as u64;
        let bucket = &mut b.buckets[(epoch % len) as usize];
        bucket.1.add(call);
        b.totals.add(call);
        b.totals
    }

    fn snapshot(&self, now: Instant) -> WindowSnapshot {
        let epoch = self.epoch(now);
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        b.roll(epoch);
        b.totals
    }
}

impl Buckets {
    /// Ages out every bucket older than the window ending at `epoch`.
    fn roll(&mut self, epoch: u64) {
        if epoch <= self.latest {
            return;
        }
        let len = self.buckets.len() as u64;
        if epoch - self.latest >= len {
            for bucket in self.buckets.iter_mut() {
                *bucket = (0, WindowSnapshot::default());
            }
            self.totals = WindowSnapshot::default();
        } else {
            for e in self.latest + 1..=epoch {
                let (_, old) = std::mem::replace(
                    &mut self.buckets[(e % len) as usize],
                    (e, WindowSnapshot::default()),
                );
                self.totals.sub(old);
            }
        }
        self.latest = epoch;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Call = Call {
        failure: false,
        slow: false,
    };
    const FAIL: Call = Call {
        failure: true,
        slow: false,
    };
    const SLOW_FAIL: Call = Call {
        failure: true,
        slow: true,
    };

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let mut totals = WindowSnapshot {
            calls: u32::MAX,
            failed_calls: 0,
            slow_calls: 0,
        };
        totals.add(FAIL);
        assert_eq!((totals.calls, totals.failed_calls), (u32::MAX, 1));
        totals.sub(WindowSnapshot {
            calls: u32::MAX,
            failed_calls: 2,
            slow_calls: 0,
        });
        assert_eq!((totals.calls, totals.failed_calls), (0, 0));
    }

    #[test]
    fn count_window_keeps_the_last_n_calls() {
        let w = CountWindow::new(3);
        assert_eq!(w.record(FAIL).failed_calls, 1);
        w.record(SLOW_FAIL);
        let s = w.record(OK);
        assert_eq!((s.calls, s.failed_calls, s.slow_calls), (3, 2, 1));
        let s = w.record(OK); // displaces the first failure
        assert_eq!((s.calls, s.failed_calls, s.slow_calls), (3, 1, 1));
        let s = w.record(OK); // displaces the slow failure
        assert_eq!((s.calls, s.failed_calls, s.slow_calls), (3, 0, 0));
        assert_eq!(s.failure_rate(), 0.0);
    }

    #[test]
    fn count_window_is_consistent_under_threads() {
        let w = std::sync::Arc::new(CountWindow::new(64));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        w.record(if (i + t) % 2 == 0 { FAIL } else { OK });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = WindowSnapshot::unpack(w.totals.load(Ordering::Acquire));
        assert_eq!(s.calls, 64);
        let in_slots = w
            .slots
            .iter()
            .filter(|s| s.load(Ordering::Acquire) & 2 != 0)
            .count();
        assert_eq!(s.failed_calls as usize, in_slots);
    }

    #[test]
    fn time_window_ages_out_whole_buckets() {
        let start = Instant::now();
        let w = TimeWindow::new(Duration::from_secs(3), 3, start);
        w.record(FAIL, start);
        w.record(OK, start + Duration::from_millis(1500));
        assert_eq!(w.snapshot(start + Duration::from_millis(2999)).calls, 2);
        let s = w.snapshot(start + Duration::from_secs(3));
        assert_eq!((s.calls, s.failed_calls), (1, 0));
        assert_eq!(w.snapshot(start + Duration::from_secs(4)).calls, 0);
        w.record(FAIL, start + Duration::from_secs(100));
        assert_eq!(w.snapshot(start + Duration::from_secs(100)).failed_calls, 1);
    }
}
