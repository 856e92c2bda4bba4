//! What a layer does with a request it refuses: one policy for every refusing layer.
//!
//! A rate limiter over its quota, an open circuit breaker, a shedding overload guard and a timeout
//! all refuse requests. Each offers the same three answers, chosen with the same builder methods:
//!
//! | builder method | policy | the refused request gets | the service's types |
//! | --- | --- | --- | --- |
//! | `.respond()` (the default) | [`Respond`] | a [`Rejection`]: JSON + status over HTTP, HTTP 200 + `grpc-status` over gRPC | `Response<RejectBody<B>>`, the inner error |
//! | `.return_error()` | [`ReturnError`] | `Err` with the layer's [`Refusal`], boxed | the inner response, [`BoxError`] |
//! | `.fallback(service)` | [`Fallback`] | the answer of `service`, which finds the [`Refusal`] in the request's extensions | `Response<FallbackBody<B, F>>` (`F`: the fallback's own body), the inner error |
//!
//! With the default, a layer keeps its inner service's error type, so axum's `Router::layer` and
//! tonic's `Server::builder().layer` take it as it is.
//!
//! ```
//! use espresso_common::{
//!     Rejection, RejectBody,
//!     grpc::Code,
//!     refusal::{Refusal, RefusalPolicy, Respond},
//! };
//! use http::{Request, Response, StatusCode};
//! use std::{convert::Infallible, fmt, time::Duration};
//!
//! /// What a layer knows about one refusal.
//! #[derive(Debug, Clone)]
//! struct Busy;
//!
//! impl fmt::Display for Busy {
//!     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
//!         f.write_str("busy")
//!     }
//! }
//! impl std::error::Error for Busy {}
//! impl Refusal for Busy {
//!     fn rejection(&self, template: &Rejection) -> Rejection {
//!         template.clone().retry_after(Duration::from_secs(3))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut policy = Respond::new(Rejection::new(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable));
//! let answer = RefusalPolicy::<Request<()>, Busy, Response<String>, Infallible>::refuse(
//!     &mut policy,
//!     Request::new(()),
//!     Busy,
//! )
//! .await
//! .unwrap();
//! assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(answer.headers()["retry-after"], "3");
//! # }
//! ```

use crate::{
    BoxError, FallbackBody, RejectBody, Rejection,
    classify::{Classify, Complete, Outcome, Refused},
};
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::{
    fmt,
    future::{Future, Ready, ready},
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll},
};
use tower_service::Service;

/// What a layer knows about one refused request (`RateLimited`, `CircuitOpen`, `Shed`...).
///
/// It is the error [`ReturnError`] returns, the extension a [`Fallback`] service finds on the
/// request, and it shapes the [`Rejection`] [`Respond`] answers with (a `Retry-After`, headers).
pub trait Refusal: std::error::Error + Clone + Send + Sync + 'static {
    /// `template` (the layer's rejection, or the one its user chose) completed with what this
    /// refusal knows: when to retry, which limiter or breaker refused.
    fn rejection(&self, template: &Rejection) -> Rejection;
}

/// How a refusing layer answers a refused request, and how it types the inner service's answers to
/// match: [`Respond`], [`ReturnError`] or [`Fallback`].
///
/// `Req` is the request, `R` the layer's [`Refusal`], `Res` and `E` the inner service's response
/// and error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot answer a refused `{Req}` for a service answering `Result<{Res}, {E}>`",
    label = "refusal policy chosen here",
    note = "`.respond()` (the default) needs `http::Request`/`http::Response` services; around any \
            other service use `.return_error()` (its error must convert into `BoxError`) with a \
            closure classifier, `.classify(|result| ...)`; `.fallback(service)` needs a `Clone` \
            service with the inner service's request and error types, answering an \
            `http::Response` with a body of any type"
)]
pub trait RefusalPolicy<Req, R, Res, E> {
    /// The response type of the layer's service.
    type Response;
    /// The error type of the layer's service.
    type Error;
    /// The answer to a refused request.
    type Future: Future<Output = Result<Self::Response, Self::Error>>;

    /// Answers `request`, which the layer refused because of `refusal`.
    fn refuse(&mut self, request: Req, refusal: R) -> Self::Future;

    /// Types a response of the inner service as the layer's response.
    fn response(response: Res) -> Self::Response;

    /// Types an error of the inner service as the layer's error.
    fn error(error: E) -> Self::Error;

    /// Types the inner service's `result` as the layer's, then classifies it with `classify`,
    /// completing `done` now or when the response body ends: what a layer that judges its inner
    /// service does with each answer.
    fn classified<C, D>(
        result: Result<Res, E>,
        classify: &C,
        done: D,
    ) -> Result<C::Response<D>, Self::Error>
    where
        Self: Sized,
        C: Classify<Self::Response, Self::Error>,
        D: Complete<Outcome>,
    {
        classify.classify(result.map(Self::response).map_err(Self::error), done)
    }
}

// === Respond ===

/// Answers a refused request with a [`Rejection`], shaped for HTTP or gRPC by the request; the
/// default of every refusing layer. Responses become `Response<RejectBody<B>>`; errors are the
/// inner service's. Its answers carry [`Refused`] in their extensions, so a breaker or an overload
/// guard further out does not count them against the service.
#[derive(Debug, Clone)]
pub struct Respond {
    rejection: Rejection,
}

impl Respond {
    /// Answers with `rejection`, completed by each [`Refusal`] (its `Retry-After`, headers).
    pub fn new(rejection: Rejection) -> Self {
        Self { rejection }
    }

    /// The rejection this policy starts from.
    pub fn rejection(&self) -> &Rejection {
        &self.rejection
    }

    /// The response for a refusal when the request is gone (a timeout): whether it was gRPC, and
    /// its request id. See [`Rejection::response`].
    pub fn answer<R: Refusal, B>(
        &self,
        refusal: &R,
        grpc: bool,
        request_id: Option<&crate::RequestId>,
    ) -> Response<RejectBody<B>> {
        refusal
            .rejection(&self.rejection)
            .response(grpc, request_id)
    }
}

impl<ReqB, R, ResB, E> RefusalPolicy<Request<ReqB>, R, Response<ResB>, E> for Respond
where
    R: Refusal,
{
    type Response = Response<RejectBody<ResB>>;
    type Error = E;
    type Future = Ready<Result<Self::Response, E>>;

    fn refuse(&mut self, request: Request<ReqB>, refusal: R) -> Self::Future {
        let mut response = refusal.rejection(&self.rejection).to_response(&request);
        // The service never saw the request: layers outside do not judge it by this answer.
        response.extensions_mut().insert(Refused);
        ready(Ok(response))
    }

    fn response(response: Response<ResB>) -> Self::Response {
        response.map(RejectBody::inner)
    }

    fn error(error: E) -> E {
        error
    }
}

// === ReturnError ===

/// Fails a refused request with `Err(refusal)`, boxed into a [`BoxError`] with the inner
/// service's errors (tower's convention); responses pass untouched. For stacks that handle errors
/// themselves: downcast the error to the layer's [`Refusal`] type.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReturnError;

impl ReturnError {
    /// The policy.
    pub fn new() -> Self {
        Self
    }
}

impl<Req, R, Res, E> RefusalPolicy<Req, R, Res, E> for ReturnError
where
    R: Refusal,
    E: Into<BoxError>,
{
    type Response = Res;
    type Error = BoxError;
    type Future = Ready<Result<Res, BoxError>>;

    fn refuse(&mut self, _: Req, refusal: R) -> Self::Future {
        crate::classify::note_returned::<R>();
        ready(Err(Box::new(refusal)))
    }

    fn response(response: Res) -> Res {
        response
    }

    fn error(error: E) -> BoxError {
        error.into()
    }
}

// === Fallback ===

/// Sends a refused request to another service, which answers in the inner service's place (a
/// cached answer, a cheaper engine, a secondary backend). It gets the refused request itself
/// (method, path, headers, body), carrying the layer's [`Refusal`] in its extensions: an axum
/// `Router` as a fallback routes the same paths, or answers them all with `Router::fallback`.
/// The service is cloned per refused request and driven to readiness first, so it is never
/// asked for readiness when nothing is refused.
///
/// The fallback answers with a body of its own type: responses become
/// `Response<FallbackBody<B, F>>`, the inner service's body `B` or the fallback's `F`. So the
/// same fallback (an axum `Router`, a tonic service) works on the innermost layer and on one
/// with other layers inside it, whose bodies it never has to produce.
#[derive(Clone)]
pub struct Fallback<S> {
    service: S,
}

impl<S> Fallback<S> {
    /// Falls back to `service`.
    pub fn new(service: S) -> Self {
        Self { service }
    }

    /// The fallback service.
    pub fn get_ref(&self) -> &S {
        &self.service
    }
}

impl<S> fmt::Debug for Fallback<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback").finish_non_exhaustive()
    }
}

impl<S, ReqB, R, ResB, F, E> RefusalPolicy<Request<ReqB>, R, Response<ResB>, E> for Fallback<S>
where
    S: Service<Request<ReqB>, Response = Response<F>, Error = E> + Clone,
    R: Refusal,
{
    type Response = Response<FallbackBody<ResB, F>>;
    type Error = E;
    type Future = FallbackFuture<S, Request<ReqB>, ResB>;

    fn refuse(&mut self, mut request: Request<ReqB>, refusal: R) -> Self::Future {
        request.extensions_mut().insert(refusal);
        FallbackFuture::new(self.service.clone(), request)
    }

    fn response(response: Response<ResB>) -> Self::Response {
        response.map(FallbackBody::inner)
    }

    fn error(error: E) -> E {
        error
    }
}

pin_project! {
    /// The answer of a [`Fallback`] service: waits for it to be ready, then calls it; its
    /// response carries the fallback's body as the [`FallbackBody`] of a stack whose inner body
    /// is `B`.
    pub struct FallbackFuture<S, Req, B>
    where
        S: Service<Req>,
    {
        // Boxed: refusing is the rare path, and the service, the request and the service's
        // future would otherwise widen the response future of every request the layer passes.
        state: Pin<Box<State<S, Req, S::Future>>>,
        body: PhantomData<fn() -> B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req, F> {
        Ready { service: S, request: Option<Req> },
        Called { #[pin] future: F },
    }
}

impl<S: Service<Req>, Req, B> FallbackFuture<S, Req, B> {
    fn new(service: S, request: Req) -> Self {
        Self {
            state: Box::pin(State::Ready {
                service,
                request: Some(request),
            }),
            body: PhantomData,
        }
    }
}

impl<S: Service<Req>, Req, B> fmt::Debug for FallbackFuture<S, Req, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackFuture").finish_non_exhaustive()
    }
}

impl<S, Req, B, F> Future for FallbackFuture<S, Req, B>
where
    S: Service<Req, Response = Response<F>>,
{
    type Output = Result<Response<FallbackBody<B, F>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Ready { service, request } => {
                    std::task::ready!(service.poll_ready(cx))?;
                    let request = request.take().expect("a fallback request is sent once");
                    let future = service.call(request);
                    state.set(State::Called { future });
                }
                StateProj::Called { future } => {
                    let response = std::task::ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(FallbackBody::fallback)));
                }
            }
        }
    }
}

// === ResponseFuture ===

pin_project! {
    /// The answer of a layer that judges its inner service and refuses some requests (a circuit
    /// breaker, an overload guard): the inner call, classified by `C` when it completes (its
    /// outcome goes to `D`, the layer's hold on the call), or the answer `PF` of the refusal
    /// policy `P` to a request `Req` refused with `R`, which is not classified: the inner service
    /// never saw that request.
    pub struct ResponseFuture<F, C, D, P, Req, R, PF> {
        #[pin]
        kind: Kind<F, C, D, PF>,
        policy: PhantomData<fn(Req, R) -> P>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, C, D, PF> {
        Called { #[pin] future: F, done: Option<D>, classify: C },
        Refused { #[pin] future: PF, classify: PhantomData<fn() -> C> },
    }
}

impl<F, C, D, P, Req, R, PF> ResponseFuture<F, C, D, P, Req, R, PF> {
    /// Drives `future`, the inner service's answer, and classifies it with `classify`, completing
    /// `done` with the outcome.
    pub fn called(future: F, done: D, classify: C) -> Self {
        Self {
            kind: Kind::Called {
                future,
                done: Some(done),
                classify,
            },
            policy: PhantomData,
        }
    }

    /// Drives `future`, the refusal policy's answer.
    pub fn refused(future: PF) -> Self {
        Self {
            kind: Kind::Refused {
                future,
                classify: PhantomData,
            },
            policy: PhantomData,
        }
    }
}

impl<F, C, D, P, Req, R, PF> fmt::Debug for ResponseFuture<F, C, D, P, Req, R, PF> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Called { .. } => "Called",
            Kind::Refused { .. } => "Refused",
        };
        f.debug_tuple("ResponseFuture").field(&kind).finish()
    }
}

impl<F, C, D, P, Req, R, PF, Res, E> Future for ResponseFuture<F, C, D, P, Req, R, PF>
where
    F: Future<Output = Result<Res, E>>,
    P: RefusalPolicy<Req, R, Res, E, Future = PF>,
    C: Classify<P::Response, P::Error>,
    D: Complete<Outcome>,
    PF: Future<Output = Result<P::Response, P::Error>>,
{
    type Output = Result<C::Response<D>, P::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called {
                future,
                done,
                classify,
            } => {
                let result = std::task::ready!(future.poll(cx));
                let done = done.take().expect("ResponseFuture polled after completion");
                Poll::Ready(P::classified(result, classify, done))
            }
            KindProj::Refused { future, .. } => {
                Poll::Ready(std::task::ready!(future.poll(cx)).map(C::pass))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::Code;
    use bytes::Bytes;
    use http::{HeaderValue, StatusCode, header::CONTENT_TYPE};
    use http_body_util::{BodyExt, Full};
    use std::{convert::Infallible, time::Duration};

    #[derive(Debug, Clone, PartialEq)]
    struct Closed(u64);

    impl fmt::Display for Closed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "closed for {}s", self.0)
        }
    }

    impl std::error::Error for Closed {}

    impl Refusal for Closed {
        fn rejection(&self, template: &Rejection) -> Rejection {
            template
                .clone()
                .retry_after(Duration::from_secs(self.0))
                .header("x-closed".parse().unwrap(), HeaderValue::from(self.0))
        }
    }

    fn respond() -> Respond {
        Respond::new(
            Rejection::new(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable).code("closed"),
        )
    }

    #[tokio::test]
    async fn respond_shapes_the_template_with_the_refusal() {
        let answer = RefusalPolicy::<_, _, Response<String>, Infallible>::refuse(
            &mut respond(),
            Request::new(()),
            Closed(4),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers()["retry-after"], "4");
        assert_eq!(answer.headers()["x-closed"], "4");
        assert_eq!(answer.headers()[CONTENT_TYPE], "application/json");
    }

    #[tokio::test]
    async fn respond_answers_grpc_requests_with_a_grpc_status() {
        let request = Request::builder()
            .header(CONTENT_TYPE, "application/grpc")
            .body(())
            .unwrap();
        let answer = RefusalPolicy::<_, _, Response<String>, Infallible>::refuse(
            &mut respond(),
            request,
            Closed(1),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()["grpc-status"], "14");
    }

    #[test]
    fn respond_wraps_inner_responses_and_keeps_inner_errors() {
        let response =
            <Respond as RefusalPolicy<Request<()>, Closed, _, &str>>::response(Response::new(7));
        assert_eq!(response.status(), StatusCode::OK);
        let error =
            <Respond as RefusalPolicy<Request<()>, Closed, Response<()>, _>>::error("inner");
        assert_eq!(error, "inner");
    }

    #[tokio::test]
    async fn return_error_boxes_the_refusal_and_the_inner_errors() {
        let error =
            RefusalPolicy::<_, _, (), std::io::Error>::refuse(&mut ReturnError, (), Closed(2))
                .await
                .unwrap_err();
        assert_eq!(error.downcast_ref::<Closed>(), Some(&Closed(2)));
        let inner = <ReturnError as RefusalPolicy<(), Closed, (), _>>::error(
            std::io::Error::other("inner"),
        );
        assert_eq!(inner.to_string(), "inner");
    }

    #[tokio::test]
    async fn fallback_answers_with_the_refusal_in_the_extensions() {
        let service = tower::service_fn(|request: Request<()>| async move {
            let closed = request.extensions().get::<Closed>().cloned();
            Ok::<_, Infallible>(Response::new(format!("fallback after {closed:?}")))
        });
        let answer = RefusalPolicy::<_, _, Response<Full<Bytes>>, Infallible>::refuse(
            &mut Fallback::new(service),
            Request::new(()),
            Closed(9),
        )
        .await
        .unwrap();
        let body = answer.into_body();
        assert!(body.is_fallback());
        let text = body.collect().await.unwrap().to_bytes();
        assert_eq!(text, "fallback after Some(Closed(9))");
    }

    #[tokio::test]
    async fn a_fallback_answers_with_its_own_body_type_and_passes_the_inner_one_through() {
        // The fallback answers `String`; the service it stands in for answers `RejectBody` of
        // another layer inside: no adapter between the two.
        type Inner = Response<RejectBody<Full<Bytes>>>;
        let service = tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new("cached".to_owned()))
        });
        fn pass<P: RefusalPolicy<Request<()>, Closed, Inner, Infallible>>(
            _: &P,
            response: Inner,
        ) -> P::Response {
            P::response(response)
        }
        let mut policy = Fallback::new(service);
        let answer = RefusalPolicy::<_, _, Inner, Infallible>::refuse(
            &mut policy,
            Request::new(()),
            Closed(1),
        )
        .await
        .unwrap();
        assert_eq!(
            answer.into_body().collect().await.unwrap().to_bytes(),
            "cached"
        );
        let fresh = Full::new(Bytes::from_static(b"fresh"));
        let passed = pass(&policy, Response::new(RejectBody::inner(fresh)));
        let body = passed.into_body();
        assert!(!body.is_fallback());
        assert_eq!(body.collect().await.unwrap().to_bytes(), "fresh");
    }

    #[tokio::test]
    async fn fallback_waits_for_its_service_to_be_ready() {
        let (mock, mut handle) = tower_test::mock::pair::<Request<()>, Response<String>>();
        handle.allow(0);
        let mut future =
            tokio_test::task::spawn(RefusalPolicy::<_, Closed, Response<String>, _>::refuse(
                &mut Fallback::new(mock),
                Request::new(()),
                Closed(1),
            ));
        assert!(future.poll().is_pending());
        handle.allow(1);
        assert!(future.poll().is_pending());
        let (_, respond) = handle.next_request().await.unwrap();
        respond.send_response(Response::new("late".to_owned()));
        let body = future.await.unwrap().into_body();
        assert_eq!(body.collect().await.unwrap().to_bytes(), "late");
    }
}
