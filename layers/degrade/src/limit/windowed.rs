use super::Limit;
use std::time::Duration;
use tokio::time::Instant;

/// Feeds an inner [`Limit`] one aggregated sample per window, after Netflix's `WindowedLimit`.
///
/// Samples are collected until the window is over and holds more than
/// [`min_samples`](Windowed::min_samples) samples; the inner limit then sees the window's average
/// RTT, its highest in-flight count and whether any sample was dropped. A window lasts twice the
/// last average RTT, kept within `[min_window, max_window]` (both 1 s by default; a `max_window`
/// left unset follows a longer `min_window`); samples faster than
/// [`min_rtt`](Windowed::min_rtt) (100 µs by default) are ignored as noise.
///
/// # Panics
///
/// When first used ([`limit`](Limit::limit), [`on_sample`](Limit::on_sample), or
/// [`DegradeLayer::new`](crate::DegradeLayer::new)), if a `max_window` set explicitly is shorter
/// than `min_window`, in whatever order they were set, or if the wrapped limit refuses its own
/// settings.
///
/// ```
/// use espresso_degrade::limit::{Aimd, Limit, Windowed};
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let mut limit = Windowed::new(Aimd::new().initial_limit(10).min_limit(1))
///     .min_window(Duration::from_millis(100))
///     .max_window(Duration::from_millis(100))
///     .min_samples(2);
/// let start = Instant::now();
/// let ms = Duration::from_millis;
/// // three samples within the first window: nothing reaches the inner limit yet
/// for i in 0..3 {
///     assert_eq!(limit.on_sample(start + ms(i), ms(5), 10, false), 10);
/// }
/// // the first sample past the window closes it: one +1 for the whole window
/// assert_eq!(limit.on_sample(start + ms(100), ms(5), 10, false), 11);
/// ```
#[derive(Debug, Clone)]
pub struct Windowed<L> {
    inner: L,
    min_window: Duration,
    // `None`: not set, so it follows `min_window` above the 1 s default.
    max_window: Option<Duration>,
    min_samples: usize,
    min_rtt: Duration,
    window_end: Option<Instant>,
    count: usize,
    rtt_sum: Duration,
    max_inflight: usize,
    dropped: bool,
}

impl<L: Limit> Windowed<L> {
    /// Wraps `inner` with the reference's defaults (1 s windows, more than 10 samples each).
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            min_window: Duration::from_secs(1),
            max_window: None,
            min_samples: 10,
            min_rtt: Duration::from_micros(100),
            window_end: None,
            count: 0,
            rtt_sum: Duration::ZERO,
            max_inflight: 0,
            dropped: false,
        }
    }

    /// The shortest a window may be.
    pub fn min_window(mut self, window: Duration) -> Self {
        self.min_window = window;
        self
    }

    /// The longest a window may be; at least `min_window` (1 s, or `min_window` if that is
    /// longer, when not set).
    pub fn max_window(mut self, window: Duration) -> Self {
        self.max_window = Some(window);
        self
    }

    /// A window closes only once it holds more than this many samples.
    pub fn min_samples(mut self, samples: usize) -> Self {
        self.min_samples = samples;
        self
    }

    /// Samples faster than this are ignored.
    pub fn min_rtt(mut self, rtt: Duration) -> Self {
        self.min_rtt = rtt;
        self
    }

    /// The wrapped limit.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    /// The longest a window may be, refusing one shorter than `min_window`. Checked where the
    /// limit is used rather than in the setters, so that their order does not matter.
    #[track_caller]
    fn max_window_checked(&self) -> Duration {
        match self.max_window {
            None => self.min_window.max(Duration::from_secs(1)),
            Some(max) if max >= self.min_window => max,
            Some(max) => panic!(
                "degrade: Windowed's `max_window` ({max:?}) is shorter than its `min_window` \
                 ({:?}); raise max_window or lower min_window",
                self.min_window
            ),
        }
    }
}

impl<L: Limit> Limit for Windowed<L> {
    fn limit(&self) -> usize {
        self.max_window_checked();
        self.inner.limit()
    }

    fn takes_samples(&self) -> bool {
        self.inner.takes_samples()
    }

    fn on_sample(
        &mut self,
        start: Instant,
        rtt: Duration,
        inflight: usize,
        dropped: bool,
    ) -> usize {
        let max_window = self.max_window_checked();
        let end = start + rtt;
        let window_end = *self.window_end.get_or_insert(end + self.min_window);
        if rtt >= self.min_rtt || dropped {
            self.count += 1;
            self.rtt_sum += rtt;
            self.max_inflight = self.max_inflight.max(inflight);
            self.dropped |= dropped;
        }
        if end < window_end || self.count <= self.min_samples {
            return self.inner.limit();
        }
        let average = self.rtt_sum / self.count as u32;
        let limit = self
            .inner
            .on_sample(start, average, self.max_inflight, self.dropped);
        self.window_end = Some(end + (average * 2).clamp(self.min_window, max_window));
        self.count = 0;
        self.rtt_sum = Duration::ZERO;
        self.max_inflight = 0;
        self.dropped = false;
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::{Aimd, refusal};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn windowed() -> Windowed<Aimd> {
        Windowed::new(Aimd::new().initial_limit(10).min_limit(1).timeout(ms(20)))
            .min_window(ms(100))
            .max_window(ms(100))
            .min_samples(2)
    }

    #[test]
    fn a_window_takes_samples_when_what_it_wraps_does() {
        use crate::limit::Fixed;
        assert!(windowed().takes_samples());
        assert!(!Windowed::new(Fixed::new(8)).takes_samples());
        let boxed: Box<dyn Limit> = Box::new(Windowed::new(Fixed::new(8)));
        assert!(!boxed.takes_samples());
    }

    #[test]
    fn a_window_needs_enough_samples() {
        let mut limit = windowed();
        let t0 = Instant::now();
        limit.on_sample(t0, ms(5), 10, false);
        assert_eq!(limit.on_sample(t0 + ms(200), ms(5), 10, false), 10);
        assert_eq!(limit.on_sample(t0 + ms(201), ms(5), 10, false), 11);
    }

    #[test]
    fn the_window_average_and_any_drop_reach_the_inner_limit() {
        let mut limit = windowed();
        let t0 = Instant::now();
        // average 15 ms: under the 20 ms timeout, so +1 even with one slow sample
        limit.on_sample(t0, ms(5), 10, false);
        limit.on_sample(t0, ms(5), 10, false);
        assert_eq!(limit.on_sample(t0 + ms(100), ms(35), 10, false), 11);
        // one drop in the next window backs the whole window off once
        limit.on_sample(t0 + ms(200), ms(5), 10, true);
        limit.on_sample(t0 + ms(200), ms(5), 10, false);
        assert_eq!(limit.on_sample(t0 + ms(300), ms(5), 10, false), 9);
    }

    #[test]
    fn a_max_window_below_the_min_window_is_refused_whatever_the_setter_order() {
        let expected = "degrade: Windowed's `max_window` (200ms) is shorter than its \
                        `min_window` (500ms); raise max_window or lower min_window";
        let refused = refusal(|| {
            windowed().max_window(ms(200)).min_window(ms(500)).limit();
        });
        assert_eq!(refused, expected);
        let refused = refusal(|| {
            windowed()
                .min_window(ms(500))
                .max_window(ms(200))
                .on_sample(Instant::now(), ms(5), 10, false);
        });
        assert_eq!(refused, expected);
        // An unset max follows a longer min; a max below the default min is fine with a lower min.
        let limit = Windowed::new(Aimd::new()).min_window(Duration::from_secs(3));
        assert_eq!(limit.max_window_checked(), Duration::from_secs(3));
        let limit = Windowed::new(Aimd::new())
            .max_window(ms(200))
            .min_window(ms(100));
        assert_eq!(limit.max_window_checked(), ms(200));
    }

    #[test]
    fn the_wrapped_limit_refuses_its_bounds_through_the_window() {
        let refused = refusal(|| {
            Windowed::new(Aimd::new().min_limit(50).max_limit(10)).limit();
        });
        assert!(refused.contains("Aimd's `max_limit` (10)"), "{refused}");
    }

    #[test]
    fn noise_below_min_rtt_is_ignored() {
        let mut limit = windowed().min_rtt(ms(1));
        let t0 = Instant::now();
        for i in 0..10 {
            limit.on_sample(t0 + ms(i * 50), Duration::from_micros(10), 10, false);
        }
        assert_eq!(limit.limit(), 10);
    }
}
