//! [`FilterService`]: the engine as a Tower service.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use tower_service::Service;

use crate::engine::Engine;
use crate::types::{FilterRequest, FilterResponse};

/// The filter as a `tower::Service<FilterRequest, Response = FilterResponse>`.
///
/// Always ready, never fails, answers immediately (matching is CPU work of microseconds per
/// kilobyte). Clones share the engine, so a reload is seen by every clone.
///
/// # Adding stages
///
/// Later stages are Tower layers over this service, all speaking `FilterRequest` →
/// `FilterResponse`: a verdict cache wraps it and keys entries on
/// `(engine.version(), content)` (take the engine from [`FilterService::engine`]); a remote
/// classifier wraps it, calls out only when the dictionary passed, raises the verdict with
/// [`FilterResponse::escalate`] and, when it is skipped (timeout, open breaker), calls
/// [`FilterResponse::mark_degraded`]. The `espresso-filter-stages` crate has both.
#[derive(Clone, Debug)]
pub struct FilterService {
    engine: Engine,
}

impl FilterService {
    /// A service over `engine`.
    pub fn new(engine: Engine) -> Self {
        FilterService { engine }
    }

    /// The engine (for reloads and for stages that key on its version).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Service<FilterRequest> for FilterService {
    type Response = FilterResponse;
    type Error = Infallible;
    type Future = Ready<Result<FilterResponse, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: FilterRequest) -> Self::Future {
        // The names were checked when the request was read (`Engine::check_lists`); a list
        // removed since then is no longer there to check against.
        // The content is given away: with nothing to mask it becomes the masked text as it is.
        let mut resp = match &req.lists {
            None => self.engine.check_owned(req.content),
            Some(lists) => self
                .engine
                .dictionary()
                .check_known_lists_owned(req.content, lists.as_slice()),
        };
        resp.request_id = req.request_id;
        ready(Ok(resp))
    }
}
