use super::{Limit, check_bounds, finite, nonzero_max, whole};
use std::{
    hash::{BuildHasher, RandomState},
    time::Duration,
};
use tokio::time::Instant;

/// A gradient against a measured no-load RTT, after Envoy's adaptive concurrency gradient
/// controller.
///
/// [`Gradient2`](super::Gradient2) compares the short-term RTT with a long-term average, which
/// drifts up under sustained overload, so the limit settles where requests already queue. This
/// controller instead measures the no-load RTT itself, from time to time, by holding the limit at
/// [`min_concurrency`](GradientController::min_concurrency) for a moment:
///
/// - **Min-RTT probe**: the limit drops to `min_concurrency` (3 by default) until
///   [`probe_samples`](GradientController::probe_samples) requests admitted during the probe have
///   finished (50); their median RTT becomes the min RTT, and the limit goes back to where it
///   was. A probe runs at start and then every
///   [`probe_interval`](GradientController::probe_interval) (60 s, each one shifted by up to
///   ±15% so many instances do not probe together).
/// - **Between probes**, samples are gathered over windows of
///   [`update_interval`](GradientController::update_interval) (100 ms); at the end of each,
///   with `sample` the window's median RTT:
///   `gradient = clamp(min_rtt × (1 + buffer) / sample, 0.5, 2.0)` and
///   `limit = limit × gradient + sqrt(limit × gradient)`, within `[min_concurrency, max_limit]`.
///   The buffer (25%) is the latency rise tolerated before the limit shrinks; the square-root
///   headroom lets bursts in.
/// - A window in which fewer than half of the limit were ever in flight does not grow the limit:
///   the service was not the bottleneck, and a limit grown far above the load would admit the
///   whole of the next burst before it shrank again.
/// - A dropped sample says nothing about queueing (a fast error is not a fast service): it is not
///   timed, and a window holding one does not grow the limit.
///
/// Time is read from the samples themselves (`start + rtt`), so the controller needs no timer and
/// runs the same under paused tokio time.
///
/// # Panics
///
/// When first used ([`limit`](Limit::limit), [`on_sample`](Limit::on_sample), or
/// [`DegradeLayer::new`](crate::DegradeLayer::new)), if `max_limit` is below `min_concurrency`, in
/// whatever order they were set; [`max_limit`](GradientController::max_limit) refuses 0 at once,
/// and [`buffer`](GradientController::buffer) NaN and infinities.
///
/// ```
/// use espresso_degrade::limit::{GradientController, Limit};
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let ms = Duration::from_millis;
/// let mut limit = GradientController::new().probe_samples(5).seed(1);
/// let start = Instant::now();
/// // The first probe: five requests at the minimum concurrency measure the no-load RTT.
/// assert_eq!(limit.limit(), 3);
/// for i in 0..5 {
///     limit.on_sample(start + ms(i), ms(10), 1, false);
/// }
/// assert_eq!(limit.min_rtt(), Some(ms(10)));
/// // Fast answers for a window: the limit grows.
/// for i in 0..20 {
///     limit.on_sample(start + ms(10 + 10 * i), ms(10), 3, false);
/// }
/// assert!(limit.limit() > 3);
/// ```
#[derive(Debug, Clone)]
pub struct GradientController {
    limit: f64,
    min_concurrency: usize,
    max_limit: usize,
    buffer: f64,
    update_interval: Duration,
    probe_interval: Duration,
    probe_samples: usize,
    rng: u64,
    min_rtt: Option<Duration>,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    /// Measuring the min RTT: samples of requests admitted since `since`, and the limit to go
    /// back to.
    Probing {
        since: Option<Instant>,
        rtts: Vec<Duration>,
        resume: f64,
    },
    /// Adjusting the limit window by window until `next_probe`.
    Adjusting {
        window_start: Instant,
        rtts: Vec<Duration>,
        dropped: bool,
        most_inflight: usize,
        next_probe: Instant,
    },
}

impl Default for GradientController {
    fn default() -> Self {
        Self {
            limit: 3.0,
            min_concurrency: 3,
            max_limit: 1000,
            buffer: 0.25,
            update_interval: Duration::from_millis(100),
            probe_interval: Duration::from_secs(60),
            probe_samples: 50,
            rng: RandomState::new().hash_one(0x5eed_u64) | 1,
            min_rtt: None,
            state: State::Probing {
                since: None,
                rtts: Vec::new(),
                resume: 3.0,
            },
        }
    }
}

impl GradientController {
    /// Envoy's defaults (see the type's docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// The limit to go to after the first probe (the minimum concurrency by default; the
    /// gradient can at most double it per window).
    pub fn initial_limit(mut self, limit: usize) -> Self {
        if let State::Probing { resume, .. } = &mut self.state {
            *resume = limit.max(1) as f64;
        }
        self
    }

    /// The limit while probing and the lowest it goes otherwise (at least 1).
    pub fn min_concurrency(mut self, limit: usize) -> Self {
        self.min_concurrency = limit.max(1);
        self.limit = self.min_concurrency as f64;
        self
    }

    /// The highest the limit may go; at least `min_concurrency`.
    ///
    /// # Panics
    ///
    /// If `limit` is 0: a concurrency limit of 0 admits no request.
    #[track_caller]
    pub fn max_limit(mut self, limit: usize) -> Self {
        self.max_limit = nonzero_max("GradientController", limit);
        self
    }

    /// The latency rise over the min RTT tolerated before the limit shrinks, as a fraction
    /// (0.25: 25%; at least 0).
    ///
    /// # Panics
    ///
    /// If `buffer` is NaN or infinite.
    #[track_caller]
    pub fn buffer(mut self, buffer: f64) -> Self {
        self.buffer = finite("buffer", buffer).max(0.0);
        self
    }

    /// How often the limit is recalculated.
    pub fn update_interval(mut self, interval: Duration) -> Self {
        self.update_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How often the min RTT is measured again (±15% jitter).
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// How many samples one min-RTT probe takes.
    pub fn probe_samples(mut self, samples: usize) -> Self {
        self.probe_samples = samples.max(1);
        self
    }

    /// Seeds the probe jitter, for reproducible runs.
    pub fn seed(mut self, seed: u64) -> Self {
        self.rng = seed | 1;
        self
    }

    /// The min RTT measured by the last probe.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// Whether a min-RTT probe is holding the limit down.
    pub fn is_probing(&self) -> bool {
        matches!(self.state, State::Probing { .. })
    }

    #[track_caller]
    fn check_bounds(&self) {
        check_bounds(
            "GradientController",
            "min_concurrency",
            self.min_concurrency,
            self.max_limit,
        );
    }

    fn bounded(&self, limit: f64) -> f64 {
        limit.clamp(self.min_concurrency as f64, self.max_limit as f64)
    }

    /// The next probe time: `probe_interval` shifted by up to ±15%.
    fn next_probe(&mut self, now: Instant) -> Instant {
        // xorshift64: enough to spread probes of many instances apart.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        now + self.probe_interval.mul_f64(0.85 + 0.3 * unit)
    }

    fn start_probe(&mut self, now: Instant) {
        self.state = State::Probing {
            since: Some(now),
            rtts: Vec::with_capacity(self.probe_samples),
            resume: self.limit,
        };
        self.limit = self.min_concurrency as f64;
    }

    fn recalculate(&mut self, sample: Duration, hold: bool) {
        let (Some(min_rtt), false) = (self.min_rtt, sample.is_zero()) else {
            return;
        };
        let target = min_rtt.as_secs_f64() * (1.0 + self.buffer);
        let gradient = (target / sample.as_secs_f64()).clamp(0.5, 2.0);
        let limit = self.limit * gradient;
        let limit = self.bounded(limit + limit.sqrt());
        self.limit = if hold { limit.min(self.limit) } else { limit };
    }
}

/// The median of `rtts` (which it reorders).
fn median(rtts: &mut [Duration]) -> Duration {
    let middle = rtts.len() / 2;
    *rtts.select_nth_unstable(middle).1
}

impl Limit for GradientController {
    fn limit(&self) -> usize {
        self.check_bounds();
        whole(self.limit, self.min_concurrency, self.max_limit)
    }

    fn on_sample(
        &mut self,
        start: Instant,
        rtt: Duration,
        inflight: usize,
        dropped: bool,
    ) -> usize {
        self.check_bounds();
        let now = start + rtt;
        match &mut self.state {
            State::Probing {
                since,
                rtts,
                resume,
            } => {
                // Requests admitted before the probe began queued behind a higher limit.
                let since = *since.get_or_insert(start);
                if !dropped && start >= since {
                    rtts.push(rtt);
                }
                if rtts.len() >= self.probe_samples {
                    let resume = *resume;
                    self.min_rtt = Some(median(rtts));
                    self.limit = self.bounded(resume);
                    let next_probe = self.next_probe(now);
                    self.state = State::Adjusting {
                        window_start: now,
                        rtts: Vec::new(),
                        dropped: false,
                        most_inflight: 0,
                        next_probe,
                    };
                }
            }
            State::Adjusting {
                window_start,
                rtts,
                dropped: window_dropped,
                most_inflight,
                next_probe,
            } => {
                *most_inflight = (*most_inflight).max(inflight);
                if dropped {
                    *window_dropped = true;
                } else {
                    rtts.push(rtt);
                }
                if now >= *next_probe {
                    self.start_probe(now);
                } else if now.duration_since(*window_start) >= self.update_interval
                    && !rtts.is_empty()
                {
                    let sample = median(rtts);
                    let app_limited = (*most_inflight as f64) * 2.0 < self.limit;
                    let hold = std::mem::take(window_dropped) || app_limited;
                    rtts.clear();
                    *most_inflight = 0;
                    *window_start = now;
                    self.recalculate(sample, hold);
                }
            }
        }
        self.limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::refusal;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A controller whose first probe has measured a 10 ms min RTT, at `limit`, at `start + 10ms`.
    fn probed(limit: usize, start: Instant) -> GradientController {
        let mut controller = GradientController::new()
            .initial_limit(limit)
            .probe_samples(3)
            .seed(3);
        for _ in 0..3 {
            controller.on_sample(start, ms(10), 1, false);
        }
        assert_eq!(controller.min_rtt(), Some(ms(10)));
        assert_eq!(controller.limit(), limit);
        controller
    }

    /// Feeds one window of samples of `rtt`, with the limit in use, ending past the update
    /// interval.
    fn window(controller: &mut GradientController, from: Instant, rtt: Duration, dropped: bool) {
        let busy = controller.limit();
        for i in 0..10 {
            controller.on_sample(from + ms(10 * i), rtt, busy, dropped);
        }
        controller.on_sample(from + ms(100), rtt, busy, dropped);
    }

    #[test]
    fn starts_by_probing_at_the_minimum_concurrency() {
        let controller = GradientController::new().initial_limit(50);
        assert!(controller.is_probing());
        assert_eq!(controller.limit(), 3);
        assert_eq!(controller.min_rtt(), None);
    }

    #[test]
    fn the_probe_takes_the_median_and_ignores_requests_from_before_it() {
        let start = Instant::now();
        let mut controller = GradientController::new()
            .initial_limit(20)
            .probe_samples(3)
            .seed(1);
        let mut limit = probed(20, start);
        // A later probe: a request admitted before it began is not a no-load sample.
        limit.start_probe(start + ms(1000));
        limit.on_sample(start + ms(900), ms(300), 20, false);
        assert!(limit.is_probing());
        for rtt in [12, 30, 11] {
            limit.on_sample(start + ms(1000), ms(rtt), 1, false);
        }
        assert_eq!(limit.min_rtt(), Some(ms(12)));
        // and the limit is back where it was before the probe
        assert_eq!(limit.limit(), 20);
        // the first probe begins with the first sample
        for rtt in [9, 8, 40] {
            controller.on_sample(start, ms(rtt), 1, false);
        }
        assert_eq!(controller.min_rtt(), Some(ms(9)));
    }

    #[test]
    fn grows_when_latency_is_within_the_buffer() {
        let start = Instant::now();
        let mut limit = probed(20, start);
        // sample 10 ms: gradient clamp(12.5 / 10) = 1.25 → 25 + sqrt(25) = 30
        window(&mut limit, start + ms(20), ms(10), false);
        assert_eq!(limit.limit(), 30);
    }

    #[test]
    fn shrinks_when_requests_queue() {
        let start = Instant::now();
        let mut limit = probed(40, start);
        // sample 50 ms: gradient 12.5 / 50 = 0.25, clamped to 0.5 → 20 + sqrt(20) = 24.47
        window(&mut limit, start + ms(20), ms(50), false);
        assert_eq!(limit.limit(), 24);
        // sample 15 ms: gradient 12.5 / 15 → 20.39 + 4.52 = 24.9
        window(&mut limit, start + ms(140), ms(15), false);
        assert_eq!(limit.limit(), 24);
    }

    #[test]
    fn a_dropped_window_does_not_grow_and_drops_are_not_timed() {
        let start = Instant::now();
        let mut limit = probed(20, start);
        // fast, but something was dropped: no growth
        limit.on_sample(start + ms(20), ms(1), 1, true);
        window(&mut limit, start + ms(20), ms(10), false);
        assert_eq!(limit.limit(), 20);
        // drops are not timed: the window's median is the 10 ms left from before
        window(&mut limit, start + ms(140), ms(1), true);
        assert_eq!(limit.limit(), 20);
        // it still shrinks when requests queue
        limit.on_sample(start + ms(260), ms(1), 1, true);
        window(&mut limit, start + ms(260), ms(50), false);
        assert_eq!(limit.limit(), 13);
    }

    #[test]
    fn does_not_grow_while_the_service_is_not_the_bottleneck() {
        let start = Instant::now();
        let mut limit = probed(20, start);
        // fast answers, but never more than 9 of 20 in flight
        for i in 0..12 {
            limit.on_sample(start + ms(20 + 10 * i), ms(10), 9, false);
        }
        assert_eq!(limit.limit(), 20);
        // it still shrinks when those few requests queue
        for i in 0..12 {
            limit.on_sample(start + ms(140 + 10 * i), ms(50), 9, false);
        }
        assert_eq!(limit.limit(), 13);
    }

    #[test]
    fn stays_within_its_bounds() {
        let start = Instant::now();
        let mut limit = probed(20, start).max_limit(25);
        window(&mut limit, start + ms(20), ms(1), false);
        assert_eq!(limit.limit(), 25);
        let mut at = start + ms(140);
        for _ in 0..20 {
            window(&mut limit, at, ms(500), false);
            at += ms(120);
        }
        assert_eq!(limit.limit(), 3);
    }

    #[test]
    fn a_max_below_min_concurrency_is_refused_whatever_the_setter_order() {
        let expected = "degrade: GradientController's `max_limit` (2) is below its \
                        `min_concurrency` (3); raise max_limit or lower min_concurrency";
        let refused = refusal(|| {
            GradientController::new().max_limit(2).limit();
        });
        assert_eq!(refused, expected);
        let refused = refusal(|| {
            GradientController::new()
                .max_limit(2)
                .min_concurrency(3)
                .on_sample(Instant::now(), ms(10), 1, false);
        });
        assert_eq!(refused, expected);
        // A max below the default minimum is fine once the minimum is lowered too.
        let limit = GradientController::new().max_limit(2).min_concurrency(1);
        assert_eq!(limit.limit(), 1);
    }

    #[test]
    fn probes_again_after_the_interval() {
        let start = Instant::now();
        let mut limit = probed(20, start).probe_interval(Duration::from_secs(10));
        // The interval was set after the first probe planned the next one (60 s ± 15%).
        let mut at = start + ms(20);
        while !limit.is_probing() {
            limit.on_sample(at, ms(10), 1, false);
            at += ms(100);
            assert!(at < start + Duration::from_secs(70), "no probe within 69 s");
        }
        assert!(at > start + Duration::from_secs(51));
        assert_eq!(limit.limit(), 3);
        // The new baseline is measured: the service became slower.
        for _ in 0..3 {
            limit.on_sample(at, ms(30), 1, false);
        }
        assert_eq!(limit.min_rtt(), Some(ms(30)));
        // the next one follows the new interval: 10 s ± 15%
        let probe_at = at;
        while !limit.is_probing() {
            at += ms(100);
            limit.on_sample(at, ms(30), 1, false);
        }
        let gap = at.duration_since(probe_at);
        assert!(gap >= Duration::from_millis(8_400) && gap <= Duration::from_millis(11_600));
    }
}
