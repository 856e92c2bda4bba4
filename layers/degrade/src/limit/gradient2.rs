use super::{Limit, check_bounds, finite, nonzero_max, whole};
use std::time::Duration;
use tokio::time::Instant;

/// The gradient between a long-term and a short-term RTT, after Netflix's `Gradient2Limit`.
///
/// Every sample updates two RTT measurements: the short-term RTT (the sample itself) and the
/// long-term RTT (an exponential average over [`long_window`](Gradient2::long_window) samples,
/// a plain average over the first ten). Then:
///
/// - When fewer than half of the limit are in flight the service is not the bottleneck and the
///   limit is left alone.
/// - `gradient = clamp(tolerance × long / short, 0.5, 1.0)`: 1.0 while the short-term RTT is within
///   `tolerance` of the baseline, smaller as requests start to queue, never below 0.5 so an
///   outlier cannot halve the limit at once.
/// - `new = limit × gradient + queue_size`, smoothed: `limit × (1 − smoothing) + new × smoothing`,
///   and kept within `[min_limit, max_limit]`.
/// - When the long-term RTT is more than twice the short-term one (load has just gone away), the
///   long-term RTT is cut by 10% per sample so the limit recovers without waiting for the average.
///
/// Defaults as in the reference: initial and minimum limit 20, maximum 200, smoothing 0.2, queue
/// size 4, long window 600 samples, tolerance 1.0 (the reference's current code has no tolerance;
/// an earlier version used 1.5, which lets the long-term RTT drift up under sustained load and
/// roughly doubles queueing in the `overload` benchmark).
///
/// # Panics
///
/// When first used ([`limit`](Limit::limit), [`on_sample`](Limit::on_sample), or
/// [`DegradeLayer::new`](crate::DegradeLayer::new)), if `max_limit` is below `min_limit`, in
/// whatever order they were set; [`max_limit`](Gradient2::max_limit) refuses 0 at once, and the
/// fractional settings refuse NaN and infinities.
///
/// ```
/// use espresso_degrade::limit::{Gradient2, Limit};
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let mut limit = Gradient2::new().initial_limit(50).min_limit(1);
/// let now = Instant::now();
/// for _ in 0..20 {
///     limit.on_sample(now, Duration::from_millis(10), 50, false); // baseline 10 ms
/// }
/// let before = limit.limit();
/// limit.on_sample(now, Duration::from_millis(40), 50, false); // requests start to queue
/// assert!(limit.limit() < before);
/// ```
#[derive(Debug, Clone)]
pub struct Gradient2 {
    estimated: f64,
    min_limit: usize,
    max_limit: usize,
    smoothing: f64,
    tolerance: f64,
    queue_size: f64,
    long_rtt: ExpAverage,
    short_rtt: f64,
    // `estimated` as a whole limit within the bounds, kept up to date by `settle`.
    limit: usize,
}

impl Default for Gradient2 {
    fn default() -> Self {
        let mut limit = Self {
            estimated: 20.0,
            min_limit: 20,
            max_limit: 200,
            smoothing: 0.2,
            tolerance: 1.0,
            queue_size: 4.0,
            long_rtt: ExpAverage::new(600, 10),
            short_rtt: 0.0,
            limit: 0,
        };
        limit.settle();
        limit
    }
}

impl Gradient2 {
    /// The reference's defaults (see the type's docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// The limit before any sample.
    pub fn initial_limit(mut self, limit: usize) -> Self {
        self.estimated = limit.max(1) as f64;
        self.settle();
        self
    }

    /// The lowest the limit may go (at least 1).
    pub fn min_limit(mut self, limit: usize) -> Self {
        self.min_limit = limit.max(1);
        self.settle();
        self
    }

    /// The highest the limit may go; at least `min_limit`.
    ///
    /// # Panics
    ///
    /// If `limit` is 0: a concurrency limit of 0 admits no request.
    #[track_caller]
    pub fn max_limit(mut self, limit: usize) -> Self {
        self.max_limit = nonzero_max("Gradient2", limit);
        self.settle();
        self
    }

    /// How much of each new estimate is taken, in `(0, 1]` (0.01 at least): lower is steadier,
    /// higher reacts faster.
    ///
    /// # Panics
    ///
    /// If `smoothing` is NaN or infinite.
    #[track_caller]
    pub fn smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = finite("smoothing", smoothing).clamp(0.01, 1.0);
        self
    }

    /// How much slower than the baseline the short-term RTT may be before the limit shrinks
    /// (at least 1.0).
    ///
    /// # Panics
    ///
    /// If `tolerance` is NaN or infinite.
    #[track_caller]
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = finite("tolerance", tolerance).max(1.0);
        self
    }

    /// How much the limit may grow per sample while latency stays at the baseline.
    pub fn queue_size(mut self, queue_size: usize) -> Self {
        self.queue_size = queue_size as f64;
        self
    }

    /// The number of samples the long-term RTT averages over.
    pub fn long_window(mut self, samples: usize) -> Self {
        self.long_rtt = ExpAverage::new(samples.max(1), 10.min(samples.max(1)));
        self
    }

    /// The long-term (baseline) RTT.
    pub fn long_rtt(&self) -> Duration {
        Duration::from_secs_f64(self.long_rtt.value.max(0.0))
    }

    /// The short-term RTT (the latest sample).
    pub fn short_rtt(&self) -> Duration {
        Duration::from_secs_f64(self.short_rtt.max(0.0))
    }

    /// Brings the whole limit in line with the estimate and the bounds.
    fn settle(&mut self) {
        // The bounds may contradict each other half-way through the setters; `limit` refuses
        // them once the limit is used.
        self.limit = whole(
            self.estimated,
            self.min_limit,
            self.max_limit.max(self.min_limit),
        );
    }
}

impl Limit for Gradient2 {
    fn limit(&self) -> usize {
        check_bounds("Gradient2", "min_limit", self.min_limit, self.max_limit);
        self.limit
    }

    fn on_sample(&mut self, _: Instant, rtt: Duration, inflight: usize, _: bool) -> usize {
        check_bounds("Gradient2", "min_limit", self.min_limit, self.max_limit);
        // A zero RTT (a clock too coarse to see the call) carries no information.
        let short = rtt.as_secs_f64();
        if short <= 0.0 {
            return self.limit();
        }
        self.short_rtt = short;
        let long = self.long_rtt.add(short);
        if long / short > 2.0 {
            self.long_rtt.value *= 0.9;
        }
        if (inflight as f64) < self.estimated / 2.0 {
            return self.limit();
        }
        let gradient = (self.tolerance * long / short).clamp(0.5, 1.0);
        let target = self.estimated * gradient + self.queue_size;
        let smoothed = self.estimated * (1.0 - self.smoothing) + target * self.smoothing;
        self.estimated = smoothed.clamp(self.min_limit as f64, self.max_limit as f64);
        self.settle();
        self.limit
    }
}

/// An exponential moving average that starts as a plain average over `warmup` samples.
#[derive(Debug, Clone)]
struct ExpAverage {
    factor: f64,
    warmup: usize,
    count: usize,
    sum: f64,
    value: f64,
}

impl ExpAverage {
    fn new(window: usize, warmup: usize) -> Self {
        Self {
            factor: 2.0 / (window as f64 + 1.0),
            warmup,
            count: 0,
            sum: 0.0,
            value: 0.0,
        }
    }

    fn add(&mut self, sample: f64) -> f64 {
        if self.count < self.warmup {
            self.count += 1;
            self.sum += sample;
            self.value = self.sum / self.count as f64;
        } else {
            self.value = self.value * (1.0 - self.factor) + sample * self.factor;
        }
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::refusal;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn feed(limit: &mut Gradient2, rtt: Duration, inflight: usize, n: usize) -> usize {
        let now = Instant::now();
        let mut last = limit.limit();
        for _ in 0..n {
            last = limit.on_sample(now, rtt, inflight, false);
        }
        last
    }

    #[test]
    fn grows_by_smoothed_queue_size_at_the_baseline() {
        let mut limit = Gradient2::new().initial_limit(20).min_limit(1);
        // gradient 1.0: 20 × 0.8 + (20 + 4) × 0.2 = 20.8, then 21.6
        limit.on_sample(Instant::now(), ms(10), 20, false);
        assert!((limit.estimated - 20.8).abs() < 1e-9);
        assert_eq!(limit.on_sample(Instant::now(), ms(10), 20, false), 21);
    }

    #[test]
    fn leaves_the_limit_alone_when_app_limited() {
        let mut limit = Gradient2::new().initial_limit(40).min_limit(1);
        assert_eq!(feed(&mut limit, ms(10), 19, 50), 40);
    }

    #[test]
    fn shrinks_when_latency_rises_above_tolerance() {
        let mut limit = Gradient2::new()
            .initial_limit(100)
            .min_limit(1)
            .max_limit(100);
        feed(&mut limit, ms(10), 100, 10);
        assert_eq!(limit.limit(), 100);
        // short 30 ms vs long ≈ 10 ms: gradient = 10/30, raised to the 0.5 floor, so
        // new = 100 × 0.5 + 4 = 54, smoothed 100 × 0.8 + 54 × 0.2 = 90.8
        let after = limit.on_sample(Instant::now(), ms(30), 100, false);
        assert!((89..=91).contains(&after), "{after}");
    }

    #[test]
    fn tolerates_latency_within_tolerance() {
        let mut limit = Gradient2::new()
            .initial_limit(50)
            .min_limit(1)
            .max_limit(50)
            .tolerance(1.5);
        feed(&mut limit, ms(10), 50, 10);
        assert_eq!(feed(&mut limit, ms(14), 50, 5), 50);
    }

    #[test]
    fn sustained_queueing_drives_the_limit_to_the_floor() {
        let mut limit = Gradient2::new().initial_limit(100).min_limit(5);
        feed(&mut limit, ms(10), 100, 10);
        let mut rtt = 10;
        for _ in 0..200 {
            rtt += 2;
            limit.on_sample(Instant::now(), ms(rtt), 100, false);
        }
        assert!(limit.limit() < 30, "{}", limit.limit());
    }

    #[test]
    fn long_rtt_drops_quickly_after_load_goes_away() {
        let mut limit = Gradient2::new().min_limit(1);
        feed(&mut limit, ms(100), 20, 10);
        assert_eq!(limit.long_rtt(), ms(100));
        feed(&mut limit, ms(10), 20, 20);
        assert!(limit.long_rtt() < ms(20), "{:?}", limit.long_rtt());
    }

    #[test]
    fn a_max_below_the_min_is_refused_whatever_the_setter_order() {
        let expected = "degrade: Gradient2's `max_limit` (10) is below its `min_limit` (50); \
                        raise max_limit or lower min_limit";
        let refused = refusal(|| {
            Gradient2::new().min_limit(50).max_limit(10).limit();
        });
        assert_eq!(refused, expected);
        let refused = refusal(|| {
            Gradient2::new().max_limit(10).min_limit(50).on_sample(
                Instant::now(),
                ms(10),
                50,
                false,
            );
        });
        assert_eq!(refused, expected);
        // A max below the default min is fine once the min is lowered too.
        assert_eq!(Gradient2::new().max_limit(10).min_limit(1).limit(), 10);
    }

    #[test]
    fn zero_rtt_is_ignored() {
        let mut limit = Gradient2::new();
        assert_eq!(feed(&mut limit, Duration::ZERO, 20, 5), 20);
        assert_eq!(limit.long_rtt(), Duration::ZERO);
    }
}
