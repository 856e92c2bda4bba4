use crate::{
    DegradeReason, DegradeSwitch, Prioritize, Priority, PriorityHeader, Shed,
    admission::{Admit, Core, Permit},
    future::ResponseFuture,
};
use espresso_common::{
    classify::{Classify, ServerErrorsAsFailures},
    refusal::{RefusalPolicy, Respond},
};
use http::Request;
use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};
use tower_service::Service;

/// Decides per request whether the inner service or the fallback answers; made by
/// [`DegradeLayer`](crate::DegradeLayer).
///
/// # Readiness
///
/// `poll_ready` polls the inner service without waiting for it: when the inner service is not
/// ready, the next request is shed with reason [`Saturated`](DegradeReason::Saturated). So the
/// layer never makes its caller wait for a busy service; it answers. (A fallback service is
/// driven to readiness for the request it answers.) A `call` without `poll_ready` before it
/// polls the inner service itself, once, as `poll_ready` would have.
///
/// # Order of the checks in `call`
///
/// 1. the manual switch is on: shed ([`Switch`](DegradeReason::Switch));
/// 2. the inner service is not ready: shed ([`Saturated`](DegradeReason::Saturated));
/// 3. fewer requests in flight than the limit (a fraction of it for sheddable requests): inner;
/// 4. room in the queue: wait for a permit under the queueing-delay rule, then inner, or shed
///    ([`QueueDelay`](DegradeReason::QueueDelay)) when the wait is too long;
/// 5. otherwise: shed ([`Limit`](DegradeReason::Limit)).
///
/// A shed request is answered by the refusal policy `P` (a rejection, an error, or a fallback
/// service).
///
/// # What the limit learns
///
/// Each answer of the inner service is a sample for the limit: the time from admission to its
/// response head, the requests in flight at admission, and whether it signals overload (the
/// classifier's [`Failure`](espresso_common::classify::Outcome::Failure); by default an error,
/// HTTP 429, 503 or 504, gRPC `RESOURCE_EXHAUSTED`, `UNAVAILABLE` or `DEADLINE_EXCEEDED`). The
/// request holds its place in the limit until its response head. A gRPC answer whose status
/// comes in the trailers (a stream, or a unary answer with its message) is sampled at its head
/// as a success and frees its place there: what follows is paced by the client, and a watch
/// stream held open for minutes must neither hold a place nor count as one long round trip. A
/// client-streaming call's head comes once the service has read the upload, so its place and
/// sample include the client's pace. A request cancelled before its head is not a sample.
pub struct Degrade<S, P = Respond, Q = PriorityHeader, C = ServerErrorsAsFailures> {
    inner: S,
    policy: P,
    classify: C,
    shared: Arc<Shared<Q>>,
    primary_ready: bool,
}

pub(crate) struct Shared<Q> {
    pub(crate) core: Arc<Core>,
    priority: Q,
    switch: DegradeSwitch,
}

impl<S, P, Q, C> Degrade<S, P, Q, C> {
    pub(crate) fn from_parts(
        inner: S,
        policy: P,
        classify: C,
        core: Arc<Core>,
        priority: Q,
        switch: DegradeSwitch,
    ) -> Self {
        Self {
            inner,
            policy,
            classify,
            shared: Arc::new(Shared {
                core,
                priority,
                switch,
            }),
            primary_ready: false,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The refusal policy answering shed requests.
    pub fn policy(&self) -> &P {
        &self.policy
    }
}

impl<S: Clone, P: Clone, Q, C: Clone> Clone for Degrade<S, P, Q, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            policy: self.policy.clone(),
            classify: self.classify.clone(),
            shared: self.shared.clone(),
            // readiness belongs to one instance
            primary_ready: false,
        }
    }
}

impl<S: fmt::Debug, P: fmt::Debug, Q: fmt::Debug, C> fmt::Debug for Degrade<S, P, Q, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Degrade")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .field("priority", &self.shared.priority)
            .field("limit", &self.shared.core.limit())
            .field("switch", &self.shared.switch)
            .finish_non_exhaustive()
    }
}

impl<S, P, Q, C, ReqB> Service<Request<ReqB>> for Degrade<S, P, Q, C>
where
    S: Service<Request<ReqB>> + Clone,
    P: RefusalPolicy<Request<ReqB>, Shed, S::Response, S::Error> + Clone,
    C: Classify<P::Response, P::Error> + Clone,
    Q: Prioritize<ReqB>,
{
    type Response = C::Response<Permit>;
    type Error = P::Error;
    type Future = ResponseFuture<S, P, C, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.primary_ready {
            match self.inner.poll_ready(cx) {
                Poll::Ready(Ok(())) => self.primary_ready = true,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(P::error(error))),
                Poll::Pending => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let priority = self.shared.priority.priority(&request);
        if self.shared.switch.is_on() {
            return self.shed(request, priority, DegradeReason::Switch);
        }
        if !self.primary_ready && !self.poll_inner_once() {
            return self.shed(request, priority, DegradeReason::Saturated);
        }
        let core = &self.shared.core;
        match core.admit(priority) {
            Admit::Now(permit) => {
                self.primary_ready = false;
                if let Some(m) = core.metrics() {
                    m.primary(priority);
                }
                ResponseFuture::primary(self.inner.call(request), permit, self.classify.clone())
            }
            Admit::Wait(waiting) => {
                // The ready instance goes with the request; this one gets a fresh clone.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                self.primary_ready = false;
                ResponseFuture::queued(
                    waiting,
                    ready,
                    self.policy.clone(),
                    self.classify.clone(),
                    request,
                    core.clone(),
                    priority,
                )
            }
            Admit::Shed(reason) => self.shed(request, priority, reason),
        }
    }
}

impl<S, P, Q, C> Degrade<S, P, Q, C> {
    /// Polls the inner service for readiness once more, as `poll_ready` would have: a caller
    /// may call without `poll_ready` (hand-written hyper glue does), and `poll_ready` never
    /// waits anyway, so no waker is needed. Says whether it is ready.
    fn poll_inner_once<ReqB>(&mut self) -> bool
    where
        S: Service<Request<ReqB>>,
    {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.primary_ready = matches!(self.inner.poll_ready(&mut cx), Poll::Ready(Ok(())));
        self.primary_ready
    }

    fn shed<ReqB>(
        &mut self,
        request: Request<ReqB>,
        priority: Priority,
        reason: DegradeReason,
    ) -> ResponseFuture<S, P, C, ReqB>
    where
        S: Service<Request<ReqB>>,
        P: RefusalPolicy<Request<ReqB>, Shed, S::Response, S::Error>,
    {
        if let Some(m) = self.shared.core.metrics() {
            m.fallback(priority, reason);
        }
        ResponseFuture::shed(self.policy.refuse(request, Shed::new(reason)))
    }
}
