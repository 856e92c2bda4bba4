//! [`ByPath`]: one of two services, chosen by the request path. The server uses it to put a
//! layer in front of some routes only (the rate limit skips probes, degrade guards the filter)
//! without `Router::layer`, which boxes each route again and costs an allocation per request.

use futures_util::future::Either;
use http::Request;
use std::task::{Context, Poll, ready};

/// Sends requests whose path `matches` to `matched`, the others to `other`.
#[derive(Clone)]
pub(crate) struct ByPath<A, B> {
    matches: fn(&str) -> bool,
    matched: A,
    other: B,
}

impl<A, B> ByPath<A, B> {
    pub(crate) fn new(matches: fn(&str) -> bool, matched: A, other: B) -> Self {
        Self {
            matches,
            matched,
            other,
        }
    }
}

impl<A, B, R> tower::Service<Request<R>> for ByPath<A, B>
where
    A: tower::Service<Request<R>>,
    B: tower::Service<Request<R>, Response = A::Response, Error = A::Error>,
{
    type Response = A::Response;
    type Error = A::Error;
    type Future = Either<A::Future, B::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.matched.poll_ready(cx))?;
        self.other.poll_ready(cx)
    }

    fn call(&mut self, request: Request<R>) -> Self::Future {
        if (self.matches)(request.uri().path()) {
            Either::Left(self.matched.call(request))
        } else {
            Either::Right(self.other.call(request))
        }
    }
}
