//! [`RateLimited`]: the refusal of a request over its quota.

use espresso_common::{Rejection, refusal::Refusal};
use http::HeaderMap;
use std::{fmt, sync::Arc, time::Duration};

/// A request refused by a rate limiter: the error of
/// [`RateLimitLayer::return_error`](crate::RateLimitLayer::return_error) (boxed in a
/// `BoxError`), and what a [`fallback`](crate::RateLimitLayer::fallback) service finds in the
/// request's extensions.
///
/// ```
/// use espresso_common::BoxError;
/// use espresso_rate_limit::RateLimited;
///
/// fn status_of(error: &BoxError) -> u16 {
///     match error.downcast_ref::<RateLimited>() {
///         Some(limited) => {
///             let _retry = limited.retry_after();
///             429
///         }
///         None => 500,
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RateLimited {
    retry_after: Duration,
    limiter: Arc<str>,
    headers: HeaderMap,
}

impl RateLimited {
    pub(crate) fn new(retry_after: Duration, limiter: Arc<str>, headers: HeaderMap) -> Self {
        Self {
            retry_after,
            limiter,
            headers,
        }
    }

    /// When the request may be retried.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// The name of the limiter that refused it.
    pub fn limiter(&self) -> &str {
        &self.limiter
    }

    /// The `RateLimit` and `RateLimit-Policy` headers describing the refusal (empty when the
    /// layer sends no such headers).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The refusal as a [`Rejection`] (429 / `RESOURCE_EXHAUSTED`) built on `template`, with
    /// `Retry-After` and the rate-limit headers.
    pub fn to_rejection(&self, template: &Rejection) -> Rejection {
        let mut rejection = template.clone().retry_after(self.retry_after);
        for (name, value) in &self.headers {
            rejection = rejection.header(name.clone(), value.clone());
        }
        rejection
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limited by `{}`; retry after {:?}",
            self.limiter, self.retry_after
        )
    }
}

impl std::error::Error for RateLimited {}

impl Refusal for RateLimited {
    fn rejection(&self, template: &Rejection) -> Rejection {
        self.to_rejection(template)
    }
}
