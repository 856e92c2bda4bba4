//! The response future of [`Degrade`](crate::Degrade).

use crate::{
    DegradeReason, Fallback, Priority,
    admission::{Core, Permit, Waiting},
};
use espresso_common::grpc::{Code, is_grpc};
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use std::{
    future::Future,
    marker::PhantomData,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};
use tower_service::Service;

pin_project! {
    /// The answer of the inner service or of the fallback.
    pub struct ResponseFuture<S, F, ReqB, ResB>
    where
        S: Service<Request<ReqB>>,
        F: Fallback<ReqB, ResB, S::Error>,
    {
        #[pin]
        state: State<S, F, S::Future, F::Future, ReqB>,
        _body: PhantomData<fn() -> ResB>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F, PF, FF, ReqB> {
        Primary { #[pin] future: PF, permit: Option<Permit> },
        Fallback { #[pin] future: FF },
        Queued {
            waiting: Waiting,
            primary: Option<S>,
            fallback: F,
            request: Option<Request<ReqB>>,
            core: Arc<Core>,
            priority: Priority,
            reason: Option<DegradeReason>,
        },
        Done,
    }
}

impl<S, F, ReqB, ResB> ResponseFuture<S, F, ReqB, ResB>
where
    S: Service<Request<ReqB>>,
    F: Fallback<ReqB, ResB, S::Error>,
{
    pub(crate) fn primary(future: S::Future, permit: Permit) -> Self {
        Self::new(State::Primary {
            future,
            permit: Some(permit),
        })
    }

    pub(crate) fn fallback(future: F::Future) -> Self {
        Self::new(State::Fallback { future })
    }

    pub(crate) fn queued(
        waiting: Waiting,
        primary: S,
        fallback: F,
        request: Request<ReqB>,
        core: Arc<Core>,
        priority: Priority,
    ) -> Self {
        Self::new(State::Queued {
            waiting,
            primary: Some(primary),
            fallback,
            request: Some(request),
            core,
            priority,
            reason: None,
        })
    }

    fn new(state: State<S, F, S::Future, F::Future, ReqB>) -> Self {
        Self {
            state,
            _body: PhantomData,
        }
    }
}

impl<S, F, ReqB, ResB> Future for ResponseFuture<S, F, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    F: Fallback<ReqB, ResB, S::Error>,
{
    type Output = Result<F::Response, F::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Primary { future, permit } => {
                    let result = ready!(future.poll(cx));
                    if let Some(permit) = permit.take() {
                        permit.record(signals_overload(&result));
                    }
                    state.set(State::Done);
                    return Poll::Ready(match result {
                        Ok(response) => Ok(F::primary_response(response)),
                        Err(error) => Err(F::primary_error(error)),
                    });
                }
                StateProj::Fallback { future } => {
                    let output = ready!(future.poll(cx));
                    state.set(State::Done);
                    return Poll::Ready(output);
                }
                StateProj::Queued {
                    waiting,
                    primary,
                    fallback,
                    request,
                    core,
                    priority,
                    reason,
                } => {
                    if reason.is_none() {
                        match ready!(Pin::new(waiting).poll(cx)) {
                            Ok(permit) => {
                                if let Some(m) = core.metrics() {
                                    m.primary(*priority);
                                }
                                let (Some(mut service), Some(request)) =
                                    (primary.take(), request.take())
                                else {
                                    unreachable!("a queued request is sent once");
                                };
                                let future = service.call(request);
                                state.set(State::Primary {
                                    future,
                                    permit: Some(permit),
                                });
                                continue;
                            }
                            Err(shed) => {
                                if let Some(m) = core.metrics() {
                                    m.fallback(*priority, shed);
                                }
                                *reason = Some(shed);
                                // The primary instance is not needed any more.
                                primary.take();
                            }
                        }
                    }
                    ready!(fallback.poll_ready(cx))?;
                    let (Some(request), Some(shed)) = (request.take(), *reason) else {
                        unreachable!("a queued request is sent once");
                    };
                    let future = fallback.call(request, shed);
                    state.set(State::Fallback { future });
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

/// `true` when a primary answer tells the limit that the service is overloaded.
fn signals_overload<B, E>(result: &Result<Response<B>, E>) -> bool {
    let Ok(response) = result else {
        return true;
    };
    let headers = response.headers();
    if is_grpc(headers)
        && let Some(code) = headers.get("grpc-status").and_then(Code::from_header)
    {
        return matches!(
            code,
            Code::ResourceExhausted | Code::Unavailable | Code::DeadlineExceeded
        );
    }
    matches!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}
