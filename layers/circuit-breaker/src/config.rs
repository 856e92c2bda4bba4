//! How a breaker decides: the sliding window, the thresholds, the waits.

#[cfg(feature = "metrics")]
use crate::CircuitBreakerMetrics;
use crate::{Event, wait::WaitInterval};
use espresso_common::classify::Outcome;
use std::{fmt, sync::Arc, time::Duration};

/// The largest count-based window, and the most trial calls in HALF_OPEN.
// The count window packs its totals in 21-bit fields, and a call is added before the one it
// displaces is taken away: half of a field is headroom for that many records at once.
pub const MAX_WINDOW_SIZE: u32 = 1 << 20;

/// Which recent calls the breaker looks at when it decides to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `size` recorded calls.
    CountBased {
        /// How many calls the window holds.
        size: u32,
    },
    /// The calls recorded in the last `duration`, aggregated in `buckets` buckets of equal length
    /// (a bucket leaves the window as a whole when it ages out).
    TimeBased {
        /// How far back the window reaches.
        duration: Duration,
        /// How many buckets the duration is cut into.
        buckets: u32,
    },
    /// No window: the breaker opens after `threshold` failures (or slow calls) in a row; a
    /// successful call resets the streak. Rate thresholds and the minimum number of calls do not
    /// apply.
    ConsecutiveFailures {
        /// How many failures in a row open the breaker.
        threshold: u32,
    },
}

impl SlidingWindow {
    /// The last `size` calls.
    pub fn count(size: u32) -> Self {
        Self::CountBased { size }
    }

    /// The calls of the last `duration`, in one bucket per second (at least one bucket).
    pub fn time(duration: Duration) -> Self {
        let buckets = u32::try_from(duration.as_secs())
            .unwrap_or(u32::MAX)
            .clamp(1, 3600);
        Self::TimeBased { duration, buckets }
    }

    /// The calls of the last `duration`, in `buckets` buckets.
    pub fn time_buckets(duration: Duration, buckets: u32) -> Self {
        Self::TimeBased { duration, buckets }
    }

    /// Opens after `threshold` consecutive failures.
    pub fn consecutive_failures(threshold: u32) -> Self {
        Self::ConsecutiveFailures { threshold }
    }
}

/// A configuration the builder refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub(crate) String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid circuit breaker configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// A breaker's settings, fixed when it is built (see [`CircuitBreakerBuilder`]).
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) name: Arc<str>,
    pub(crate) window: SlidingWindow,
    pub(crate) failure_rate_threshold: f64,
    pub(crate) slow_call_rate_threshold: f64,
    pub(crate) slow_call_duration_threshold: Duration,
    pub(crate) minimum_number_of_calls: u32,
    pub(crate) permitted_calls_in_half_open: u32,
    pub(crate) max_wait_in_half_open: Option<Duration>,
    pub(crate) wait_in_open: Arc<dyn WaitInterval>,
    pub(crate) automatic_transition: bool,
    pub(crate) dropped_call_outcome: Outcome,
    pub(crate) listener: Option<Listener>,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<CircuitBreakerMetrics>,
}

impl Config {
    /// The minimum number of calls before rates count: a count window never waits for more
    /// calls than it can hold.
    pub(crate) fn effective_minimum_calls(&self) -> u32 {
        match self.window {
            SlidingWindow::CountBased { size } => self.minimum_number_of_calls.min(size),
            _ => self.minimum_number_of_calls,
        }
        .max(1)
    }
}

/// Builds a [`CircuitBreaker`](crate::CircuitBreaker); start with
/// [`CircuitBreaker::builder`](crate::CircuitBreaker::builder).
///
/// The defaults are resilience4j's: a count window of 100 calls, at least 100 calls before
/// deciding, opens at a 50 % failure rate or a 100 % slow-call rate (calls over 60 s), waits 60 s
/// when open, lets 10 probe calls through when half-open and waits for them however long they
/// take. Unlike resilience4j, the OPEN → HALF_OPEN transition is automatic by default.
#[derive(Clone)]
pub struct CircuitBreakerBuilder {
    pub(crate) config: Config,
}

impl fmt::Debug for CircuitBreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerBuilder")
            .field("name", &self.config.name)
            .field("window", &self.config.window)
            .field(
                "failure_rate_threshold",
                &self.config.failure_rate_threshold,
            )
            .field(
                "slow_call_rate_threshold",
                &self.config.slow_call_rate_threshold,
            )
            .field(
                "slow_call_duration_threshold",
                &self.config.slow_call_duration_threshold,
            )
            .field(
                "minimum_number_of_calls",
                &self.config.minimum_number_of_calls,
            )
            .field(
                "permitted_calls_in_half_open",
                &self.config.permitted_calls_in_half_open,
            )
            .field("max_wait_in_half_open", &self.config.max_wait_in_half_open)
            .field("automatic_transition", &self.config.automatic_transition)
            .field("dropped_call_outcome", &self.config.dropped_call_outcome)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerBuilder {
    pub(crate) fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            config: Config {
                name: name.into(),
                window: SlidingWindow::CountBased { size: 100 },
                failure_rate_threshold: 50.0,
                slow_call_rate_threshold: 100.0,
                slow_call_duration_threshold: Duration::from_secs(60),
                minimum_number_of_calls: 100,
                permitted_calls_in_half_open: 10,
                max_wait_in_half_open: None,
                wait_in_open: Arc::new(crate::Backoff::fixed(Duration::from_secs(60))),
                automatic_transition: true,
                dropped_call_outcome: Outcome::Ignored,
                listener: None,
                #[cfg(feature = "metrics")]
                metrics: None,
            },
        }
    }

    /// The breaker's name, used in events, traces, errors and metric labels.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.config.name = name.into();
        self
    }

    /// Which calls the breaker looks at (default: the last 100).
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.config.window = window;
        self
    }

    /// Opens when at least this percentage of the window's calls failed (default 50; 0 < p ≤ 100).
    ///
    /// A percent, as resilience4j's, not a ratio as tower-resilience's: `50.0` is half the
    /// calls. [`build`](Self::build) logs a WARN for a value under 1.
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }

    /// Opens when at least this percentage of the window's calls were slow (default 100; a
    /// percent, as [`failure_rate_threshold`](Self::failure_rate_threshold)).
    pub fn slow_call_rate_threshold(mut self, percent: f64) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self
    }

    /// A call that takes longer than this is slow (default 60 s; above zero). In the layer a
    /// call's time runs to its response head: a gRPC stream, classified when its body ends, is
    /// timed to its head too, since how long the caller reads is not the callee's slowness.
    pub fn slow_call_duration_threshold(mut self, threshold: Duration) -> Self {
        self.config.slow_call_duration_threshold = threshold;
        self
    }

    /// No rate is computed before the window holds this many calls (default 100). The rule is
    /// checked on every call, so a breaker can open as soon as the minimum is reached, before a
    /// window fills. A count window never asks for more calls than its size.
    pub fn minimum_number_of_calls(mut self, calls: u32) -> Self {
        self.config.minimum_number_of_calls = calls;
        self
    }

    /// How many probe calls HALF_OPEN lets through (default 10). Their outcome, once all have
    /// been recorded, closes the breaker or opens it again.
    pub fn permitted_calls_in_half_open(mut self, calls: u32) -> Self {
        self.config.permitted_calls_in_half_open = calls;
        self
    }

    /// The longest the breaker stays HALF_OPEN: when the probes have not all been recorded by
    /// then, it opens again (as resilience4j does). Default: no limit; zero is refused (where
    /// resilience4j reads 0 as no limit).
    pub fn max_wait_in_half_open(mut self, wait: Duration) -> Self {
        self.config.max_wait_in_half_open = Some(wait);
        self
    }

    /// A fixed wait in OPEN before HALF_OPEN (default 60 s).
    pub fn wait_in_open(mut self, wait: Duration) -> Self {
        self.config.wait_in_open = Arc::new(crate::Backoff::fixed(wait));
        self
    }

    /// The wait in OPEN as a function of how many times in a row the breaker opened (1 the first
    /// time; a failed half-open round adds one, closing resets it): a [`Backoff`](crate::Backoff)
    /// or any `Fn(u32) -> Duration`.
    pub fn wait_interval(mut self, interval: impl WaitInterval) -> Self {
        self.config.wait_in_open = Arc::new(interval);
        self
    }

    /// Whether OPEN becomes HALF_OPEN by itself when the wait is over (default `true`). When
    /// `false`, [`state`](crate::CircuitBreaker::state) keeps saying OPEN until a call arrives
    /// (resilience4j's default), and that call moves it: a
    /// [`max_wait_in_half_open`](Self::max_wait_in_half_open) counts from it. Calls are let
    /// through after the wait either way.
    pub fn automatic_transition_from_open_to_half_open(mut self, enabled: bool) -> Self {
        self.config.automatic_transition = enabled;
        self
    }

    /// How a [`Permit`](crate::Permit) dropped without a recorded outcome counts (default
    /// [`Outcome::Ignored`]: a cancelled call says nothing about the callee, and its half-open
    /// slot is given back). Choose [`Outcome::Failure`] when an outer timeout cancels calls.
    pub fn dropped_call_outcome(mut self, outcome: Outcome) -> Self {
        self.config.dropped_call_outcome = outcome;
        self
    }

    /// Calls `listener` for every [`Event`] (state transitions, rejected calls, resets).
    /// It runs on the caller's thread, outside the breaker's locks; keep it short.
    pub fn on_event(mut self, listener: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.config.listener = Some(Arc::new(listener));
        self
    }

    /// Reports into these Prometheus metrics (see [`CircuitBreakerMetrics`]).
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: CircuitBreakerMetrics) -> Self {
        self.config.metrics = Some(metrics);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.config;
        let err = |m: String| Err(ConfigError(m));
        let rate_ok = |r: f64| r > 0.0 && r <= 100.0;
        if !rate_ok(c.failure_rate_threshold) {
            return err(format!(
                "failure_rate_threshold {} is not in (0, 100]",
                c.failure_rate_threshold
            ));
        }
        if !rate_ok(c.slow_call_rate_threshold) {
            return err(format!(
                "slow_call_rate_threshold {} is not in (0, 100]",
                c.slow_call_rate_threshold
            ));
        }
        if c.name.is_empty() || http::HeaderValue::from_str(&c.name).is_err() {
            return err(format!(
                "the name {:?} is empty or not a valid header value (it is sent in \
                 `x-circuit-breaker`): use visible ASCII",
                c.name
            ));
        }
        if c.slow_call_duration_threshold.is_zero() {
            return err(
                "slow_call_duration_threshold must be above zero (every call would be \
                        slow)"
                    .into(),
            );
        }
        if c.max_wait_in_half_open.is_some_and(|w| w.is_zero()) {
            return err(
                "max_wait_in_half_open must be above zero (the probes could never be \
                        recorded); leave it unset for no limit"
                    .into(),
            );
        }
        if c.minimum_number_of_calls == 0 {
            return err("minimum_number_of_calls must be at least 1".into());
        }
        if c.permitted_calls_in_half_open == 0 {
            return err("permitted_calls_in_half_open must be at least 1".into());
        }
        if c.permitted_calls_in_half_open > MAX_WINDOW_SIZE {
            return err(format!(
                "permitted_calls_in_half_open is over {MAX_WINDOW_SIZE}"
            ));
        }
        match c.window {
            SlidingWindow::CountBased { size } if size == 0 || size > MAX_WINDOW_SIZE => err(
                format!("count window size {size} is not in [1, {MAX_WINDOW_SIZE}]"),
            ),
            SlidingWindow::TimeBased { duration, buckets }
                if duration.is_zero() || buckets == 0 =>
            {
                err("a time window needs a non-zero duration and at least one bucket".into())
            }
            SlidingWindow::TimeBased { duration, buckets }
                if duration.as_nanos() < u128::from(buckets) =>
            {
                err(format!(
                    "a time window of {duration:?} cannot hold {buckets} buckets"
                ))
            }
            SlidingWindow::ConsecutiveFailures { threshold: 0 } => {
                err("consecutive failure threshold must be at least 1".into())
            }
            _ => Ok(()),
        }
    }

    /// Builds the breaker, CLOSED. Refuses thresholds out of range, empty windows, zero
    /// durations, a name that cannot be a header value, and a name that a live breaker already
    /// reports under into the same [`metrics`](Self::metrics) (one `name` label, two breakers:
    /// the state gauge could show only one of them).
    pub fn build(self) -> Result<crate::CircuitBreaker, ConfigError> {
        self.validate()?;
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.config.metrics
            && metrics.reports(&self.config.name)
        {
            return Err(ConfigError(format!(
                "a live breaker named `{}` already reports into these metrics: give each \
                 breaker its own name",
                self.config.name
            )));
        }
        self.warn_on_ratios();
        Ok(crate::CircuitBreaker::from_config(self.config))
    }

    /// Rates are percents (resilience4j's), where tower-resilience takes ratios: `0.5` here is
    /// half a percent, a threshold nobody means with a window of calls.
    fn warn_on_ratios(&self) {
        let c = &self.config;
        for (setter, percent) in [
            ("failure_rate_threshold", c.failure_rate_threshold),
            ("slow_call_rate_threshold", c.slow_call_rate_threshold),
        ] {
            if percent < 1.0 {
                tracing::warn!(
                    breaker = %c.name,
                    "{setter}({percent}) is a percent: the breaker opens at {percent} % of calls; \
                     for a ratio of {percent} write {setter}({})",
                    percent * 100.0
                );
            }
        }
    }
}
