//! `server.request_timeout_ms`: a request still running after it is answered like every other
//! error — 408 with the error JSON and the request id, or gRPC `DEADLINE_EXCEEDED` — instead of
//! the bare 408 of a generic timeout layer. A client trickling its body is the usual cause.

use axum::{body::Body, response::Response};
use espresso_common::{
    Rejection, RequestId,
    grpc::{Code, is_grpc},
    refusal::{Refusal, Respond},
};
use http::{Request, StatusCode};
use pin_project_lite::pin_project;
use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};
use tower::{Layer, Service};

/// A request that ran longer than the server's request timeout: the refusal the timeout answers
/// with the refusal policy every espresso layer shares (here always
/// [`Respond`](espresso_common::refusal::Respond): the request is gone, so there is nothing to
/// hand to a fallback).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimedOut {
    after: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the request took longer than {:?}", self.after)
    }
}

impl std::error::Error for TimedOut {}

impl Refusal for TimedOut {
    fn rejection(&self, template: &Rejection) -> Rejection {
        template.clone()
    }
}

/// Answers requests that run longer than a timeout; see the [module docs](self).
#[derive(Debug, Clone)]
pub(crate) struct TimeoutLayer {
    timeout: Duration,
    policy: Arc<Respond>,
}

impl TimeoutLayer {
    pub(crate) fn new(timeout: Duration) -> Self {
        let rejection = Rejection::new(StatusCode::REQUEST_TIMEOUT, Code::DeadlineExceeded)
            .code("request_timeout")
            .message("the request took longer than the server's request timeout");
        Self {
            timeout,
            policy: Arc::new(Respond::new(rejection)),
        }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            timeout: self.timeout,
            policy: self.policy.clone(),
        }
    }
}

/// Made by [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Timeout<S> {
    inner: S,
    timeout: Duration,
    policy: Arc<Respond>,
}

impl<S, B> Service<Request<B>> for Timeout<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // What the answer needs once the request itself is gone.
        let grpc = is_grpc(request.headers());
        let request_id = request.extensions().get::<RequestId>().cloned();
        ResponseFuture {
            inner: tokio::time::timeout(self.timeout, self.inner.call(request)),
            grpc,
            request_id,
            policy: self.policy.clone(),
            timeout: self.timeout,
        }
    }
}

pin_project! {
    /// The response future of [`Timeout`].
    pub(crate) struct ResponseFuture<F> {
        #[pin]
        inner: tokio::time::Timeout<F>,
        grpc: bool,
        request_id: Option<RequestId>,
        policy: Arc<Respond>,
        timeout: Duration,
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match ready!(this.inner.poll(cx)) {
            Ok(answer) => Poll::Ready(answer),
            Err(_elapsed) => {
                let timed_out = TimedOut {
                    after: *this.timeout,
                };
                let response =
                    this.policy
                        .answer::<_, Body>(&timed_out, *this.grpc, this.request_id.as_ref());
                Poll::Ready(Ok(response.map(Body::new)))
            }
        }
    }
}
