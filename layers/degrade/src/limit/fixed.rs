use super::Limit;
use std::time::Duration;
use tokio::time::Instant;

/// A limit that never changes: for a service whose capacity is known.
///
/// ```
/// use espresso_degrade::limit::{Fixed, Limit};
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let mut limit = Fixed::new(64);
/// assert_eq!(limit.on_sample(Instant::now(), Duration::from_secs(9), 64, true), 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    limit: usize,
}

impl Fixed {
    /// A limit of `limit` concurrent requests (at least 1).
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
        }
    }
}

impl Limit for Fixed {
    fn limit(&self) -> usize {
        self.limit
    }

    fn on_sample(&mut self, _: Instant, _: Duration, _: usize, _: bool) -> usize {
        self.limit
    }

    fn takes_samples(&self) -> bool {
        false
    }
}
