//! The breaker as a Tower service.

use crate::{CircuitBreaker, CircuitOpen, Permit, ResponseFuture, SelectBreaker};
use espresso_common::{
    classify::{Classify, ServerErrorsAsFailures},
    refusal::{RefusalPolicy, Respond},
};
use std::{
    fmt,
    task::{Context, Poll},
};
use tower_service::Service;

/// Guards an inner service with a circuit breaker; made by
/// [`CircuitBreakerLayer`](crate::CircuitBreakerLayer).
///
/// `B` picks the breaker per request, `C` classifies results, `P` answers refused requests (a
/// [`RefusalPolicy`]). Readiness is the inner service's; the breaker decides in `call`, so a
/// refused request never reaches the inner service.
///
/// (The tower-http naming rule would call this `CircuitBreaker<S>`; that name is the breaker
/// itself, which works without Tower.)
#[derive(Clone)]
pub struct CircuitBreakerService<S, B = CircuitBreaker, C = ServerErrorsAsFailures, P = Respond> {
    inner: S,
    breaker: B,
    classify: C,
    policy: P,
}

impl<S, B, C, P> CircuitBreakerService<S, B, C, P> {
    /// Wraps `inner`.
    pub fn new(inner: S, breaker: B, classify: C, policy: P) -> Self {
        Self {
            inner,
            breaker,
            classify,
            policy,
        }
    }

    /// The breaker selector.
    pub fn breaker(&self) -> &B {
        &self.breaker
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug, B: fmt::Debug, C, P> fmt::Debug for CircuitBreakerService<S, B, C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<S, B, C, P, Req> Service<Req> for CircuitBreakerService<S, B, C, P>
where
    S: Service<Req>,
    B: SelectBreaker<Req>,
    P: RefusalPolicy<Req, CircuitOpen, S::Response, S::Error>,
    C: Classify<P::Response, P::Error> + Clone,
{
    type Response = C::Response<Permit>;
    type Error = P::Error;
    type Future = ResponseFuture<S::Future, C, P, Req, P::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(P::error)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.breaker.select(&request).try_acquire() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(request), permit, self.classify.clone())
            }
            Err(open) => ResponseFuture::refused(self.policy.refuse(request, open)),
        }
    }
}
