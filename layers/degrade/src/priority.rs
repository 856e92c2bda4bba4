//! Request priorities: which requests are shed first.

use http::{HeaderName, Request};

/// How much a request matters when the service is overloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// Admitted up to the whole concurrency limit, and served first from the queue.
    #[default]
    Critical,
    /// Admitted only below a fraction of the limit
    /// ([`DegradeLayer::sheddable_fraction`](crate::DegradeLayer::sheddable_fraction)), and served
    /// from the queue only after every waiting critical request.
    Sheddable,
}

impl Priority {
    /// `critical` or `sheddable`, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Sheddable => "sheddable",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::Critical => 0,
            Self::Sheddable => 1,
        }
    }
}

/// Decides a request's [`Priority`].
///
/// Implemented by [`PriorityHeader`] and by any closure `Fn(&Request<B>) -> Priority`:
///
/// ```
/// use espresso_degrade::{DegradeLayer, Priority, limit::Fixed};
/// use http::Request;
///
/// // background jobs are sheddable, everything else is critical
/// let layer = DegradeLayer::new(Fixed::new(64)).priority(|request: &Request<String>| {
///     if request.uri().path().starts_with("/batch/") {
///         Priority::Sheddable
///     } else {
///         Priority::Critical
///     }
/// });
/// # let _ = layer;
/// ```
pub trait Prioritize<B> {
    /// The priority of `request`.
    fn priority(&self, request: &Request<B>) -> Priority;
}

impl<F, B> Prioritize<B> for F
where
    F: Fn(&Request<B>) -> Priority,
{
    fn priority(&self, request: &Request<B>) -> Priority {
        self(request)
    }
}

/// Reads the priority from a request header: `critical` or `sheddable` (ASCII case ignored).
///
/// Requests without the header, or with another value, get the
/// [`unmarked`](PriorityHeader::unmarked) priority: [`Priority::Critical`] by default, so a layer
/// whose clients mark nothing treats every request alike, and clients opt their background traffic
/// into shedding with `x-priority: sheddable`. Turn it around with
/// `.unmarked(Priority::Sheddable)` when only requests marked `x-priority: critical` should get the
/// whole limit.
#[derive(Debug, Clone)]
pub struct PriorityHeader {
    name: HeaderName,
    unmarked: Priority,
}

impl PriorityHeader {
    /// Reads `name`.
    pub fn new(name: HeaderName) -> Self {
        Self {
            name,
            unmarked: Priority::Critical,
        }
    }

    /// Reads `x-priority`.
    pub fn x_priority() -> Self {
        Self::new(HeaderName::from_static("x-priority"))
    }

    /// The priority of requests that carry no recognised value.
    pub fn unmarked(mut self, priority: Priority) -> Self {
        self.unmarked = priority;
        self
    }
}

impl Default for PriorityHeader {
    fn default() -> Self {
        Self::x_priority()
    }
}

impl<B> Prioritize<B> for PriorityHeader {
    fn priority(&self, request: &Request<B>) -> Priority {
        let Some(value) = request.headers().get(&self.name) else {
            return self.unmarked;
        };
        let value = value.as_bytes().trim_ascii();
        if value.eq_ignore_ascii_case(b"critical") {
            Priority::Critical
        } else if value.eq_ignore_ascii_case(b"sheddable") {
            Priority::Sheddable
        } else {
            self.unmarked
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: Option<&str>) -> Request<()> {
        let mut builder = Request::builder();
        if let Some(v) = value {
            builder = builder.header("x-priority", v);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn header_values_are_read_case_insensitively() {
        let p = PriorityHeader::default();
        assert_eq!(p.priority(&with(Some("Sheddable"))), Priority::Sheddable);
        assert_eq!(p.priority(&with(Some(" critical "))), Priority::Critical);
        assert_eq!(p.priority(&with(None)), Priority::Critical);
        assert_eq!(p.priority(&with(Some("urgent!!"))), Priority::Critical);
    }

    #[test]
    fn unmarked_requests_can_default_to_sheddable() {
        let p = PriorityHeader::default().unmarked(Priority::Sheddable);
        assert_eq!(p.priority(&with(None)), Priority::Sheddable);
        assert_eq!(p.priority(&with(Some("critical"))), Priority::Critical);
    }
}
