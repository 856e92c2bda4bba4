use std::fmt;

/// Why a request went to the fallback instead of the primary service.
///
/// A shed request's [`Shed`](crate::Shed) carries it (the error of `.return_error()`, the
/// extension a fallback service finds); metrics count by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DegradeReason {
    /// The concurrency limit was reached (for its priority) and the queue was full or disabled.
    Limit,
    /// The request waited in the queue longer than the queueing-delay rule allows.
    QueueDelay,
    /// The manual [`DegradeSwitch`](crate::DegradeSwitch) is on.
    Switch,
    /// The primary service was not ready to take a request.
    Saturated,
}

impl DegradeReason {
    /// A short, stable name (`limit`, `queue_delay`, `switch`, `saturated`), used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::QueueDelay => "queue_delay",
            Self::Switch => "switch",
            Self::Saturated => "saturated",
        }
    }
}

impl fmt::Display for DegradeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Limit => "concurrency limit reached",
            Self::QueueDelay => "queueing delay too long",
            Self::Switch => "degraded by the manual switch",
            Self::Saturated => "service not ready",
        })
    }
}
