use super::{Limit, finite, nonzero_max, whole};
use std::{
    hash::{BuildHasher, RandomState},
    time::Duration,
};
use tokio::time::Instant;

/// Queue estimation from the no-load RTT, after Netflix's `VegasLimit` (itself after TCP Vegas).
///
/// The lowest RTT seen is taken as the no-load RTT; a sample's RTT then tells how many requests
/// are queued: `queue = ceil(limit × (1 − rtt_noload / rtt))`. With `log = log10(limit)`:
///
/// - a drop: `limit − log`;
/// - fewer than half of the limit in flight: no change (the service is not the bottleneck);
/// - `queue ≤ log`: `limit + 6·log` (nothing queues: grow fast);
/// - `queue < alpha·log` (alpha 3 by default): `limit + log`;
/// - `queue > beta·log` (beta 6 by default): `limit − log`;
/// - otherwise no change.
///
/// The result is smoothed (`limit × (1 − smoothing) + new × smoothing`, smoothing 1.0 by default)
/// and kept within `[1, max_limit]`. The no-load RTT is measured again every
/// `probe_multiplier × limit` samples (with jitter in `[0.5, 1)`), so it follows a service whose
/// baseline has changed. Defaults: initial limit 20, maximum 1000, probe multiplier 30.
///
/// ```
/// use espresso_degrade::limit::{Limit, Vegas};
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let mut limit = Vegas::new().initial_limit(100);
/// let now = Instant::now();
/// limit.on_sample(now, Duration::from_millis(10), 100, false); // the no-load RTT
/// let before = limit.limit();
/// limit.on_sample(now, Duration::from_millis(30), 100, false); // two thirds of the limit queue
/// assert!(limit.limit() < before);
/// ```
#[derive(Debug, Clone)]
pub struct Vegas {
    estimated: f64,
    max_limit: usize,
    smoothing: f64,
    probe_multiplier: f64,
    probe_jitter: f64,
    probe_count: u64,
    rtt_noload: Option<Duration>,
    rng: u64,
    alpha: f64,
    beta: f64,
}

impl Default for Vegas {
    fn default() -> Self {
        let mut this = Self {
            estimated: 20.0,
            max_limit: 1000,
            smoothing: 1.0,
            probe_multiplier: 30.0,
            probe_jitter: 0.75,
            probe_count: 0,
            rtt_noload: None,
            rng: RandomState::new().hash_one(0x5eed_u64) | 1,
            alpha: 3.0,
            beta: 6.0,
        };
        this.reset_probe_jitter();
        this
    }
}

impl Vegas {
    /// The reference's defaults (see the type's docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// The limit before any sample.
    pub fn initial_limit(mut self, limit: usize) -> Self {
        self.estimated = limit.max(1) as f64;
        self
    }

    /// The highest the limit may go.
    ///
    /// # Panics
    ///
    /// If `limit` is 0: a concurrency limit of 0 admits no request.
    #[track_caller]
    pub fn max_limit(mut self, limit: usize) -> Self {
        self.max_limit = nonzero_max("Vegas", limit);
        self
    }

    /// How much of each new estimate is taken, in `(0, 1]` (0.01 at least).
    ///
    /// # Panics
    ///
    /// If `smoothing` is NaN or infinite.
    #[track_caller]
    pub fn smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = finite("smoothing", smoothing).clamp(0.01, 1.0);
        self
    }

    /// The no-load RTT is measured again about every `multiplier × limit` samples; 0 never
    /// measures it again.
    pub fn probe_multiplier(mut self, multiplier: usize) -> Self {
        self.probe_multiplier = multiplier as f64;
        self
    }

    /// The queue sizes, as multiples of `log10(limit)`, below which the limit grows (`alpha`,
    /// 3 by default) and above which it shrinks (`beta`, 6 by default). Smaller values keep
    /// fewer requests queued in the service, so latency closer to the no-load RTT, at the price
    /// of a limit that settles lower. `beta` is kept above `alpha`, and `alpha` above 1.
    ///
    /// # Panics
    ///
    /// If `alpha` or `beta` is NaN or infinite.
    #[track_caller]
    pub fn queue_bounds(mut self, alpha: f64, beta: f64) -> Self {
        self.alpha = finite("queue_bounds(alpha, _)", alpha).max(1.0);
        self.beta = finite("queue_bounds(_, beta)", beta).max(self.alpha);
        self
    }

    /// Seeds the probe jitter, for reproducible runs.
    pub fn seed(mut self, seed: u64) -> Self {
        self.rng = seed | 1;
        self.reset_probe_jitter();
        self
    }

    /// The no-load RTT currently assumed, once a sample has been seen.
    pub fn rtt_noload(&self) -> Option<Duration> {
        self.rtt_noload
    }

    fn reset_probe_jitter(&mut self) {
        // xorshift64: enough to spread probes of many instances apart.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.probe_jitter = 0.5 + (self.rng >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
    }

    fn should_probe(&self) -> bool {
        self.probe_multiplier > 0.0
            && self.probe_jitter * self.probe_multiplier * self.estimated <= self.probe_count as f64
    }
}

impl Limit for Vegas {
    fn limit(&self) -> usize {
        whole(self.estimated, 1, self.max_limit)
    }

    fn on_sample(&mut self, _: Instant, rtt: Duration, inflight: usize, dropped: bool) -> usize {
        if rtt.is_zero() {
            return self.limit();
        }
        self.probe_count += 1;
        if self.should_probe() {
            self.reset_probe_jitter();
            self.probe_count = 0;
            self.rtt_noload = Some(rtt);
            return self.limit();
        }
        let noload = match self.rtt_noload {
            Some(noload) if rtt >= noload => noload,
            _ => {
                self.rtt_noload = Some(rtt);
                return self.limit();
            }
        };

        let limit = self.estimated;
        let log = limit.log10().max(1.0);
        let queue = (limit * (1.0 - noload.as_secs_f64() / rtt.as_secs_f64())).ceil();
        let new = if dropped {
            limit - log
        } else if (inflight as f64) * 2.0 < limit {
            return self.limit();
        } else if queue <= log {
            limit + 6.0 * log
        } else if queue < self.alpha * log {
            limit + log
        } else if queue > self.beta * log {
            limit - log
        } else {
            return self.limit();
        };
        let new = new.clamp(1.0, self.max_limit as f64);
        self.estimated = (limit * (1.0 - self.smoothing) + new * self.smoothing).max(1.0);
        self.limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn vegas(limit: usize) -> Vegas {
        Vegas::new().initial_limit(limit).probe_multiplier(0)
    }

    fn sample(limit: &mut Vegas, rtt: Duration, inflight: usize, dropped: bool) -> usize {
        limit.on_sample(Instant::now(), rtt, inflight, dropped)
    }

    #[test]
    fn first_sample_sets_the_noload_rtt() {
        let mut limit = vegas(100);
        assert_eq!(sample(&mut limit, ms(10), 100, false), 100);
        assert_eq!(limit.rtt_noload(), Some(ms(10)));
        sample(&mut limit, ms(8), 100, false);
        assert_eq!(limit.rtt_noload(), Some(ms(8)));
    }

    #[test]
    fn grows_fast_when_nothing_queues() {
        let mut limit = vegas(100); // log10(100) = 2
        sample(&mut limit, ms(10), 100, false);
        assert_eq!(sample(&mut limit, ms(10), 100, false), 112);
    }

    #[test]
    fn grows_slowly_with_a_small_queue() {
        let mut limit = vegas(100);
        sample(&mut limit, ms(100), 100, false);
        // queue = ceil(100 × (1 − 100/104)) = 4: between log (2) and 3·log (6)
        assert_eq!(sample(&mut limit, ms(104), 100, false), 102);
    }

    #[test]
    fn holds_in_the_sweet_spot() {
        let mut limit = vegas(100);
        sample(&mut limit, ms(100), 100, false);
        // queue = ceil(100 × (1 − 100/110)) = 10: between 3·log (6) and 6·log (12)
        assert_eq!(sample(&mut limit, ms(110), 100, false), 100);
    }

    #[test]
    fn shrinks_when_the_queue_is_long_or_on_drop() {
        let mut limit = vegas(100);
        sample(&mut limit, ms(10), 100, false);
        assert_eq!(sample(&mut limit, ms(30), 100, false), 98);
        let mut limit = vegas(100);
        sample(&mut limit, ms(10), 100, false);
        assert_eq!(sample(&mut limit, ms(10), 10, true), 98);
    }

    #[test]
    fn tighter_queue_bounds_shrink_sooner() {
        let mut limit = vegas(100).queue_bounds(1.5, 3.0);
        sample(&mut limit, ms(100), 100, false);
        // queue 10 is the sweet spot by default, but above 3·log (6) here
        assert_eq!(sample(&mut limit, ms(110), 100, false), 98);
    }

    #[test]
    fn does_not_grow_when_app_limited() {
        let mut limit = vegas(100);
        sample(&mut limit, ms(10), 100, false);
        assert_eq!(sample(&mut limit, ms(10), 49, false), 100);
    }

    #[test]
    fn probes_the_noload_rtt_again() {
        let mut limit = Vegas::new().initial_limit(10).probe_multiplier(1).seed(7);
        sample(&mut limit, ms(10), 1, false);
        // the baseline moved up: within 10 samples a probe adopts it
        let mut probed = false;
        for _ in 0..10 {
            sample(&mut limit, ms(50), 1, false);
            probed |= limit.rtt_noload() == Some(ms(50));
        }
        assert!(probed);
    }
}
