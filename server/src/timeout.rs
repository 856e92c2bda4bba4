//! `server.request_timeout_ms`: a request still running after it is answered like every other
//! error — 408 with the error JSON and the request id, or gRPC `DEADLINE_EXCEEDED` — instead of
//! the bare 408 of a generic timeout layer. A client trickling its body is the usual cause.

use axum::body::Body;
use espresso_common::{
    Rejection, RequestId,
    grpc::{Code, is_grpc},
    refusal::{Refusal, Respond},
};
use http::{HeaderValue, Request, Response, StatusCode, Version, header::CONNECTION};
use http_body_util::Either;
use pin_project_lite::pin_project;
use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll, ready},
    time::Duration,
};
use tokio::{
    task::Unconstrained,
    time::{Instant, Sleep, sleep_until},
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
}

impl TimeoutLayer {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

/// The answer to a request that timed out, the same for every server and request: one value
/// every request refers to, not a reference count every request moves up and down.
fn policy() -> &'static Respond {
    static POLICY: OnceLock<Respond> = OnceLock::new();
    POLICY.get_or_init(|| {
        let rejection = Rejection::new(StatusCode::REQUEST_TIMEOUT, Code::DeadlineExceeded)
            .code("request_timeout")
            .message("the request took longer than the server's request timeout");
        Respond::new(rejection)
    })
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// Made by [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Timeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B, ResB> Service<Request<B>> for Timeout<S>
where
    S: Service<Request<B>, Response = Response<ResB>, Error = Infallible>,
{
    // The 408 is the other side of the `Either`: answers that do not time out are not boxed.
    type Response = Response<Either<ResB, Body>>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // What the answer needs once the request itself is gone.
        let grpc = is_grpc(request.headers());
        let request_id = request.extensions().get::<RequestId>().cloned();
        let http1 = request.version() < Version::HTTP_2;
        ResponseFuture {
            deadline: Instant::now() + self.timeout,
            inner: self.inner.call(request),
            sleep: None,
            grpc,
            http1,
            request_id,
            timeout: self.timeout,
        }
    }
}

pin_project! {
    /// The response future of [`Timeout`].
    pub(crate) struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // Counted from the call, as `tokio::time::timeout` does; the timer itself is armed only
        // once the answer is not ready at the first poll, so an answer ready at once (most of
        // them) never touches the runtime's timer wheel.
        deadline: Instant,
        sleep: Option<Pin<Box<Unconstrained<Sleep>>>>,
        grpc: bool,
        // an HTTP/1 connection is closed after the 408 (RFC 9110 §15.5.9: the server has
        // decided to stop waiting), and says so
        http1: bool,
        request_id: Option<RequestId>,
        timeout: Duration,
    }
}

impl<F, ResB> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResB>, Infallible>>,
{
    type Output = Result<Response<Either<ResB, Body>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer.map(|r| r.map(Either::Left)));
        }
        // Unconstrained: a request that spends the task's budget still times out.
        let deadline = *this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::task::unconstrained(sleep_until(deadline))));
        ready!(sleep.as_mut().poll(cx));
        let timed_out = TimedOut {
            after: *this.timeout,
        };
        let mut response =
            policy().answer::<_, Body>(&timed_out, *this.grpc, this.request_id.as_ref());
        if *this.http1 {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(response.map(|body| Either::Right(Body::new(body)))))
    }
}

#[cfg(test)]
mod tests {
    //! On a paused clock: time moves only when the test says so.

    use super::*;
    use http_body_util::BodyExt;
    use tower::{ServiceExt, service_fn};

    const TIMEOUT: Duration = Duration::from_secs(2);

    /// A service answering 200 after `delay`.
    fn answering_after(
        delay: Duration,
    ) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone
    {
        service_fn(move |_: Request<Body>| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, Infallible>(Response::new(Body::from("done")))
        })
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_within_the_timeout_passes_unchanged() {
        let service = TimeoutLayer::new(TIMEOUT).layer(answering_after(TIMEOUT / 2));
        let started = Instant::now();
        let response = service.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(started.elapsed(), TIMEOUT / 2);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "done");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_answer_is_refused_with_408_exactly_at_the_timeout() {
        let service = TimeoutLayer::new(TIMEOUT).layer(answering_after(TIMEOUT * 10));
        let started = Instant::now();
        let response = service.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(started.elapsed(), TIMEOUT);
        // HTTP/1: the connection is closed after it, and the answer says so
        assert_eq!(response.headers()[CONNECTION], "close");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "request_timeout", "{json}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_counts_from_the_call_not_from_the_first_poll() {
        let mut service = TimeoutLayer::new(TIMEOUT).layer(answering_after(TIMEOUT * 10));
        let started = Instant::now();
        let future = service.call(Request::new(Body::empty()));
        tokio::time::advance(TIMEOUT / 2).await;
        let response = future.await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_grpc_request_times_out_with_deadline_exceeded() {
        let service = TimeoutLayer::new(TIMEOUT).layer(answering_after(TIMEOUT * 10));
        let request = Request::builder()
            .version(Version::HTTP_2)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .body(Body::empty())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        // no connection-specific header in HTTP/2
        assert!(!response.headers().contains_key(CONNECTION));
        let code = Code::DeadlineExceeded as u8;
        assert_eq!(response.headers()["grpc-status"], code.to_string().as_str());
    }
}
