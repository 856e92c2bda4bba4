use super::{Limit, check_bounds, finite, nonzero_max, whole};
use std::time::Duration;
use tokio::time::Instant;

/// Additive increase, multiplicative decrease, after Netflix's `AIMDLimit`.
///
/// - A sample that was dropped, or took longer than [`timeout`](Aimd::timeout), multiplies the
///   limit by [`backoff_ratio`](Aimd::backoff_ratio) (0.9 by default).
/// - Any other sample adds 1, but only while the limit is in use (at least half of it in flight),
///   so an idle service does not grow an unbounded limit.
/// - The limit stays within `[min_limit, max_limit]` (defaults 20 and 200, initial 20).
///
/// # Panics
///
/// When first used ([`limit`](Limit::limit), [`on_sample`](Limit::on_sample), or
/// [`DegradeLayer::new`](crate::DegradeLayer::new)), if `max_limit` is below `min_limit`, in
/// whatever order they were set; [`max_limit`](Aimd::max_limit) refuses 0 at once.
///
/// ```
/// use espresso_degrade::limit::{Aimd, Limit};
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let mut limit = Aimd::new().initial_limit(10).min_limit(1);
/// let now = Instant::now();
/// assert_eq!(limit.on_sample(now, Duration::from_millis(5), 10, false), 11);
/// assert_eq!(limit.on_sample(now, Duration::from_millis(5), 10, true), 9);
/// ```
#[derive(Debug, Clone)]
pub struct Aimd {
    limit: usize,
    min_limit: usize,
    max_limit: usize,
    backoff_ratio: f64,
    timeout: Duration,
}

impl Default for Aimd {
    fn default() -> Self {
        Self {
            limit: 20,
            min_limit: 20,
            max_limit: 200,
            backoff_ratio: 0.9,
            timeout: Duration::from_secs(5),
        }
    }
}

impl Aimd {
    /// The defaults: initial and minimum limit 20, maximum 200, backoff 0.9, timeout 5 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// The limit before any sample.
    pub fn initial_limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// The lowest the limit may go (at least 1).
    pub fn min_limit(mut self, limit: usize) -> Self {
        self.min_limit = limit.max(1);
        self
    }

    /// The highest the limit may go; at least `min_limit`.
    ///
    /// # Panics
    ///
    /// If `limit` is 0: a concurrency limit of 0 admits no request.
    #[track_caller]
    pub fn max_limit(mut self, limit: usize) -> Self {
        self.max_limit = nonzero_max("Aimd", limit);
        self
    }

    /// The factor applied on a drop or timeout; values outside `[0.5, 1.0)` are clamped into it.
    ///
    /// # Panics
    ///
    /// If `ratio` is NaN or infinite.
    #[track_caller]
    pub fn backoff_ratio(mut self, ratio: f64) -> Self {
        self.backoff_ratio = finite("backoff_ratio", ratio).clamp(0.5, 0.999);
        self
    }

    /// A sample slower than this counts as a drop.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Limit for Aimd {
    fn limit(&self) -> usize {
        check_bounds("Aimd", "min_limit", self.min_limit, self.max_limit);
        self.limit.clamp(self.min_limit, self.max_limit)
    }

    fn on_sample(&mut self, _: Instant, rtt: Duration, inflight: usize, dropped: bool) -> usize {
        check_bounds("Aimd", "min_limit", self.min_limit, self.max_limit);
        let max = self.max_limit;
        let mut limit = self.limit as f64;
        if dropped || rtt > self.timeout {
            limit *= self.backoff_ratio;
        } else if inflight * 2 >= self.limit {
            limit += 1.0;
        }
        self.limit = whole(limit, self.min_limit, max);
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::refusal;

    fn sample(limit: &mut Aimd, rtt_ms: u64, inflight: usize, dropped: bool) -> usize {
        limit.on_sample(
            Instant::now(),
            Duration::from_millis(rtt_ms),
            inflight,
            dropped,
        )
    }

    #[test]
    fn grows_by_one_while_in_use() {
        let mut limit = Aimd::new().initial_limit(10).min_limit(1);
        assert_eq!(sample(&mut limit, 1, 5, false), 11);
        assert_eq!(sample(&mut limit, 1, 6, false), 12);
    }

    #[test]
    fn does_not_grow_when_app_limited() {
        let mut limit = Aimd::new().initial_limit(10).min_limit(1);
        assert_eq!(sample(&mut limit, 1, 4, false), 10);
    }

    #[test]
    fn backs_off_on_drop_and_on_timeout() {
        let mut limit = Aimd::new()
            .initial_limit(100)
            .min_limit(1)
            .timeout(Duration::from_millis(50));
        assert_eq!(sample(&mut limit, 1, 100, true), 90);
        assert_eq!(sample(&mut limit, 51, 90, false), 81);
        assert_eq!(sample(&mut limit, 50, 81, false), 82);
    }

    #[test]
    fn stays_within_bounds() {
        let mut limit = Aimd::new().initial_limit(3).min_limit(2).max_limit(4);
        for _ in 0..10 {
            sample(&mut limit, 1, 4, false);
        }
        assert_eq!(limit.limit(), 4);
        for _ in 0..10 {
            sample(&mut limit, 1, 4, true);
        }
        assert_eq!(limit.limit(), 2);
    }

    #[test]
    fn a_max_below_the_min_is_refused_whatever_the_setter_order() {
        let expected = "degrade: Aimd's `max_limit` (10) is below its `min_limit` (50); raise \
                        max_limit or lower min_limit";
        let refused = refusal(|| {
            Aimd::new().min_limit(50).max_limit(10).limit();
        });
        assert_eq!(refused, expected);
        let refused = refusal(|| {
            Aimd::new().max_limit(10).min_limit(50).on_sample(
                Instant::now(),
                Duration::from_millis(1),
                1,
                false,
            );
        });
        assert_eq!(refused, expected);
        // A max below the default min is fine once the min is lowered too.
        assert_eq!(Aimd::new().max_limit(10).min_limit(1).limit(), 10);
    }

    #[test]
    fn odd_backoff_ratios_are_clamped() {
        let mut limit = Aimd::new()
            .initial_limit(100)
            .min_limit(1)
            .backoff_ratio(0.0);
        assert_eq!(sample(&mut limit, 1, 100, true), 50);
    }
}
