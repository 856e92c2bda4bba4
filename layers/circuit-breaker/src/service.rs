//! The breaker as a Tower service.

use crate::{CircuitBreaker, FailFast, OnOpen, ResponseFuture, SelectBreaker};
use espresso_common::classify::{Classify, ServerErrorsAsFailures};
use std::{
    fmt,
    task::{Context, Poll},
};
use tower_service::Service;

/// Guards an inner service with a circuit breaker; made by
/// [`CircuitBreakerLayer`](crate::CircuitBreakerLayer).
///
/// `B` picks the breaker per request, `C` classifies results, `O` answers rejected requests.
/// Readiness is the inner service's; the breaker decides in `call`, so a rejected request never
/// reaches the inner service.
#[derive(Clone)]
pub struct CircuitBreakerService<S, B = CircuitBreaker, C = ServerErrorsAsFailures, O = FailFast> {
    inner: S,
    breaker: B,
    classify: C,
    on_open: O,
}

impl<S, B, C, O> CircuitBreakerService<S, B, C, O> {
    /// Wraps `inner`.
    pub fn new(inner: S, breaker: B, classify: C, on_open: O) -> Self {
        Self {
            inner,
            breaker,
            classify,
            on_open,
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

impl<S: fmt::Debug, B: fmt::Debug, C, O> fmt::Debug for CircuitBreakerService<S, B, C, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<S, B, C, O, Req> Service<Req> for CircuitBreakerService<S, B, C, O>
where
    S: Service<Req>,
    B: SelectBreaker<Req>,
    C: Classify<S::Response, S::Error> + Clone,
    O: OnOpen<Req, S::Response, S::Error>,
{
    type Response = O::Response;
    type Error = O::Error;
    type Future = ResponseFuture<S::Future, C, O, O::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(O::error)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.breaker.select(&request).try_acquire() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(request), permit, self.classify.clone())
            }
            Err(open) => ResponseFuture::rejected(self.on_open.rejected(request, open)),
        }
    }
}
