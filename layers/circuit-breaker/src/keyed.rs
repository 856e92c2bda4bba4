//! One breaker per key: per upstream, per route, per tenant.

use crate::{CircuitBreaker, CircuitBreakerBuilder, ConfigError};
use std::{
    collections::HashMap,
    fmt,
    hash::Hash,
    sync::{PoisonError, RwLock},
};

/// Breakers made on demand from one configuration, one per key.
///
/// Each breaker is named `"{name}:{key}"` after the template's name, and reports to the
/// template's listener and metrics. Breakers live as long as the registry (or until
/// [`remove`](Self::remove)d): keep the key space bounded (upstreams, routes), not per client.
///
/// ```
/// use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerRegistry};
///
/// let registry = CircuitBreakerRegistry::new(CircuitBreaker::builder("upstream")).unwrap();
/// let a = registry.get(&"10.0.0.1:6379");
/// assert_eq!(a.name(), "upstream:10.0.0.1:6379");
/// assert!(a.same_as(&registry.get(&"10.0.0.1:6379")));
/// assert!(!a.same_as(&registry.get(&"10.0.0.2:6379")));
/// ```
pub struct CircuitBreakerRegistry<K> {
    template: CircuitBreakerBuilder,
    breakers: RwLock<HashMap<K, CircuitBreaker>>,
}

impl<K> fmt::Debug for CircuitBreakerRegistry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.breakers.read().map_or(0, |m| m.len());
        f.debug_struct("CircuitBreakerRegistry")
            .field("template", &self.template)
            .field("breakers", &len)
            .finish()
    }
}

impl<K> CircuitBreakerRegistry<K>
where
    K: Hash + Eq + Clone + fmt::Display,
{
    /// A registry whose breakers are built from `template` (checked now, once).
    pub fn new(template: CircuitBreakerBuilder) -> Result<Self, ConfigError> {
        template.validate()?;
        Ok(Self {
            template,
            breakers: RwLock::new(HashMap::new()),
        })
    }

    /// The breaker for `key`, made on first use.
    pub fn get(&self, key: &K) -> CircuitBreaker {
        if let Some(b) = self
            .breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return b.clone();
        }
        let mut map = self
            .breakers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        map.entry(key.clone())
            .or_insert_with(|| {
                let name = format!("{}:{key}", self.template.config.name);
                let mut config = self.template.config.clone();
                config.name = name.into();
                CircuitBreaker::from_config(config)
            })
            .clone()
    }

    /// The breaker for `key`, if one was made.
    pub fn find(&self, key: &K) -> Option<CircuitBreaker> {
        self.breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Forgets the breaker for `key`; the next [`get`](Self::get) makes a fresh one.
    pub fn remove(&self, key: &K) -> Option<CircuitBreaker> {
        self.breakers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
    }

    /// The keys and breakers made so far.
    pub fn breakers(&self) -> Vec<(K, CircuitBreaker)> {
        self.breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, b)| (k.clone(), b.clone()))
            .collect()
    }

    /// How many breakers were made.
    pub fn len(&self) -> usize {
        self.breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// `true` before the first [`get`](Self::get).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
