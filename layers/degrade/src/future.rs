//! The response future of [`Degrade`](crate::Degrade).

use crate::{
    Priority, Shed,
    admission::{Core, Permit, Waiting},
};
use espresso_common::{
    classify::{Classify, Complete, Outcome},
    refusal::{self, RefusalPolicy},
};
use http::Request;
use pin_project_lite::pin_project;
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};
use tower_service::Service;

pin_project! {
    /// The answer of the inner service, or of the refusal policy for a shed request.
    pub struct ResponseFuture<S, P, C, ReqB>
    where
        S: Service<Request<ReqB>>,
        P: RefusalPolicy<Request<ReqB>, Shed, S::Response, S::Error>,
    {
        #[pin]
        state: State<S, P, C, S::Future, P::Future, ReqB>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, P, C, PF, FF, ReqB> {
        // Sent to the primary or shed: the shape every judging layer shares.
        Decided {
            #[pin]
            future: refusal::ResponseFuture<PF, C, Permit, P, Request<ReqB>, Shed, FF>,
        },
        // Boxed: waiting is the rare path, and the request and service it holds would widen
        // the future of every request the layer admits at once.
        Queued { queued: Box<Queued<S, P, C, ReqB>> },
    }
}

/// A request waiting for a place, with what it needs to be sent or refused.
struct Queued<S, P, C, ReqB> {
    waiting: Waiting,
    primary: Option<S>,
    policy: P,
    classify: Option<C>,
    request: Option<Request<ReqB>>,
    core: Arc<Core>,
    priority: Priority,
}

/// A queued request dropped before it was sent or shed: its caller gave up.
impl<S, P, C, ReqB> Drop for Queued<S, P, C, ReqB> {
    fn drop(&mut self) {
        if self.request.is_some()
            && let Some(m) = self.core.metrics()
        {
            m.abandoned(self.priority);
        }
    }
}

impl<S, P, C, ReqB> ResponseFuture<S, P, C, ReqB>
where
    S: Service<Request<ReqB>>,
    P: RefusalPolicy<Request<ReqB>, Shed, S::Response, S::Error>,
{
    pub(crate) fn primary(future: S::Future, permit: Permit, classify: C) -> Self {
        Self {
            state: State::Decided {
                future: refusal::ResponseFuture::called(future, permit, classify),
            },
        }
    }

    pub(crate) fn shed(future: P::Future) -> Self {
        Self {
            state: State::Decided {
                future: refusal::ResponseFuture::refused(future),
            },
        }
    }

    pub(crate) fn queued(
        waiting: Waiting,
        primary: S,
        policy: P,
        classify: C,
        request: Request<ReqB>,
        core: Arc<Core>,
        priority: Priority,
    ) -> Self {
        Self {
            state: State::Queued {
                queued: Box::new(Queued {
                    waiting,
                    primary: Some(primary),
                    policy,
                    classify: Some(classify),
                    request: Some(request),
                    core,
                    priority,
                }),
            },
        }
    }
}

impl<S, P, C, ReqB> Future for ResponseFuture<S, P, C, ReqB>
where
    S: Service<Request<ReqB>>,
    P: RefusalPolicy<Request<ReqB>, Shed, S::Response, S::Error>,
    C: Classify<P::Response, P::Error>,
{
    type Output = Result<C::Response<Permit>, P::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Decided { future } => return future.poll(cx),
                StateProj::Queued { queued } => {
                    let Queued {
                        waiting,
                        primary,
                        policy,
                        classify,
                        request,
                        core,
                        priority,
                    } = &mut **queued;
                    let granted = ready!(Pin::new(waiting).poll(cx));
                    let (Some(mut service), Some(request), Some(classify)) =
                        (primary.take(), request.take(), classify.take())
                    else {
                        unreachable!("a queued request is sent once");
                    };
                    match granted {
                        Ok(permit) => {
                            if let Some(m) = core.metrics() {
                                m.primary(*priority);
                            }
                            let future = service.call(request);
                            state.set(State::Decided {
                                future: refusal::ResponseFuture::called(future, permit, classify),
                            });
                        }
                        Err(reason) => {
                            if let Some(m) = core.metrics() {
                                m.fallback(*priority, reason);
                            }
                            let future = policy.refuse(request, Shed::new(reason));
                            state.set(State::Decided {
                                future: refusal::ResponseFuture::refused(future),
                            });
                        }
                    }
                }
            }
        }
    }
}

/// The classification of a primary answer is the limit's sample: a failure signals overload; an
/// ignored answer only gives its place back. A streamed answer decided at its end is sampled at
/// its head, where its place is freed (see [`Permit`]).
impl Complete<Outcome> for Permit {
    #[inline]
    fn complete(self, outcome: Outcome) {
        match outcome {
            Outcome::Success => self.record(false),
            Outcome::Failure => self.record(true),
            Outcome::Ignored => drop(self),
        }
    }

    fn deferred(&mut self) {
        self.answered();
    }
}
