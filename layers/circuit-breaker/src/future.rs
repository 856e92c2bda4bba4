//! The response future of [`CircuitBreakerService`](crate::CircuitBreakerService).

use crate::{CircuitOpen, Permit};
use espresso_common::{classify::Classify, refusal::RefusalPolicy};
use pin_project_lite::pin_project;
use std::{
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll, ready},
};

pin_project! {
    /// Drives the inner call and classifies its outcome, or answers a refused call (`R`, the
    /// future of the refusal policy `P` for requests `Req`).
    pub struct ResponseFuture<F, C, P, Req, R> {
        #[pin]
        kind: Kind<F, C, R>,
        _policy: PhantomData<fn(Req) -> P>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, C, R> {
        Called {
            #[pin]
            future: F,
            permit: Option<Permit>,
            classify: C,
        },
        Refused {
            #[pin]
            future: R,
            classify: PhantomData<fn() -> C>,
        },
    }
}

impl<F, C, P, Req, R> ResponseFuture<F, C, P, Req, R> {
    pub(crate) fn called(future: F, permit: Permit, classify: C) -> Self {
        Self {
            kind: Kind::Called {
                future,
                permit: Some(permit),
                classify,
            },
            _policy: PhantomData,
        }
    }

    pub(crate) fn refused(future: R) -> Self {
        Self {
            kind: Kind::Refused {
                future,
                classify: PhantomData,
            },
            _policy: PhantomData,
        }
    }
}

impl<F, C, P, Req, R, Res, E> Future for ResponseFuture<F, C, P, Req, R>
where
    F: Future<Output = Result<Res, E>>,
    P: RefusalPolicy<Req, CircuitOpen, Res, E, Future = R>,
    C: Classify<P::Response, P::Error>,
    R: Future<Output = Result<P::Response, P::Error>>,
{
    type Output = Result<C::Response<Permit>, P::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called {
                future,
                permit,
                classify,
            } => {
                let result = ready!(future.poll(cx));
                let permit = permit
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(P::classified(result, classify, permit))
            }
            // A refused call never reached the callee: nothing to classify.
            KindProj::Refused { future, .. } => Poll::Ready(ready!(future.poll(cx)).map(C::pass)),
        }
    }
}
