//! How long the breaker stays OPEN: fixed, or growing with each failed recovery.

use std::{
    collections::hash_map::RandomState,
    hash::BuildHasher,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// The wait in OPEN before HALF_OPEN, given `attempt`: how many times in a row the breaker has
/// opened (1 the first time, 2 after a failed half-open round, ...; closing resets it).
///
/// Implemented by [`Backoff`] and by any `Fn(u32) -> Duration + Send + Sync`.
pub trait WaitInterval: Send + Sync + 'static {
    /// The wait for this attempt.
    fn wait(&self, attempt: u32) -> Duration;
}

impl<F> WaitInterval for F
where
    F: Fn(u32) -> Duration + Send + Sync + 'static,
{
    fn wait(&self, attempt: u32) -> Duration {
        self(attempt)
    }
}

/// A fixed or exponential wait, optionally randomised (resilience4j's
/// `IntervalFunction.ofExponentialRandomBackoff`).
///
/// The wait for attempt `n` is `initial * multiplier^(n-1)`, then multiplied by a random factor
/// in `[1 - jitter, 1 + jitter]`, then capped at `max`.
///
/// ```
/// use espresso_circuit_breaker::{Backoff, WaitInterval};
/// use std::time::Duration;
///
/// let backoff = Backoff::exponential(Duration::from_secs(1), 2.0).max(Duration::from_secs(5));
/// assert_eq!(backoff.wait(1), Duration::from_secs(1));
/// assert_eq!(backoff.wait(3), Duration::from_secs(4));
/// assert_eq!(backoff.wait(4), Duration::from_secs(5));
/// ```
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    multiplier: f64,
    max: Duration,
    jitter: f64,
    rng: AtomicU64,
}

impl Clone for Backoff {
    fn clone(&self) -> Self {
        Self {
            rng: AtomicU64::new(seed()),
            ..*self
        }
    }
}

fn seed() -> u64 {
    RandomState::new().hash_one(0x5eed_u64) | 1
}

impl Backoff {
    /// Always `wait`.
    pub fn fixed(wait: Duration) -> Self {
        Self::exponential(wait, 1.0)
    }

    /// `initial`, then multiplied by `multiplier` (at least 1) at each attempt; no cap but
    /// [`max`](Self::max) (a wait no clock can reach leaves the breaker open for decades).
    ///
    /// # Panics
    ///
    /// If `multiplier` is NaN or infinite.
    #[track_caller]
    pub fn exponential(initial: Duration, multiplier: f64) -> Self {
        assert!(
            multiplier.is_finite(),
            "circuit breaker: the backoff multiplier must be a finite number, got {multiplier}"
        );
        let multiplier = multiplier.max(1.0);
        Self {
            initial,
            multiplier,
            max: Duration::MAX,
            jitter: 0.0,
            rng: AtomicU64::new(seed()),
        }
    }

    /// Caps the wait.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Randomises each wait by up to `± factor` of itself (`factor` is clamped to `[0, 1]`).
    ///
    /// # Panics
    ///
    /// If `factor` is NaN or infinite.
    #[track_caller]
    pub fn jitter(mut self, factor: f64) -> Self {
        assert!(
            factor.is_finite(),
            "circuit breaker: the backoff jitter must be a finite number, got {factor}"
        );
        self.jitter = factor.clamp(0.0, 1.0);
        self
    }

    /// A uniform number in `[0, 1)` (splitmix64; good enough to spread waits apart).
    fn random(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl WaitInterval for Backoff {
    fn wait(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let mut secs = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        if self.jitter > 0.0 {
            secs *= 1.0 + self.jitter * (2.0 * self.random() - 1.0);
        }
        let max = self.max.as_secs_f64();
        if !secs.is_finite() || secs >= max {
            return self.max;
        }
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_is_fixed() {
        let b = Backoff::fixed(Duration::from_millis(300));
        assert_eq!(b.wait(1), Duration::from_millis(300));
        assert_eq!(b.wait(50), Duration::from_millis(300));
    }

    #[test]
    fn exponential_grows_and_caps() {
        let b = Backoff::exponential(Duration::from_millis(100), 3.0).max(Duration::from_secs(1));
        assert_eq!(b.wait(1), Duration::from_millis(100));
        assert_eq!(b.wait(2), Duration::from_millis(300));
        assert_eq!(b.wait(3), Duration::from_millis(900));
        assert_eq!(b.wait(4), Duration::from_secs(1));
        assert_eq!(b.wait(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_its_band_and_varies() {
        let b = Backoff::exponential(Duration::from_secs(10), 2.0).jitter(0.5);
        let waits: Vec<_> = (0..200).map(|_| b.wait(2)).collect();
        for w in &waits {
            assert!(
                *w >= Duration::from_secs(10) && *w <= Duration::from_secs(30),
                "{w:?}"
            );
        }
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(
            distinct.len() > 100,
            "jitter should spread waits: {}",
            distinct.len()
        );
    }

    #[test]
    fn huge_numbers_saturate_and_nan_is_refused() {
        let b = Backoff::exponential(Duration::from_secs(1), 0.5).jitter(7.0);
        assert!(
            b.wait(5) <= Duration::from_secs(2),
            "clamped to x1, jitter 1"
        );
        let unbounded = Backoff::exponential(Duration::from_secs(1), 1e300);
        assert_eq!(unbounded.wait(10), Duration::MAX);
        for refused in [
            std::panic::catch_unwind(|| Backoff::exponential(Duration::from_secs(1), f64::NAN)),
            std::panic::catch_unwind(|| Backoff::fixed(Duration::from_secs(1)).jitter(f64::NAN)),
        ] {
            let message = refused.unwrap_err();
            let message = message.downcast_ref::<String>().unwrap();
            assert!(message.contains("must be a finite number"), "{message}");
        }
    }
}
