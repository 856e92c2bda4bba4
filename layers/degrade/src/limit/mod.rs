//! Concurrency-limit algorithms: how many requests may run at once.
//!
//! A [`Limit`] sees one sample per finished request (when it started, how long it took, how many
//! requests were in flight when it started, whether it was dropped) and answers the new limit.
//! The algorithms follow Netflix's `concurrency-limits` and Envoy's adaptive concurrency filter:
//!
//! | algorithm | grows when | shrinks when | use it for |
//! | --- | --- | --- | --- |
//! | [`Fixed`] | never | never | a known capacity |
//! | [`Aimd`] | a sample succeeds while the limit is in use (+1) | a sample is dropped or slower than a timeout (× backoff) | a clear failure or timeout signal |
//! | [`Gradient2`] | the short-term RTT is close to the long-term RTT | the short-term RTT rises above the long-term one | latency-sensitive services without a known no-load RTT |
//! | [`GradientController`] | the median RTT is within a buffer of the probed min RTT | the median RTT rises above it | keeping admitted latency near the no-load RTT under sustained overload |
//! | [`Vegas`] | the estimated queue (from the no-load RTT) is small | the estimated queue is large, or a sample is dropped | services with a stable no-load RTT (probed again from time to time) |
//!
//! [`Windowed`] wraps any of them to feed it one aggregated sample per window instead of every
//! sample, which steadies algorithms that react to single outliers.
//!
//! Bring your own algorithm by implementing [`Limit`]; it is driven under a lock, one sample at a
//! time, so it needs no synchronisation of its own.

mod aimd;
mod fixed;
mod gradient2;
mod gradient_controller;
mod vegas;
mod windowed;

pub use aimd::Aimd;
pub use fixed::Fixed;
pub use gradient_controller::GradientController;
pub use gradient2::Gradient2;
pub use vegas::Vegas;
pub use windowed::Windowed;

use std::time::Duration;
use tokio::time::Instant;

/// A concurrency-limit algorithm.
///
/// ```
/// use espresso_degrade::limit::Limit;
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// /// Halves on a drop, otherwise keeps the limit.
/// struct HalveOnDrop(usize);
///
/// impl Limit for HalveOnDrop {
///     fn limit(&self) -> usize {
///         self.0
///     }
///     fn on_sample(&mut self, _start: Instant, _rtt: Duration, _inflight: usize, dropped: bool) -> usize {
///         if dropped {
///             self.0 = (self.0 / 2).max(1);
///         }
///         self.0
///     }
/// }
///
/// let mut limit = HalveOnDrop(8);
/// assert_eq!(limit.on_sample(Instant::now(), Duration::from_millis(3), 8, true), 4);
/// ```
pub trait Limit: Send + 'static {
    /// The current limit (at least 1 is used whatever this answers).
    fn limit(&self) -> usize;

    /// Records one finished request and answers the new limit.
    ///
    /// - `start`: when the request was admitted;
    /// - `rtt`: how long the inner service took to answer;
    /// - `inflight`: requests in flight when it was admitted, itself included;
    /// - `dropped`: the request failed in a way that signals overload (an error, 503, 429, 504,
    ///   gRPC `RESOURCE_EXHAUSTED`, `UNAVAILABLE` or `DEADLINE_EXCEEDED`).
    fn on_sample(&mut self, start: Instant, rtt: Duration, inflight: usize, dropped: bool)
    -> usize;

    /// Whether samples can change the limit (the default). A limit answering `false`, such as
    /// [`Fixed`], is never sampled, which spares the layer its clock reads per request.
    fn takes_samples(&self) -> bool {
        true
    }
}

impl<L: Limit + ?Sized> Limit for Box<L> {
    fn limit(&self) -> usize {
        (**self).limit()
    }

    fn on_sample(
        &mut self,
        start: Instant,
        rtt: Duration,
        inflight: usize,
        dropped: bool,
    ) -> usize {
        (**self).on_sample(start, rtt, inflight, dropped)
    }

    fn takes_samples(&self) -> bool {
        (**self).takes_samples()
    }
}

/// Refuses a `max_limit` of 0: a concurrency limit of 0 admits no request.
#[track_caller]
fn nonzero_max(algorithm: &str, max: usize) -> usize {
    assert!(
        max > 0,
        "degrade: {algorithm}'s `max_limit` is 0, which admits no request; set max_limit to at \
         least 1"
    );
    max
}

/// Refuses bounds that contradict each other, naming both setters. Checked where the limit is
/// used rather than in the setters, so that the order of the setters does not matter.
#[inline]
#[track_caller]
fn check_bounds(algorithm: &str, min_setter: &str, min: usize, max: usize) {
    if max < min {
        contradictory_bounds(algorithm, min_setter, min, max);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn contradictory_bounds(algorithm: &str, min_setter: &str, min: usize, max: usize) -> ! {
    panic!(
        "degrade: {algorithm}'s `max_limit` ({max}) is below its `{min_setter}` ({min}); raise \
         max_limit or lower {min_setter}"
    )
}

/// Refuses a NaN or infinite setting, which no clamp can turn into a meaningful one.
#[track_caller]
fn finite(setter: &str, value: f64) -> f64 {
    assert!(
        value.is_finite(),
        "degrade: `{setter}` must be a finite number, got {value}"
    );
    value
}

/// Clamps `value` into `[min, max]` and truncates it to a whole limit, as the reference does.
///
/// Truncating first and clamping the whole number gives the same limit (`min` and `max` are whole)
/// without converting the bounds to floats; a NaN gives `min`.
fn whole(value: f64, min: usize, max: usize) -> usize {
    (value as usize).clamp(min, max)
}

/// The message of the panic `f` raises, for the tests of refused settings.
#[cfg(test)]
fn refusal(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let payload = std::panic::catch_unwind(f).expect_err("the setting is refused");
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => (*payload.downcast::<&str>().unwrap()).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Aimd, Gradient2, GradientController, Vegas, refusal};

    #[test]
    fn every_algorithm_refuses_a_max_limit_of_zero_and_a_setting_that_is_no_number() {
        let cases: [(fn(), &str); 9] = [
            (
                || {
                    let _ = Aimd::new().max_limit(0);
                },
                "Aimd's `max_limit` is 0, which admits no request",
            ),
            (
                || {
                    let _ = Gradient2::new().max_limit(0);
                },
                "Gradient2's `max_limit` is 0, which admits no request",
            ),
            (
                || {
                    let _ = GradientController::new().max_limit(0);
                },
                "GradientController's `max_limit` is 0, which admits no request",
            ),
            (
                || {
                    let _ = Vegas::new().max_limit(0);
                },
                "Vegas's `max_limit` is 0, which admits no request",
            ),
            (
                || {
                    let _ = Aimd::new().backoff_ratio(f64::NAN);
                },
                "`backoff_ratio` must be a finite number, got NaN",
            ),
            (
                || {
                    let _ = Gradient2::new().smoothing(f64::NAN);
                },
                "`smoothing` must be a finite number, got NaN",
            ),
            (
                || {
                    let _ = Gradient2::new().tolerance(f64::INFINITY);
                },
                "`tolerance` must be a finite number, got inf",
            ),
            (
                || {
                    let _ = GradientController::new().buffer(f64::NAN);
                },
                "`buffer` must be a finite number, got NaN",
            ),
            (
                || {
                    let _ = Vegas::new().queue_bounds(3.0, f64::NAN);
                },
                "`queue_bounds(_, beta)` must be a finite number, got NaN",
            ),
        ];
        for (set, expected) in cases {
            let refused = refusal(set);
            assert!(refused.contains(expected), "{refused}");
        }
    }
}
