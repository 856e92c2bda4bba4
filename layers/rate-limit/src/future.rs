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
    enum State<S, ReqB, M>
    where
        S: Service<Request<ReqB>>,
        M: Mode<S::Response, S::Error>,
    {
        Checking {
            pending: PendingDecision,
            service: Option<S>,
            request: Option<Request<ReqB>>,
            quotas: Quotas,
            policy: Arc<Policy>,
        },
        Waiting {
            #[pin]
            sleep: Sleep,
            service: Option<S>,
            request: Option<Request<ReqB>>,
            headers: Option<HeaderMap>,
        },
        Calling {
            #[pin]
            future: S::Future,
            headers: Option<HeaderMap>,
        },
        Done {
            output: Option<Result<M::Response, M::Error>>,
        },
    }
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

    pub(crate) fn calling(future: S::Future, headers: Option<HeaderMap>) -> Self {
        Self::new(State::Calling { future, headers })
    }

    pub(crate) fn waiting(
        wait: Duration,
        service: S,
        request: Request<ReqB>,
        headers: Option<HeaderMap>,
    ) -> Self {
        Self::new(State::Waiting {
            sleep: tokio::time::sleep(wait),
            service: Some(service),
            request: Some(request),
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
            service: Some(service),
            request: Some(request),
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
                    service,
                    request,
                    quotas,
                    policy,
                } => {
                    let decision = ready!(pending.as_mut().poll(cx));
                    let (Some(mut svc), Some(req)) = (service.take(), request.take()) else {
                        unreachable!("the checking state holds its service and request")
                    };
                    let next = match policy.act(&decision, quotas) {
                        Action::Pass { wait, headers } if wait.is_zero() => State::Calling {
                            future: svc.call(req),
                            headers,
                        },
                        Action::Pass { wait, headers } => State::Waiting {
                            sleep: tokio::time::sleep(wait),
                            service: Some(svc),
                            request: Some(req),
                            headers,
                        },
                        Action::Reject(limited) => {
                            return Poll::Ready(M::reject(limited, &policy.rejection, &req));
                        }
                    };
                    state.set(next);
                }
                StateProj::Waiting {
                    sleep,
                    service,
                    request,
                    headers,
                } => {
                    ready!(sleep.poll(cx));
                    let (Some(mut svc), Some(req)) = (service.take(), request.take()) else {
                        unreachable!("the waiting state holds its service and request")
                    };
                    let headers = headers.take();
                    state.set(State::Calling {
                        future: svc.call(req),
                        headers,
                    });
                }
                StateProj::Calling { future, headers } => {
                    let response = ready!(future.poll(cx)).map_err(M::inner_error)?;
                    return Poll::Ready(Ok(M::pass(response, headers.take())));
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

impl<S, ReqB, M> fmt::Debug for ResponseFuture<S, ReqB, M>
where
    S: Service<Request<ReqB>>,
    M: Mode<S::Response, S::Error>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
