//! The layer that wraps services in a breaker.

use crate::{CircuitBreaker, CircuitBreakerRegistry, CircuitBreakerService, PerKey};
use espresso_common::{
    Rejection,
    classify::ServerErrorsAsFailures,
    grpc::Code,
    refusal::{Fallback, Respond, ReturnError},
};
use http::StatusCode;
use std::{fmt, sync::Arc};
use tower_layer::Layer;

/// Wraps a service in a circuit breaker.
///
/// Built from one [`CircuitBreaker`] ([`new`](Self::new)) or from a registry of per-key breakers
/// ([`per_key`](Self::per_key)); then choose what counts as a failure
/// ([`classify`](Self::classify), default [`ServerErrorsAsFailures`]) and what a refused request
/// gets, with the builder methods every espresso layer shares:
///
/// - [`respond`](Self::respond) (the default): HTTP 503 with `Retry-After` and a JSON error
///   `circuit_open`, or gRPC `UNAVAILABLE`; [`respond_with`](Self::respond_with) picks the
///   [`Rejection`];
/// - [`return_error`](Self::return_error): `Err(`[`CircuitOpen`](crate::CircuitOpen)`)`, boxed;
/// - [`fallback`](Self::fallback): another service answers.
///
/// The outcome is classified at the response head when it can be, and otherwise (a gRPC answer
/// whose status comes in the trailers, after streamed messages) when the response body ends.
/// Either way the call is timed to its response head, and a half-open probe answered with such
/// a stream counts at its head, as a success: a watch stream held open for hours is neither a
/// slow call nor a probe that keeps the breaker half-open. (A client-streaming call's head
/// comes once the callee has read the upload, so its time includes the client's pace.) To
/// count timeouts as failures, put a timeout *inside* the breaker
/// (`ServiceBuilder::new().layer(breaker).timeout(d)`), so that it returns an error the breaker
/// sees; a timeout outside it cancels the call, which counts as the builder's
/// [`dropped_call_outcome`](crate::CircuitBreakerBuilder::dropped_call_outcome), as does a
/// response body dropped before its end.
#[derive(Clone)]
pub struct CircuitBreakerLayer<B = CircuitBreaker, C = ServerErrorsAsFailures, P = Respond> {
    breaker: B,
    classify: C,
    policy: P,
}

impl<B: fmt::Debug, C, P: fmt::Debug> fmt::Debug for CircuitBreakerLayer<B, C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.breaker)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The rejection of an open breaker: 503 `circuit_open`, gRPC `UNAVAILABLE`.
fn circuit_open() -> Rejection {
    Rejection::new(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable)
        .code("circuit_open")
        .message(crate::error::OPEN_MESSAGE)
}

impl CircuitBreakerLayer {
    /// Guards every request with `breaker`.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker,
            classify: ServerErrorsAsFailures::default(),
            policy: Respond::new(circuit_open()),
        }
    }
}

impl<K, F> CircuitBreakerLayer<PerKey<K, F>> {
    /// Guards each request with the breaker of its key, `key(&request)`, from `registry`.
    pub fn per_key(registry: Arc<CircuitBreakerRegistry<K>>, key: F) -> Self {
        Self {
            breaker: PerKey::new(registry, key),
            classify: ServerErrorsAsFailures::default(),
            policy: Respond::new(circuit_open()),
        }
    }
}

impl<B, C, P> CircuitBreakerLayer<B, C, P> {
    /// Decides what counts as a failure: a [`Classify`](espresso_common::classify::Classify)
    /// policy or a closure `Fn(Result<&Res, &E>) -> Outcome`, where `Res` and `E` are the
    /// service's response and error as the refusal policy types them.
    pub fn classify<C2>(self, classify: C2) -> CircuitBreakerLayer<B, C2, P> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify,
            policy: self.policy,
        }
    }

    /// Refused HTTP requests get 503 (gRPC: `UNAVAILABLE`) with `Retry-After` when the breaker
    /// knows the rest of its wait, and `x-circuit-breaker` naming the breaker. The default.
    pub fn respond(self) -> CircuitBreakerLayer<B, C, Respond> {
        self.respond_with(circuit_open())
    }

    /// Refused requests get `rejection`, with the breaker's `Retry-After` and name added.
    pub fn respond_with(self, rejection: Rejection) -> CircuitBreakerLayer<B, C, Respond> {
        self.policy(Respond::new(rejection))
    }

    /// Refused calls fail at once with [`CircuitOpen`](crate::CircuitOpen), boxed into a
    /// `BoxError` with the inner service's errors.
    pub fn return_error(self) -> CircuitBreakerLayer<B, C, ReturnError> {
        self.policy(ReturnError)
    }

    /// Refused requests go to `service` instead; it finds the
    /// [`CircuitOpen`](crate::CircuitOpen) in the request's extensions. It answers with a body
    /// of its own type: responses carry a [`FallbackBody`](espresso_common::FallbackBody), the
    /// inner service's body or the fallback's.
    pub fn fallback<S>(self, service: S) -> CircuitBreakerLayer<B, C, Fallback<S>> {
        self.policy(Fallback::new(service))
    }

    fn policy<P2>(self, policy: P2) -> CircuitBreakerLayer<B, C, P2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify: self.classify,
            policy,
        }
    }
}

impl<S, B: Clone, C: Clone, P: Clone> Layer<S> for CircuitBreakerLayer<B, C, P> {
    type Service = CircuitBreakerService<S, B, C, P>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(
            inner,
            self.breaker.clone(),
            self.classify.clone(),
            self.policy.clone(),
        )
    }
}
