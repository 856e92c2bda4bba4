//! What the service answers when the breaker rejects a call.

use crate::{CallError, CircuitOpen};
use espresso_common::{RejectBody, Rejection, grpc::Code};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use std::{
    fmt,
    future::{Ready, ready},
};
use tower::{Service, ServiceExt, util::Oneshot};

/// What a [`CircuitBreakerService`](crate::CircuitBreakerService) does with a rejected request,
/// and how it shapes the inner service's results to match.
///
/// Three answers come with the crate: [`FailFast`] (a typed error), [`Respond`] (an HTTP 503 or
/// gRPC `UNAVAILABLE` response) and [`Fallback`] (another service answers).
pub trait OnOpen<Req, Res, E>: MapResult<Res, E> {
    /// The future answering a rejected request.
    type Future: Future<Output = Result<Self::Response, Self::Error>>;

    /// Answers `request`, which the breaker rejected.
    fn rejected(&mut self, request: Req, open: CircuitOpen) -> Self::Future;
}

/// How an [`OnOpen`] answer shapes the inner service's results, so that rejected and called
/// requests have the same types.
pub trait MapResult<Res, E> {
    /// The service's response type.
    type Response;
    /// The service's error type.
    type Error;

    /// Shapes the inner service's response.
    fn response(response: Res) -> Self::Response;

    /// Shapes the inner service's error.
    fn error(error: E) -> Self::Error;
}

/// Fails a rejected call at once with [`CallError::Open`]; the inner service's errors become
/// [`CallError::Inner`]. The mode for clients that handle errors themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailFast;

impl<Req, Res, E> OnOpen<Req, Res, E> for FailFast {
    type Future = Ready<Result<Res, CallError<E>>>;

    fn rejected(&mut self, _: Req, open: CircuitOpen) -> Self::Future {
        ready(Err(CallError::Open(open)))
    }
}

impl<Res, E> MapResult<Res, E> for FailFast {
    type Response = Res;
    type Error = CallError<E>;

    fn response(response: Res) -> Res {
        response
    }

    fn error(error: E) -> CallError<E> {
        CallError::Inner(error)
    }
}

/// Answers a rejected HTTP request with a [`Rejection`]: by default HTTP 503 with a JSON error
/// `circuit_open`, or for gRPC requests a trailers-only `UNAVAILABLE`; `Retry-After` carries the
/// rest of the wait when the breaker knows it, and `x-circuit-breaker` the breaker's name.
///
/// Used around a tonic client, the client sees an ordinary `Status` with code `UNAVAILABLE`.
#[derive(Debug, Clone)]
pub struct Respond {
    rejection: Rejection,
}

impl Default for Respond {
    fn default() -> Self {
        Self::new(
            Rejection::new(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable)
                .code("circuit_open")
                .message("circuit breaker is open"),
        )
    }
}

impl Respond {
    /// Answers with `rejection` (its `Retry-After` is replaced by the breaker's own).
    pub fn new(rejection: Rejection) -> Self {
        Self { rejection }
    }
}

static BREAKER_HEADER: HeaderName = HeaderName::from_static("x-circuit-breaker");

impl<ReqBody, B, E> OnOpen<Request<ReqBody>, Response<B>, E> for Respond {
    type Future = Ready<Result<Response<RejectBody<B>>, E>>;

    fn rejected(&mut self, request: Request<ReqBody>, open: CircuitOpen) -> Self::Future {
        let mut rejection = self.rejection.clone();
        if let Some(after) = open.retry_after() {
            rejection = rejection.retry_after(after);
        }
        if let Ok(name) = HeaderValue::from_str(open.name()) {
            rejection = rejection.header(BREAKER_HEADER.clone(), name);
        }
        ready(Ok(rejection.to_response(&request)))
    }
}

impl<B, E> MapResult<Response<B>, E> for Respond {
    type Response = Response<RejectBody<B>>;
    type Error = E;

    fn response(response: Response<B>) -> Self::Response {
        response.map(RejectBody::inner)
    }

    fn error(error: E) -> E {
        error
    }
}

/// Sends a rejected request to another service, which answers in the inner service's place
/// (a cached answer, a degraded result, a secondary backend). The fallback is cloned per request
/// and driven to readiness with [`ServiceExt::oneshot`].
#[derive(Clone)]
pub struct Fallback<F> {
    service: F,
}

impl<F> Fallback<F> {
    /// Falls back to `service`.
    pub fn new(service: F) -> Self {
        Self { service }
    }
}

impl<F> fmt::Debug for Fallback<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback").finish_non_exhaustive()
    }
}

impl<Req, Res, E, F> OnOpen<Req, Res, E> for Fallback<F>
where
    F: Service<Req, Response = Res, Error = E> + Clone,
{
    type Future = Oneshot<F, Req>;

    fn rejected(&mut self, request: Req, _: CircuitOpen) -> Self::Future {
        self.service.clone().oneshot(request)
    }
}

impl<Res, E, F> MapResult<Res, E> for Fallback<F> {
    type Response = Res;
    type Error = E;

    fn response(response: Res) -> Res {
        response
    }

    fn error(error: E) -> E {
        error
    }
}
