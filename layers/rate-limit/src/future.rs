//! The response future of [`RateLimit`](crate::RateLimit).

use crate::{
    Quotas, RateLimited,
    limiter::{GiveBack, PendingDecision, Reservation},
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
    /// The response future of [`RateLimit`](crate::RateLimit): the inner call, the refusal
    /// policy's answer, or a request held back (a decision on its way from Redis, or a wait in
    /// wait mode).
    pub struct ResponseFuture<S, ReqB, P>
    where
        S: Service<Request<ReqB>>,
        P: RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>,
    {
        #[pin]
        kind: Kind<S, ReqB, P>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, ReqB, P>
    where
        S: Service<Request<ReqB>>,
        P: RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>,
    {
        // The admitted path is the inner future and nothing else to move or drop; what the
        // rare paths hold lives in a box.
        Calling {
            #[pin]
            future: S::Future,
            headers: Option<Box<HeaderMap>>,
        },
        Refused {
            #[pin]
            future: P::Future,
        },
        Held {
            held: Box<Held<S, ReqB, P>>,
        },
    }
}

/// A request not yet sent on: the ready inner service, the request, and what it waits for.
struct Held<S, ReqB, P> {
    service: S,
    request: Option<Request<ReqB>>,
    until: Until<P>,
}

/// What a held request waits for.
enum Until<P> {
    /// The backend's decision (Redis).
    Decided {
        pending: PendingDecision,
        quotas: Quotas,
        policy: Arc<Policy>,
        refusal: P,
        /// Set in wait mode, for a decision to wait.
        give_back: Option<GiveBack>,
    },
    /// The end of its wait (wait mode).
    Slept {
        sleep: Pin<Box<Sleep>>,
        headers: Option<Box<HeaderMap>>,
        reservation: Option<Reservation>,
    },
}

impl<S, ReqB, P> ResponseFuture<S, ReqB, P>
where
    S: Service<Request<ReqB>>,
    P: RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>,
{
    #[inline]
    pub(crate) fn calling(future: S::Future, headers: Option<Box<HeaderMap>>) -> Self {
        Self {
            kind: Kind::Calling { future, headers },
        }
    }

    pub(crate) fn waiting(
        wait: Duration,
        service: S,
        request: Request<ReqB>,
        headers: Option<Box<HeaderMap>>,
        reservation: Option<Reservation>,
    ) -> Self {
        Self::held(service, request, Until::slept(wait, headers, reservation))
    }

    pub(crate) fn checking(
        pending: PendingDecision,
        service: S,
        request: Request<ReqB>,
        quotas: Quotas,
        policy: Arc<Policy>,
        refusal: P,
        give_back: Option<GiveBack>,
    ) -> Self {
        Self::held(
            service,
            request,
            Until::Decided {
                pending,
                quotas,
                policy,
                refusal,
                give_back,
            },
        )
    }

    fn held(service: S, request: Request<ReqB>, until: Until<P>) -> Self {
        Self {
            kind: Kind::Held {
                held: Box::new(Held {
                    service,
                    request: Some(request),
                    until,
                }),
            },
        }
    }

    pub(crate) fn refused(future: P::Future) -> Self {
        Self {
            kind: Kind::Refused { future },
        }
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

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        loop {
            let next = match kind.as_mut().project() {
                KindProj::Calling { future, headers } => {
                    // Polled again after the answer, the inner future says what that means.
                    let mut response = ready!(future.poll(cx))
                        .map_err(<P as RefusalPolicy<Request<ReqB>, RateLimited, _, _>>::error)?;
                    if let Some(headers) = headers.take() {
                        add_headers(&mut response, *headers);
                    }
                    return Poll::Ready(Ok(<P as RefusalPolicy<
                        Request<ReqB>,
                        RateLimited,
                        _,
                        _,
                    >>::response(response)));
                }
                KindProj::Refused { future } => return future.poll(cx),
                KindProj::Held { held } => ready!(held.poll_release(cx)),
            };
            kind.set(next);
        }
    }
}

impl<P> Until<P> {
    /// A wait of `wait`, whose admission `reservation` gives back if the request is given up
    /// first.
    fn slept(
        wait: Duration,
        headers: Option<Box<HeaderMap>>,
        reservation: Option<Reservation>,
    ) -> Self {
        Until::Slept {
            sleep: Box::pin(tokio::time::sleep(wait)),
            headers,
            reservation,
        }
    }
}

impl<S, ReqB, ResB, P> Held<S, ReqB, P>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    P: RateLimitPolicy<Request<ReqB>, Response<ResB>, S::Error>,
{
    /// Waits for what the request is held for, then sends it on (or refuses it).
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<Kind<S, ReqB, P>> {
        loop {
            let headers = match &mut self.until {
                Until::Decided {
                    pending,
                    quotas,
                    policy,
                    refusal,
                    give_back,
                } => {
                    let decision = ready!(pending.as_mut().poll(cx));
                    match policy.act(&decision, quotas) {
                        Action::Reject(limited) => {
                            let request = take(&mut self.request);
                            let future = refusal.refuse(request, *limited);
                            return Poll::Ready(Kind::Refused { future });
                        }
                        Action::Pass { wait, headers } if !wait.is_zero() => {
                            let reservation =
                                give_back.take().map(|g| Reservation::new(g, decision));
                            self.until = Until::slept(wait, headers, reservation);
                            continue;
                        }
                        Action::Pass { headers, .. } => headers,
                    }
                }
                Until::Slept {
                    sleep,
                    headers,
                    reservation,
                } => {
                    ready!(sleep.as_mut().poll(cx));
                    if let Some(reservation) = reservation {
                        reservation.used();
                    }
                    headers.take()
                }
            };
            let request = take(&mut self.request);
            let future = self.service.call(request);
            return Poll::Ready(Kind::Calling { future, headers });
        }
    }
}

/// The held request, sent on once.
fn take<ReqB>(request: &mut Option<Request<ReqB>>) -> Request<ReqB> {
    match request.take() {
        Some(request) => request,
        None => panic!("ResponseFuture polled after completion"),
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
