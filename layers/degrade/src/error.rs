//! What the layer knows about a shed request.

use crate::DegradeReason;
use espresso_common::{Rejection, refusal::Refusal};
use std::fmt;

/// A request the layer did not give the primary service: the error of
/// [`DegradeLayer::return_error`](crate::DegradeLayer::return_error) (boxed), and the extension a
/// [`fallback`](crate::DegradeLayer::fallback) service finds on the request.
///
/// ```
/// use espresso_degrade::{DegradeLayer, DegradeReason, Shed, limit::Fixed};
/// use http::{Request, Response};
/// use std::convert::Infallible;
/// use tower::service_fn;
///
/// let cheap = service_fn(|request: Request<String>| async move {
///     let why = request.extensions().get::<Shed>().map(Shed::reason);
///     assert!(why.is_some()); // only shed requests come here
///     Ok::<_, Infallible>(Response::new(format!("degraded: {why:?}")))
/// });
/// let layer = DegradeLayer::new(Fixed::new(100)).fallback(cheap);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shed {
    reason: DegradeReason,
}

impl Shed {
    pub(crate) fn new(reason: DegradeReason) -> Self {
        Self { reason }
    }

    /// Why the request was shed.
    pub fn reason(&self) -> DegradeReason {
        self.reason
    }
}

impl fmt::Display for Shed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request shed: {}", self.reason)
    }
}

impl std::error::Error for Shed {}

/// A shed request is answered with the layer's rejection as it is (its `Retry-After` is fixed).
impl Refusal for Shed {
    fn rejection(&self, template: &Rejection) -> Rejection {
        template.clone()
    }
}
