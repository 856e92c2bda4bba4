//! [`SlowCallBody`]: the response body, whose end ends the request's timing.

use crate::call::{Call, End};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

pin_project! {
    /// The response body of [`SlowCall`](crate::SlowCall).
    ///
    /// It passes the inner body's frames through unchanged. The request's timing ends when the
    /// body ends (its last frame, its trailers, or an error); when it is dropped before that, the
    /// request is accounted as cancelled. Polling happens with the request current, so spans
    /// opened while streaming join the request's call tree.
    pub struct SlowCallBody<B: Body> {
        #[pin]
        inner: B,
        call: Option<Box<Call>>,
    }

    impl<B: Body> PinnedDrop for SlowCallBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(mut call) = this.call.take() {
                // A server may stop polling once `is_end_stream` says there is nothing left.
                if this.inner.is_end_stream() {
                    call.finish(End::Complete);
                }
            }
        }
    }
}

impl<B: Body> SlowCallBody<B> {
    pub(crate) fn new(inner: B, call: Option<Box<Call>>) -> Self {
        Self { inner, call }
    }
}

impl<B: Body> Body for SlowCallBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let Some(call) = this.call.as_mut() else {
            return this.inner.poll_frame(cx);
        };
        let polled = {
            let _entered = call.enter();
            ready!(this.inner.as_mut().poll_frame(cx))
        };
        let end = match &polled {
            None => Some(End::Complete),
            Some(Err(_)) => Some(End::Error),
            Some(Ok(frame)) => match frame.trailers_ref() {
                // Trailers are a body's last frame, whether or not it says so after them
                // (`StreamBody` does not): hyper stops polling there and drops the body.
                Some(trailers) => {
                    call.trailers(trailers);
                    Some(End::Complete)
                }
                None => this.inner.is_end_stream().then_some(End::Complete),
            },
        };
        if let Some(end) = end
            && let Some(mut call) = this.call.take()
        {
            call.finish(end);
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> std::fmt::Debug for SlowCallBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowCallBody")
            .field("finished", &self.call.is_none())
            .finish_non_exhaustive()
    }
}
