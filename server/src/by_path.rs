//! [`ByPath`]: one of two services, chosen by the request path. The server uses it to put a
//! layer in front of some routes only (the rate limit skips probes, degrade guards the filter)
//! without `Router::layer`, which boxes each route again and costs an allocation per request.
//!
//! The two services may answer with different body types: the answer's body is an
//! [`Either`](http_body_util::Either) of both, so no answer is boxed to make them one type.

use http::{Request, Response};
use http_body_util::Either;
use pin_project_lite::pin_project;
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

/// Sends requests whose path `matches` to `matched`, when there is one, and every other
/// request to `other`.
#[derive(Clone)]
pub(crate) struct ByPath<A, B> {
    matches: fn(&str) -> bool,
    matched: Option<A>,
    other: B,
}

impl<A, B> ByPath<A, B> {
    /// With `matched` `None` (its layer is off), every request goes to `other`.
    pub(crate) fn new(matches: fn(&str) -> bool, matched: Option<A>, other: B) -> Self {
        Self {
            matches,
            matched,
            other,
        }
    }
}

impl<A, B, R, BA, BB> tower::Service<Request<R>> for ByPath<A, B>
where
    A: tower::Service<Request<R>, Response = Response<BA>>,
    B: tower::Service<Request<R>, Response = Response<BB>, Error = A::Error>,
{
    type Response = Response<Either<BA, BB>>;
    type Error = A::Error;
    type Future = EitherFuture<A::Future, B::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if let Some(matched) = &mut self.matched {
            ready!(matched.poll_ready(cx))?;
        }
        self.other.poll_ready(cx)
    }

    fn call(&mut self, request: Request<R>) -> Self::Future {
        match &mut self.matched {
            Some(matched) if (self.matches)(request.uri().path()) => EitherFuture::Left {
                future: matched.call(request),
            },
            _ => EitherFuture::Right {
                future: self.other.call(request),
            },
        }
    }
}

pin_project! {
    /// The answer of one of two services, its body on that service's side of an
    /// [`Either`]: the response future of [`ByPath`], and of any layer that answers either
    /// from its inner service or with a refusal of its own.
    #[project = Chosen]
    pub(crate) enum EitherFuture<FA, FB> {
        Left { #[pin] future: FA },
        Right { #[pin] future: FB },
    }
}

impl<FA, FB, BA, BB, E> Future for EitherFuture<FA, FB>
where
    FA: Future<Output = Result<Response<BA>, E>>,
    FB: Future<Output = Result<Response<BB>, E>>,
{
    type Output = Result<Response<Either<BA, BB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match self.project() {
            Chosen::Left { future } => ready!(future.poll(cx)).map(|r| r.map(Either::Left)),
            Chosen::Right { future } => ready!(future.poll(cx)).map(|r| r.map(Either::Right)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use std::convert::Infallible;
    use tower::{ServiceExt, service_fn};

    /// A service answering its own name, in a body type of its own.
    fn named<B: From<&'static str>>(
        name: &'static str,
    ) -> impl tower::Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone {
        service_fn(move |_: Request<()>| async move { Ok(Response::new(B::from(name))) })
    }

    async fn answer<S>(service: S, path: &str) -> String
    where
        S: tower::Service<Request<()>, Error = Infallible>,
        S::Response: Into<Response<Either<Full<bytes::Bytes>, String>>>,
    {
        let request = Request::builder().uri(path).body(()).unwrap();
        let response: Response<_> = service.oneshot(request).await.unwrap().into();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn matching_paths_go_to_the_matched_service_and_the_rest_to_the_other() {
        let by_path = ByPath::new(
            |path| path.starts_with("/v1/"),
            Some(named::<Full<bytes::Bytes>>("matched")),
            named::<String>("other"),
        );
        assert_eq!(answer(by_path.clone(), "/v1/filter").await, "matched");
        assert_eq!(answer(by_path, "/healthz").await, "other");
    }

    #[tokio::test]
    async fn without_a_matched_service_every_request_goes_to_the_other() {
        let by_path = ByPath::new(
            |_| true,
            None::<
                tower::util::BoxCloneService<Request<()>, Response<Full<bytes::Bytes>>, Infallible>,
            >,
            named::<String>("other"),
        );
        assert_eq!(answer(by_path, "/v1/filter").await, "other");
    }
}
