//! The response future of [`RateLimit`](crate::RateLimit).

use crate::{
    Quotas, RateLimited,
    limiter::PendingDecision,
    service::{Action, Policy, RateLimitPolicy, add_headers},
};
use espresso_common::refusal::RefusalPolicy;
use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};
use tokio::time::Sleep;
use tower_service::Service;

pin_project! {
    /// The response future of [`RateLimit`](crate::RateLimit): a decision on its way (Redis),
    /// a wait (wait mode), the inner call, or the refusal policy's answer.
    pub struct ResponseFuture<S, ReqB, P>
    where
        S: Service<Request<ReqB>>,
        P: RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>,
    {
        #[pin]
        state: State<S, ReqB, P>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateProjReplace]
    enum State<S, ReqB, P>
    where
        S: Service<Request<ReqB>>,
        P: RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>,
    {
        // The rare paths keep what they hold in a box, so the common future (`Calling`) stays
        // small: a request alone is a couple of hundred bytes.
        Checking {
            pending: PendingDecision,
            deferred: Box<Deferred<S, ReqB>>,
            quotas: Quotas,
            policy: Arc<Policy>,
            refusal: Box<P>,
        },
        Waiting {
            sleep: Pin<Box<Sleep>>,
            deferred: Box<Deferred<S, ReqB>>,
            headers: Option<Box<HeaderMap>>,
        },
        Calling {
            #[pin]
            future: S::Future,
            headers: Option<Box<HeaderMap>>,
        },
        Refused {
            #[pin]
            future: P::Future,
        },
        // Between two states, and after the answer.
        Empty,
    }
}

/// The ready inner service and the request it will be called with.
struct Deferred<S, ReqB> {
    service: S,
    request: Request<ReqB>,
}

impl<S, ReqB, P> ResponseFuture<S, ReqB, P>
where
    S: Service<Request<ReqB>>,
    P: RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>,
{
    fn new(state: State<S, ReqB, P>) -> Self {
        Self { state }
    }

    pub(crate) fn calling(future: S::Future, headers: Option<Box<HeaderMap>>) -> Self {
        Self::new(State::Calling { future, headers })
    }

    pub(crate) fn waiting(
        wait: Duration,
        service: S,
        request: Request<ReqB>,
        headers: Option<Box<HeaderMap>>,
    ) -> Self {
        Self::new(State::Waiting {
            sleep: Box::pin(tokio::time::sleep(wait)),
            deferred: Box::new(Deferred { service, request }),
            headers,
        })
    }

    pub(crate) fn checking(
        pending: PendingDecision,
        service: S,
        request: Request<ReqB>,
        quotas: Quotas,
        policy: Arc<Policy>,
        refusal: P,
    ) -> Self {
        Self::new(State::Checking {
            pending,
            deferred: Box::new(Deferred { service, request }),
            quotas,
            policy,
            refusal: Box::new(refusal),
        })
    }

    pub(crate) fn refused(future: P::Future) -> Self {
        Self::new(State::Refused { future })
    }
}

impl<S, ReqB, ResB, P> Future for ResponseFuture<S, ReqB, P>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    P: RateLimitPolicy<Request<ReqB>, Response<ResB>, S::Error>,
{
    type Output = Result<
        <P as RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>>::Response,
        <P as RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>>::Error,
    >;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Checking {
                    pending,
                    quotas,
                    policy,
                    refusal,
                    ..
                } => {
                    let decision = ready!(pending.as_mut().poll(cx));
                    let action = policy.act(&decision, quotas);
                    let mut refusal = P::clone(refusal);
                    let Some((deferred, _)) = take_deferred(&mut state) else {
                        unreachable!("in the checking state")
                    };
                    let Deferred {
                        mut service,
                        request,
                    } = *deferred;
                    let next = match action {
                        Action::Pass { wait, headers } if wait.is_zero() => State::Calling {
                            future: service.call(request),
                            headers,
                        },
                        Action::Pass { wait, headers } => State::Waiting {
                            sleep: Box::pin(tokio::time::sleep(wait)),
                            deferred: Box::new(Deferred { service, request }),
                            headers,
                        },
                        Action::Reject(limited) => State::Refused {
                            future: refusal.refuse(request, *limited),
                        },
                    };
                    state.set(next);
                }
                StateProj::Waiting { sleep, .. } => {
                    ready!(sleep.as_mut().poll(cx));
                    let Some((deferred, headers)) = take_deferred(&mut state) else {
                        unreachable!("in the waiting state")
                    };
                    let Deferred {
                        mut service,
                        request,
                    } = *deferred;
                    state.set(State::Calling {
                        future: service.call(request),
                        headers,
                    });
                }
                StateProj::Calling { future, headers } => {
                    let output = ready!(future.poll(cx));
                    let headers = headers.take();
                    state.set(State::Empty);
                    let mut response = output
                        .map_err(<P as RefusalPolicy<Request<ReqB>, RateLimited, _, _>>::error)?;
                    if let Some(headers) = headers {
                        add_headers(&mut response, *headers);
                    }
                    return Poll::Ready(Ok(<P as RefusalPolicy<
                        Request<ReqB>,
                        RateLimited,
                        _,
                        _,
                    >>::response(response)));
                }
                StateProj::Refused { future } => {
                    let output = ready!(future.poll(cx));
                    state.set(State::Empty);
                    return Poll::Ready(output);
                }
                StateProj::Empty => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

/// Moves the deferred call (and headers) out of a `Checking` or `Waiting` state, leaving
/// `Empty` in its place.
#[allow(clippy::type_complexity)]
fn take_deferred<S, ReqB, P>(
    state: &mut Pin<&mut State<S, ReqB, P>>,
) -> Option<(Box<Deferred<S, ReqB>>, Option<Box<HeaderMap>>)>
where
    S: Service<Request<ReqB>>,
    P: RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>,
{
    match state.as_mut().project_replace(State::Empty) {
        StateProjReplace::Checking { deferred, .. } => Some((deferred, None)),
        StateProjReplace::Waiting {
            deferred, headers, ..
        } => Some((deferred, headers)),
        StateProjReplace::Calling { .. }
        | StateProjReplace::Refused { .. }
        | StateProjReplace::Empty => None,
    }
}

impl<S, ReqB, P> fmt::Debug for ResponseFuture<S, ReqB, P>
where
    S: Service<Request<ReqB>>,
    P: RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
