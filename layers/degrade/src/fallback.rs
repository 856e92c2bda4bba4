//! What answers the requests the primary service does not get.

use crate::{DegradeReason, Shed};
use espresso_common::{BoxError, RejectBody, Rejection, grpc::Code};
use http::{Request, Response, StatusCode};
use std::{
    future::{Ready, ready},
    task::{Context, Poll},
    time::Duration,
};
use tower_service::Service;

/// What answers a request sent to the fallback, and how the primary's answers are typed.
///
/// Three are provided, chosen with the layer's builder:
///
/// - [`Reject`] (the default): a fast `503 Service Unavailable` with `Retry-After`, or a gRPC
///   `RESOURCE_EXHAUSTED`, built by [`Rejection`]; responses become
///   `Response<RejectBody<B>>`.
/// - [`FallbackService`] ([`DegradeLayer::fallback`](crate::DegradeLayer::fallback)): any service
///   with the primary's request, response and error types, e.g. a cheaper local-only answer.
/// - [`ShedError`] ([`DegradeLayer::error`](crate::DegradeLayer::error)): an `Err` carrying
///   [`Shed`], for stacks that handle errors themselves.
///
/// `ReqB` is the request body; `ResB` and `E` are the primary's response body and error.
pub trait Fallback<ReqB, ResB, E> {
    /// The response type of the layer's service.
    type Response;
    /// The error type of the layer's service.
    type Error;
    /// The fallback's answer.
    type Future: Future<Output = Result<Self::Response, Self::Error>>;

    /// Whether the fallback can take a request now.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;

    /// Answers `request`, which did not go to the primary because of `reason`.
    fn call(&mut self, request: Request<ReqB>, reason: DegradeReason) -> Self::Future;

    /// Turns a primary response into the layer's response type.
    fn primary_response(response: Response<ResB>) -> Self::Response;

    /// Turns a primary error into the layer's error type.
    fn primary_error(error: E) -> Self::Error;
}

// === impl Reject ===

/// Answers with a [`Rejection`]: by default HTTP `503` with `Retry-After: 1` and the JSON error
/// `{"error": {"code": "overloaded", ...}}`, or gRPC `RESOURCE_EXHAUSTED`.
#[derive(Debug, Clone)]
pub struct Reject {
    rejection: Rejection,
}

impl Reject {
    /// Answers with `rejection`.
    pub fn new(rejection: Rejection) -> Self {
        Self { rejection }
    }

    /// The rejection answered.
    pub fn rejection(&self) -> &Rejection {
        &self.rejection
    }
}

impl Default for Reject {
    fn default() -> Self {
        Self::new(
            Rejection::new(StatusCode::SERVICE_UNAVAILABLE, Code::ResourceExhausted)
                .code("overloaded")
                .message("the server is overloaded, try again later")
                .retry_after(Duration::from_secs(1)),
        )
    }
}

impl<ReqB, ResB, E> Fallback<ReqB, ResB, E> for Reject {
    type Response = Response<RejectBody<ResB>>;
    type Error = E;
    type Future = Ready<Result<Self::Response, E>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqB>, _: DegradeReason) -> Self::Future {
        ready(Ok(self.rejection.to_response(&request)))
    }

    fn primary_response(response: Response<ResB>) -> Self::Response {
        response.map(RejectBody::inner)
    }

    fn primary_error(error: E) -> E {
        error
    }
}

// === impl ShedError ===

/// Answers `Err(`[`Shed`]`)`, widened to [`BoxError`] with the primary's errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShedError;

impl<ReqB, ResB, E: Into<BoxError>> Fallback<ReqB, ResB, E> for ShedError {
    type Response = Response<ResB>;
    type Error = BoxError;
    type Future = Ready<Result<Response<ResB>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<ReqB>, reason: DegradeReason) -> Self::Future {
        ready(Err(Shed::new(reason).into()))
    }

    fn primary_response(response: Response<ResB>) -> Response<ResB> {
        response
    }

    fn primary_error(error: E) -> BoxError {
        error.into()
    }
}

// === impl FallbackService ===

/// Sends the request to another service, with its [`DegradeReason`] in the request's extensions.
///
/// ```
/// use espresso_degrade::{DegradeLayer, DegradeReason, limit::Fixed};
/// use http::{Request, Response};
/// use std::convert::Infallible;
/// use tower::service_fn;
///
/// let cheap = service_fn(|request: Request<String>| async move {
///     let why = request.extensions().get::<DegradeReason>().copied();
///     Ok::<_, Infallible>(Response::new(format!("degraded: {why:?}")))
/// });
/// let layer = DegradeLayer::new(Fixed::new(100)).fallback(cheap);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct FallbackService<T> {
    service: T,
}

impl<T> FallbackService<T> {
    /// Wraps `service`.
    pub fn new(service: T) -> Self {
        Self { service }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &T {
        &self.service
    }
}

impl<T, ReqB, ResB, E> Fallback<ReqB, ResB, E> for FallbackService<T>
where
    T: Service<Request<ReqB>, Response = Response<ResB>, Error = E>,
{
    type Response = Response<ResB>;
    type Error = E;
    type Future = T::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.service.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqB>, reason: DegradeReason) -> T::Future {
        request.extensions_mut().insert(reason);
        self.service.call(request)
    }

    fn primary_response(response: Response<ResB>) -> Response<ResB> {
        response
    }

    fn primary_error(error: E) -> E {
        error
    }
}
