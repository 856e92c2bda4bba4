//! [`RateLimitLayer`]: the builder of the rate-limit middleware.

use crate::{
    Backend, HeaderMode, KeyExtractor, Limiter, MissingKey, PeerIp, QuotaHandle, Quotas,
    RateLimitMetrics, Respond, ReturnError,
    service::{Policy, RateLimit, Shared},
};
use espresso_common::{Rejection, grpc::Code};
use http::StatusCode;
use std::{fmt, marker::PhantomData, sync::Arc, time::Duration};
use tower_layer::Layer;

/// Applies [`RateLimit`] to a service: keyed GCRA with plain-words quotas.
///
/// Built with [`RateLimitLayer::new`] and builder methods; clones (and every service the layer
/// makes) share one limiter. The default key is [`PeerIp`] trusting no proxy, the default
/// backend is in-process memory capped at 100 000 keys, refusals are 429 / gRPC
/// `RESOURCE_EXHAUSTED` responses with `Retry-After` and the `RateLimit` headers.
///
/// With the default key, a request must carry its peer address (see [`PeerIp`]): an axum app
/// served without `into_make_service_with_connect_info` has none, and then every request
/// shares one bucket ([`MissingKey::SharedBucket`]).
///
/// Methods that choose the limiter's shape (`key`, `backend`, `name`, `metrics`) build a new
/// limiter: call them first, then take [`handle`](Self::handle) or [`limiter`](Self::limiter).
pub struct RateLimitLayer<K: KeyExtractor = PeerIp, M = Respond> {
    extractor: Arc<K>,
    quotas: QuotaHandle<K::Key>,
    backend: Backend,
    metrics: Option<RateLimitMetrics>,
    name: Arc<str>,
    limiter: Limiter<K::Key>,
    policy: PolicyConfig,
    _mode: PhantomData<fn() -> M>,
}

#[derive(Clone)]
struct PolicyConfig {
    shadow: bool,
    header_mode: HeaderMode,
    max_delay: Duration,
    missing_key: MissingKey,
    rejection: Rejection,
}

impl RateLimitLayer {
    /// A layer enforcing `quotas` per client IP, in memory.
    ///
    /// ```
    /// use espresso_rate_limit::{Quota, RateLimitLayer};
    ///
    /// let layer = RateLimitLayer::new(Quota::per_second(100).burst(200));
    /// let both = RateLimitLayer::new([Quota::per_second(10), Quota::per_hour(1000)]);
    /// ```
    pub fn new(quotas: impl Into<Quotas>) -> Self {
        let quotas = QuotaHandle::new(quotas.into());
        let name: Arc<str> = Arc::from("default");
        let backend = Backend::default();
        let limiter = Limiter::new(name.clone(), quotas.clone(), &backend, None);
        Self {
            extractor: Arc::new(PeerIp::new()),
            quotas,
            backend,
            metrics: None,
            name,
            limiter,
            policy: PolicyConfig {
                shadow: false,
                header_mode: HeaderMode::default(),
                max_delay: Duration::ZERO,
                missing_key: MissingKey::default(),
                rejection: Rejection::new(StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted)
                    .code("rate_limited")
                    .message("too many requests"),
            },
            _mode: PhantomData,
        }
    }
}

impl<K: KeyExtractor, M> RateLimitLayer<K, M> {
    fn rebuild(mut self) -> Self {
        let metrics = self.metrics.as_ref().map(|m| m.for_limiter(&self.name));
        self.limiter = Limiter::new(
            self.name.clone(),
            self.quotas.clone(),
            &self.backend,
            metrics.as_ref(),
        );
        self
    }

    /// Keys requests with `extractor` (a [`KeyExtractor`] or a closure). Per-key overrides set
    /// before are dropped (they were keyed by the old key type).
    pub fn key<K2: KeyExtractor>(self, extractor: K2) -> RateLimitLayer<K2, M> {
        let quotas = QuotaHandle::new(self.quotas.quotas());
        RateLimitLayer {
            extractor: Arc::new(extractor),
            limiter: Limiter::new(self.name.clone(), quotas.clone(), &self.backend, None),
            quotas,
            backend: self.backend,
            metrics: self.metrics,
            name: self.name,
            policy: self.policy,
            _mode: PhantomData,
        }
        .rebuild()
    }

    /// Stores state in `backend`: a [`MemoryBackend`](crate::MemoryBackend) or a
    /// `RedisBackend` (feature `redis`).
    pub fn backend(mut self, backend: impl Into<Backend>) -> Self {
        self.backend = backend.into();
        self.rebuild()
    }

    /// Names the limiter: the `limiter` label of its metrics, part of its Redis keys, and its
    /// log lines (default `"default"`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self.rebuild()
    }

    /// Counts decisions into `metrics` under this limiter's name.
    pub fn metrics(mut self, metrics: &RateLimitMetrics) -> Self {
        self.metrics = Some(metrics.clone());
        self.rebuild()
    }

    /// Gives `key` its own quotas (see [`QuotaHandle::set_override`]).
    pub fn override_quota(self, key: K::Key, quotas: impl Into<Quotas>) -> Self {
        self.quotas.set_override(key, quotas);
        self
    }

    /// Chooses quotas per key with a closure (see [`QuotaHandle::set_resolver`]).
    pub fn overrides<F>(self, resolver: F) -> Self
    where
        F: Fn(&K::Key) -> Option<Quotas> + Send + Sync + 'static,
    {
        self.quotas.set_resolver(resolver);
        self
    }

    /// Shadow mode: refusals are counted (`decision="shadow_limited"`) and logged at debug
    /// level, and the request goes on at once (no waiting either, whatever
    /// [`wait_up_to`](Self::wait_up_to) says). For rolling out a limit safely.
    pub fn shadow(mut self, shadow: bool) -> Self {
        self.policy.shadow = shadow;
        self
    }

    /// Holds a request that is over its quota for up to `max_delay` instead of refusing it,
    /// like nginx's `limit_req ... delay`: the request takes the next free slot and goes on
    /// when it comes; one whose slot is further away than `max_delay` is refused. Held
    /// requests count as `decision="delayed"`.
    pub fn wait_up_to(mut self, max_delay: Duration) -> Self {
        self.policy.max_delay = max_delay;
        self
    }

    /// When to add the `RateLimit` / `RateLimit-Policy` headers (default: on refusals).
    pub fn headers(mut self, mode: HeaderMode) -> Self {
        self.policy.header_mode = mode;
        self
    }

    /// What requests without a key count against (default: one shared bucket).
    pub fn on_missing_key(mut self, missing: MissingKey) -> Self {
        self.policy.missing_key = missing;
        self
    }

    /// The error message of refusals (default `"too many requests"`; code `rate_limited`).
    pub fn message(mut self, message: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.policy.rejection = self.policy.rejection.message(message);
        self
    }

    /// Refuses with `Err(`[`RateLimited`](crate::RateLimited)`)` (boxed) instead of a response,
    /// for stacks that turn errors into responses themselves (axum `HandleErrorLayer`).
    pub fn error_mode(self) -> RateLimitLayer<K, ReturnError> {
        RateLimitLayer {
            extractor: self.extractor,
            quotas: self.quotas,
            backend: self.backend,
            metrics: self.metrics,
            name: self.name,
            limiter: self.limiter,
            policy: self.policy,
            _mode: PhantomData,
        }
    }

    /// The handle changing quotas at runtime.
    pub fn handle(&self) -> QuotaHandle<K::Key> {
        self.quotas.clone()
    }

    /// The limiter, for checks outside a Tower stack.
    pub fn limiter(&self) -> Limiter<K::Key> {
        self.limiter.clone()
    }
}

impl<K: KeyExtractor, M> Clone for RateLimitLayer<K, M> {
    fn clone(&self) -> Self {
        Self {
            extractor: self.extractor.clone(),
            quotas: self.quotas.clone(),
            backend: self.backend.clone(),
            metrics: self.metrics.clone(),
            name: self.name.clone(),
            limiter: self.limiter.clone(),
            policy: self.policy.clone(),
            _mode: PhantomData,
        }
    }
}

impl<K: KeyExtractor, M> fmt::Debug for RateLimitLayer<K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("name", &self.name)
            .field("quotas", &self.quotas.quotas())
            .field("backend", &self.backend)
            .field("shadow", &self.policy.shadow)
            .field("headers", &self.policy.header_mode)
            .field("max_delay", &self.policy.max_delay)
            .field("missing_key", &self.policy.missing_key)
            .finish()
    }
}

impl<S, K: KeyExtractor, M> Layer<S> for RateLimitLayer<K, M> {
    type Service = RateLimit<S, K, M>;

    fn layer(&self, inner: S) -> Self::Service {
        let policy = Policy {
            name: self.name.clone(),
            shadow: self.policy.shadow,
            header_mode: self.policy.header_mode,
            // Shadow mode must not change traffic: no request is held either.
            max_delay: if self.policy.shadow {
                Duration::ZERO
            } else {
                self.policy.max_delay
            },
            missing_key: self.policy.missing_key,
            rejection: self.policy.rejection.clone(),
            metrics: self.metrics.as_ref().map(|m| m.for_limiter(&self.name)),
        };
        RateLimit::new(
            inner,
            Arc::new(Shared {
                extractor: self.extractor.clone(),
                limiter: self.limiter.clone(),
                policy: Arc::new(policy),
            }),
        )
    }
}
