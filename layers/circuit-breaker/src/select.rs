//! Which breaker guards a request: one for all, or one per key.

use crate::{CircuitBreaker, CircuitBreakerRegistry};
use std::{fmt, hash::Hash, sync::Arc};

/// Picks the breaker that guards a request.
///
/// Implemented by [`CircuitBreaker`] (the same one for every request) and by [`PerKey`].
pub trait SelectBreaker<Req> {
    /// The breaker for `request`.
    fn select(&self, request: &Req) -> CircuitBreaker;
}

impl<Req> SelectBreaker<Req> for CircuitBreaker {
    fn select(&self, _: &Req) -> CircuitBreaker {
        self.clone()
    }
}

/// One breaker per key, the key read from the request by a closure `Fn(&Req) -> K`.
pub struct PerKey<K, F> {
    registry: Arc<CircuitBreakerRegistry<K>>,
    key: F,
}

impl<K, F> PerKey<K, F> {
    /// Breakers from `registry`, keyed by `key(&request)`.
    pub fn new(registry: Arc<CircuitBreakerRegistry<K>>, key: F) -> Self {
        Self { registry, key }
    }

    /// The registry holding the breakers.
    pub fn registry(&self) -> &Arc<CircuitBreakerRegistry<K>> {
        &self.registry
    }
}

impl<K, F: Clone> Clone for PerKey<K, F> {
    fn clone(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            key: self.key.clone(),
        }
    }
}

impl<K, F> fmt::Debug for PerKey<K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerKey")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl<Req, K, F> SelectBreaker<Req> for PerKey<K, F>
where
    K: Hash + Eq + Clone + fmt::Display,
    F: Fn(&Req) -> K,
{
    fn select(&self, request: &Req) -> CircuitBreaker {
        self.registry.get(&(self.key)(request))
    }
}
