//! The response future of [`CircuitBreakerService`](crate::CircuitBreakerService).

use crate::{MapResult, Permit};
use espresso_common::classify::Classify;
use pin_project_lite::pin_project;
use std::{
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll, ready},
};

pin_project! {
    /// Drives the inner call and records its outcome, or answers a rejected call.
    pub struct ResponseFuture<F, C, O, R> {
        #[pin]
        kind: Kind<F, C, R>,
        _on_open: PhantomData<fn() -> O>,
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
        Rejected {
            #[pin]
            future: R,
        },
    }
}

impl<F, C, O, R> ResponseFuture<F, C, O, R> {
    pub(crate) fn called(future: F, permit: Permit, classify: C) -> Self {
        Self {
            kind: Kind::Called {
                future,
                permit: Some(permit),
                classify,
            },
            _on_open: PhantomData,
        }
    }

    pub(crate) fn rejected(future: R) -> Self {
        Self {
            kind: Kind::Rejected { future },
            _on_open: PhantomData,
        }
    }
}

impl<F, C, O, R, Res, E> Future for ResponseFuture<F, C, O, R>
where
    F: Future<Output = Result<Res, E>>,
    C: Classify<Res, E>,
    O: MapResult<Res, E>,
    R: Future<Output = Result<O::Response, O::Error>>,
{
    type Output = Result<O::Response, O::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called {
                future,
                permit,
                classify,
            } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = permit.take() {
                    permit.complete(classify.classify(result.as_ref()));
                }
                Poll::Ready(result.map(O::response).map_err(O::error))
            }
            KindProj::Rejected { future } => future.poll(cx),
        }
    }
}
