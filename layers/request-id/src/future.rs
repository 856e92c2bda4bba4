//! The response future of [`RequestIdService`](crate::RequestIdService).

use crate::current::Scoped;
use http::{HeaderName, Response, header::Entry};
use pin_project_lite::pin_project;
use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};
use tracing::Span;

pin_project! {
    /// Runs the inner response future inside the request's span and task-local scope, then
    /// writes the id into the response.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Scoped<F>,
        span: Span,
        header: HeaderName,
        extension: bool,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: Scoped<F>, span: Span, header: HeaderName, extension: bool) -> Self {
        Self {
            inner,
            span,
            header,
            extension,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        let mut polled = this.inner.as_mut().poll(cx);
        // The answer written where it lies: moved out and back, it would be copied twice more.
        if let Poll::Ready(Ok(response)) = &mut polled
            && let Some(id) = this.inner.take_id()
        {
            if *this.extension {
                if let Entry::Vacant(entry) = response.headers_mut().entry(&*this.header) {
                    entry.insert(id.header_value().clone());
                }
                response.extensions_mut().insert(id);
            } else if let Entry::Vacant(entry) = response.headers_mut().entry(&*this.header) {
                // The last holder of this copy: move it instead of cloning.
                entry.insert(id.into());
            }
        }
        polled
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("span", &self.span)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}
