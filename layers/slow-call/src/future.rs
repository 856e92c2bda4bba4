//! [`ResponseFuture`] of [`SlowCall`](crate::SlowCall).

use crate::{
    SlowCallBody,
    call::{Call, End},
};
use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

pin_project! {
    /// Response future of [`SlowCall`](crate::SlowCall).
    ///
    /// Polls the inner future with the request current (see
    /// [`SlowCallRecorder`](crate::SlowCallRecorder)). When it is dropped before the response
    /// arrives (the client went away), the request is accounted as cancelled.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        call: Option<Box<Call>>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, call: Box<Call>) -> Self {
        Self {
            inner,
            call: Some(call),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<SlowCallBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.call.as_ref() {
            Some(call) => {
                let _entered = call.enter();
                ready!(this.inner.poll(cx))
            }
            None => ready!(this.inner.poll(cx)),
        };
        let mut call = this.call.take();
        match result {
            Ok(response) => {
                if let Some(call) = call.as_mut() {
                    call.response(response.status(), response.headers());
                }
                let complete =
                    response.body().is_end_stream() || call.as_deref().is_some_and(Call::bodiless);
                if complete && let Some(mut call) = call.take() {
                    call.finish(End::Complete);
                }
                Poll::Ready(Ok(response.map(|body| SlowCallBody::new(body, call))))
            }
            Err(error) => {
                if let Some(mut call) = call {
                    call.finish(End::Error);
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
