use crate::{
    DegradeReason, DegradeSwitch, Fallback, Prioritize, Priority,
    admission::{Admit, Core},
    future::ResponseFuture,
};
use http::{Request, Response};
use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll, ready},
};
use tower_service::Service;

/// Decides per request whether the inner service or the fallback answers; made by
/// [`DegradeLayer`](crate::DegradeLayer).
///
/// # Readiness
///
/// `poll_ready` waits for the fallback (always ready for the provided rejections) and polls the
/// inner service without waiting for it: when the inner service is not ready, the next request
/// goes to the fallback with reason [`Saturated`](DegradeReason::Saturated). So the layer never
/// makes its caller wait for a busy service; it answers.
///
/// # Order of the checks in `call`
///
/// 1. the manual switch is on: fallback ([`Switch`](DegradeReason::Switch));
/// 2. the inner service is not ready: fallback ([`Saturated`](DegradeReason::Saturated));
/// 3. fewer requests in flight than the limit (a fraction of it for sheddable requests): inner;
/// 4. room in the queue: wait for a permit under the queueing-delay rule, then inner, or fallback
///    ([`QueueDelay`](DegradeReason::QueueDelay)) when the wait is too long;
/// 5. otherwise: fallback ([`Limit`](DegradeReason::Limit)).
///
/// # What the limit learns
///
/// Each answer of the inner service is a sample for the limit: the time from admission to the
/// response (not its body), the requests in flight at admission, and whether it signals overload
/// (an error, HTTP 429, 503 or 504, gRPC `RESOURCE_EXHAUSTED`, `UNAVAILABLE` or
/// `DEADLINE_EXCEEDED`). A request cancelled before its answer is not a sample.
pub struct Degrade<S, F, P> {
    inner: S,
    fallback: F,
    shared: Arc<Shared<P>>,
    primary_ready: bool,
}

pub(crate) struct Shared<P> {
    pub(crate) core: Arc<Core>,
    priority: P,
    switch: DegradeSwitch,
}

impl<S, F, P> Degrade<S, F, P> {
    pub(crate) fn from_parts(
        inner: S,
        fallback: F,
        core: Arc<Core>,
        priority: P,
        switch: DegradeSwitch,
    ) -> Self {
        Self {
            inner,
            fallback,
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

    /// The fallback.
    pub fn fallback_ref(&self) -> &F {
        &self.fallback
    }
}

impl<S: Clone, F: Clone, P> Clone for Degrade<S, F, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            fallback: self.fallback.clone(),
            shared: self.shared.clone(),
            // readiness belongs to one instance
            primary_ready: false,
        }
    }
}

impl<S: fmt::Debug, F: fmt::Debug, P: fmt::Debug> fmt::Debug for Degrade<S, F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Degrade")
            .field("inner", &self.inner)
            .field("fallback", &self.fallback)
            .field("priority", &self.shared.priority)
            .field("limit", &self.shared.core.limit())
            .field("switch", &self.shared.switch)
            .finish()
    }
}

impl<S, F, P, ReqB, ResB> Service<Request<ReqB>> for Degrade<S, F, P>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    F: Fallback<ReqB, ResB, S::Error> + Clone,
    P: Prioritize<ReqB>,
{
    type Response = F::Response;
    type Error = F::Error;
    type Future = ResponseFuture<S, F, ReqB, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.fallback.poll_ready(cx))?;
        if !self.primary_ready {
            match self.inner.poll_ready(cx) {
                Poll::Ready(Ok(())) => self.primary_ready = true,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(F::primary_error(error))),
                Poll::Pending => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let priority = self.shared.priority.priority(&request);
        if self.shared.switch.is_on() {
            return self.send_to_fallback(request, priority, DegradeReason::Switch);
        }
        if !self.primary_ready {
            return self.send_to_fallback(request, priority, DegradeReason::Saturated);
        }
        let core = &self.shared.core;
        match core.admit(priority) {
            Admit::Now(permit) => {
                self.primary_ready = false;
                if let Some(m) = core.metrics() {
                    m.primary(priority);
                }
                ResponseFuture::primary(self.inner.call(request), permit)
            }
            Admit::Wait(waiting) => {
                // The ready instance goes with the request; this one gets a fresh clone.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                self.primary_ready = false;
                ResponseFuture::queued(
                    waiting,
                    ready,
                    self.fallback.clone(),
                    request,
                    core.clone(),
                    priority,
                )
            }
            Admit::Shed(reason) => self.send_to_fallback(request, priority, reason),
        }
    }
}

impl<S, F, P> Degrade<S, F, P> {
    fn send_to_fallback<ReqB, ResB>(
        &mut self,
        request: Request<ReqB>,
        priority: Priority,
        reason: DegradeReason,
    ) -> ResponseFuture<S, F, ReqB, ResB>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
        F: Fallback<ReqB, ResB, S::Error>,
    {
        if let Some(m) = self.shared.core.metrics() {
            m.fallback(priority, reason);
        }
        ResponseFuture::fallback(self.fallback.call(request, reason))
    }
}
