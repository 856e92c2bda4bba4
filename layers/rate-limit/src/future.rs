//! The response future of [`RateLimit`](crate::RateLimit).

use crate::{
    Quotas,
    limiter::PendingDecision,
    service::{Action, Mode, Policy},
};
use http::{HeaderMap, Request};
use pin_project_lite::pin_project;
use std::{
    fmt,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};
use tokio::time::Sleep;
use tower_service::Service;

pin_project! {
    /// The response future of [`RateLimit`](crate::RateLimit): a decision on its way (Redis),
    /// a wait (wait mode), the inner call, or a refusal.
    pub struct ResponseFuture<S, ReqB, M>
    where
        S: Service<Request<ReqB>>,
        M: Mode<S::Response, S::Error>,
    {
        #[pin]
        state: State<S, ReqB, M>,
        _mode: PhantomData<fn() -> M>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateProjReplace]
    enum State<S, ReqB, M>
    where
        S: Service<Request<ReqB>>,
        M: Mode<S::Response, S::Error>,
    {
        // The rare paths keep what they hold in a box, so the common future (`Calling`) stays
        // small: a request alone is a couple of hundred bytes.
        Checking {
            pending: PendingDecision,
            deferred: Box<Deferred<S, ReqB>>,
            quotas: Quotas,
            policy: Arc<Policy>,
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
        Done {
            output: Option<Result<M::Response, M::Error>>,
        },
    }
}

/// The ready inner service and the request it will be called with.
struct Deferred<S, ReqB> {
    service: S,
    request: Request<ReqB>,
}

impl<S, ReqB, M> ResponseFuture<S, ReqB, M>
where
    S: Service<Request<ReqB>>,
    M: Mode<S::Response, S::Error>,
{
    fn new(state: State<S, ReqB, M>) -> Self {
        Self {
            state,
            _mode: PhantomData,
        }
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
    ) -> Self {
        Self::new(State::Checking {
            pending,
            deferred: Box::new(Deferred { service, request }),
            quotas,
            policy,
        })
    }

    pub(crate) fn done(output: Result<M::Response, M::Error>) -> Self {
        Self::new(State::Done {
            output: Some(output),
        })
    }
}

impl<S, ReqB, M> Future for ResponseFuture<S, ReqB, M>
where
    S: Service<Request<ReqB>>,
    M: Mode<S::Response, S::Error>,
{
    type Output = Result<M::Response, M::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Checking {
                    pending,
                    quotas,
                    policy,
                    ..
                } => {
                    let decision = ready!(pending.as_mut().poll(cx));
                    let action = policy.act(&decision, quotas);
                    let policy = policy.clone();
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
                        Action::Reject(limited) => {
                            return Poll::Ready(M::reject(*limited, &policy.rejection, &request));
                        }
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
                    let response = ready!(future.poll(cx)).map_err(M::inner_error)?;
                    return Poll::Ready(Ok(M::pass(response, headers.take().map(|h| *h))));
                }
                StateProj::Done { output } => {
                    return Poll::Ready(
                        output
                            .take()
                            .expect("ResponseFuture polled after completion"),
                    );
                }
            }
        }
    }
}

/// Moves the deferred call (and headers) out of a `Checking` or `Waiting` state, leaving an
/// empty `Done` in its place.
#[allow(clippy::type_complexity)]
fn take_deferred<S, ReqB, M>(
    state: &mut Pin<&mut State<S, ReqB, M>>,
) -> Option<(Box<Deferred<S, ReqB>>, Option<Box<HeaderMap>>)>
where
    S: Service<Request<ReqB>>,
    M: Mode<S::Response, S::Error>,
{
    match state.as_mut().project_replace(State::Done { output: None }) {
        StateProjReplace::Checking { deferred, .. } => Some((deferred, None)),
        StateProjReplace::Waiting {
            deferred, headers, ..
        } => Some((deferred, headers)),
        StateProjReplace::Calling { .. } | StateProjReplace::Done { .. } => None,
    }
}

impl<S, ReqB, M> fmt::Debug for ResponseFuture<S, ReqB, M>
where
    S: Service<Request<ReqB>>,
    M: Mode<S::Response, S::Error>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
