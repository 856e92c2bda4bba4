//! A governor [`Clock`] on tokio's clock, so governor limiters obey paused time in tests.

use governor::{
    clock::{Clock, Reference},
    nanos::Nanos,
};
use std::{ops::Add, time::Duration};

/// A [`governor::clock::Clock`] reading [`tokio::time::Instant`].
///
/// governor reads its own clock (quanta or `std::time::Instant`), which `tokio::time::pause`
/// does not stop; with this clock a governor limiter runs on tokio's clock, so tests can
/// advance time by hand. This crate's limiter already reads tokio's clock; the clock is
/// also how its tests check that both make the same decisions.
///
/// ```
/// use espresso_rate_limit::clock::TokioClock;
/// use governor::{Quota, RateLimiter};
/// use std::{num::NonZeroU32, time::Duration};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let limiter = RateLimiter::direct_with_clock(Quota::per_second(NonZeroU32::MIN), TokioClock);
/// assert!(limiter.check().is_ok());
/// assert!(limiter.check().is_err());
/// tokio::time::advance(Duration::from_secs(1)).await;
/// assert!(limiter.check().is_ok());
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokioClock;

/// An instant of [`TokioClock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokioInstant(tokio::time::Instant);

impl From<tokio::time::Instant> for TokioInstant {
    fn from(i: tokio::time::Instant) -> Self {
        Self(i)
    }
}

impl From<TokioInstant> for tokio::time::Instant {
    fn from(i: TokioInstant) -> Self {
        i.0
    }
}

impl Add<Nanos> for TokioInstant {
    type Output = TokioInstant;

    fn add(self, other: Nanos) -> TokioInstant {
        let d = Duration::from(other);
        TokioInstant(self.0.checked_add(d).unwrap_or(self.0))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        TokioInstant(self.0.checked_sub(duration.into()).unwrap_or(self.0))
    }
}

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(tokio::time::Instant::now())
    }
}
