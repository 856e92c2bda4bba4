//! The layer that wraps services in a breaker.

use crate::{
    CircuitBreaker, CircuitBreakerRegistry, CircuitBreakerService, FailFast, Fallback, PerKey,
    Respond,
};
use espresso_common::{Rejection, classify::ServerErrorsAsFailures};
use std::{fmt, sync::Arc};
use tower_layer::Layer;

/// Wraps a service in a circuit breaker.
///
/// Built from one [`CircuitBreaker`] ([`new`](Self::new)) or from a registry of per-key breakers
/// ([`per_key`](Self::per_key)); then choose what counts as a failure
/// ([`classify`](Self::classify), default [`ServerErrorsAsFailures`]) and what a rejected request
/// gets ([`fail_fast`](Self::fail_fast) by default, [`respond`](Self::respond),
/// [`respond_with`](Self::respond_with) or [`fallback`](Self::fallback)).
///
/// The outcome is classified when the inner service returns its response (for HTTP, at the
/// response head; a gRPC status sent in trailers after a streamed body is not seen, a
/// trailers-only status is). To count timeouts as failures, put a timeout *inside* the breaker
/// (`ServiceBuilder::new().layer(breaker).timeout(d)`), so that it returns an error the breaker
/// sees; a timeout outside it cancels the call, which counts as the builder's
/// [`dropped_call_outcome`](crate::CircuitBreakerBuilder::dropped_call_outcome).
#[derive(Clone)]
pub struct CircuitBreakerLayer<B = CircuitBreaker, C = ServerErrorsAsFailures, O = FailFast> {
    breaker: B,
    classify: C,
    on_open: O,
}

impl<B: fmt::Debug, C, O: fmt::Debug> fmt::Debug for CircuitBreakerLayer<B, C, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.breaker)
            .field("on_open", &self.on_open)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerLayer {
    /// Guards every request with `breaker`.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker,
            classify: ServerErrorsAsFailures::default(),
            on_open: FailFast,
        }
    }
}

impl<K, F> CircuitBreakerLayer<PerKey<K, F>> {
    /// Guards each request with the breaker of its key, `key(&request)`, from `registry`.
    pub fn per_key(registry: Arc<CircuitBreakerRegistry<K>>, key: F) -> Self {
        Self {
            breaker: PerKey::new(registry, key),
            classify: ServerErrorsAsFailures::default(),
            on_open: FailFast,
        }
    }
}

impl<B, C, O> CircuitBreakerLayer<B, C, O> {
    /// Decides what counts as a failure: a [`Classify`](espresso_common::classify::Classify)
    /// policy or a closure `Fn(Result<&Res, &E>) -> Outcome`.
    pub fn classify<C2>(self, classify: C2) -> CircuitBreakerLayer<B, C2, O> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify,
            on_open: self.on_open,
        }
    }

    /// Rejected calls fail at once with [`CallError::Open`](crate::CallError::Open).
    pub fn fail_fast(self) -> CircuitBreakerLayer<B, C, FailFast> {
        self.on_open(FailFast)
    }

    /// Rejected HTTP requests get 503 (gRPC: `UNAVAILABLE`) with `Retry-After`; see [`Respond`].
    pub fn respond(self) -> CircuitBreakerLayer<B, C, Respond> {
        self.on_open(Respond::default())
    }

    /// Rejected HTTP requests get `rejection`.
    pub fn respond_with(self, rejection: Rejection) -> CircuitBreakerLayer<B, C, Respond> {
        self.on_open(Respond::new(rejection))
    }

    /// Rejected requests go to `service` instead.
    pub fn fallback<F>(self, service: F) -> CircuitBreakerLayer<B, C, Fallback<F>> {
        self.on_open(Fallback::new(service))
    }

    /// Any [`OnOpen`](crate::OnOpen) answer.
    pub fn on_open<O2>(self, on_open: O2) -> CircuitBreakerLayer<B, C, O2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify: self.classify,
            on_open,
        }
    }
}

impl<S, B: Clone, C: Clone, O: Clone> Layer<S> for CircuitBreakerLayer<B, C, O> {
    type Service = CircuitBreakerService<S, B, C, O>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(
            inner,
            self.breaker.clone(),
            self.classify.clone(),
            self.on_open.clone(),
        )
    }
}
