//! The limiter behind a layer: quotas (with overrides and runtime changes) and a backend.

#[cfg(feature = "metrics")]
use crate::metrics::LimiterMetrics;
use crate::{
    Decision, LimitKey, Quotas,
    backend::memory::{MemoryBackend, Store},
};
use arc_swap::{ArcSwap, Guard};
use std::{
    borrow::Cow,
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// A boxed decision on its way (the Redis backend).
pub(crate) type PendingDecision = Pin<Box<dyn Future<Output = Decision> + Send + 'static>>;

/// A decision now, or one on its way.
pub(crate) enum Checked {
    Ready(Decision),
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Pending(PendingDecision),
}

/// A closure choosing a key's quotas (`None`: the default ones).
pub(crate) type Resolver<Key> = Arc<dyn Fn(&Key) -> Option<Quotas> + Send + Sync>;

/// The quotas in force: the default ones, per-key overrides, an override closure.
pub(crate) struct QuotaConfig<Key> {
    pub(crate) default: Quotas,
    pub(crate) overrides: HashMap<Key, Quotas>,
    pub(crate) resolver: Option<Resolver<Key>>,
}

impl<Key> Clone for QuotaConfig<Key>
where
    Key: Clone,
{
    fn clone(&self) -> Self {
        Self {
            default: self.default.clone(),
            overrides: self.overrides.clone(),
            resolver: self.resolver.clone(),
        }
    }
}

impl<Key: LimitKey> QuotaConfig<Key> {
    pub(crate) fn new(default: Quotas) -> Self {
        Self {
            default,
            overrides: HashMap::new(),
            resolver: None,
        }
    }

    /// The quotas for `key`: the map, then the closure, then the default. Requests without a
    /// key use the default quotas.
    #[inline]
    pub(crate) fn resolve(&self, key: Option<&Key>) -> Cow<'_, Quotas> {
        let Some(key) = key else {
            return Cow::Borrowed(&self.default);
        };
        if let Some(q) = self.overrides.get(key) {
            return Cow::Borrowed(q);
        }
        if let Some(q) = self.resolver.as_ref().and_then(|f| f(key)) {
            return Cow::Owned(q);
        }
        Cow::Borrowed(&self.default)
    }
}

/// Changes a limiter's quotas while it runs; every key keeps its state.
///
/// Each key's state is its theoretical arrival time per quota, an absolute instant, so a new
/// quota applies to the history the key already has: a key that just spent its burst under the
/// old quota is not handed a fresh one.
///
/// With several quotas, that history is kept by place in the list: the first quota of the new
/// set goes on from the first of the old, and so on; a quota added at the end starts fresh.
/// Keep each quota in its place to keep its history: removing or moving one in front of others
/// hands them another quota's history (`[per_second, per_minute]` changed to `[per_minute]`
/// would give the minute quota the second quota's history), and [`set`](Self::set) logs a WARN
/// when a named quota changes place.
///
/// ```
/// use espresso_rate_limit::{Global, Quota, RateLimitLayer};
///
/// let layer = RateLimitLayer::new(Quota::per_second(100)).key(Global::new());
/// let handle = layer.quota_handle();
/// // Later, from an admin endpoint or a config reload:
/// handle.set(Quota::per_second(50).burst(10));
/// handle.set_override((), Quota::per_second(1000));
/// assert_eq!(handle.quotas_for(&()).iter().next().unwrap().count(), 1000);
/// ```
pub struct QuotaHandle<Key> {
    config: Arc<Versioned<Key>>,
}

/// The quotas in force and how many times they changed, so a service can keep its own copy
/// and look at one counter per request instead of loading the shared config.
struct Versioned<Key> {
    current: ArcSwap<QuotaConfig<Key>>,
    /// Bumped after every change of `current`.
    version: AtomicU64,
}

/// A service's copy of the quotas in force, refreshed when they change.
///
/// Servers often clone a service for every request (hyper-util, axum), and taking a copy
/// (an `Arc` clone, a write to a counter every core shares) would cost such a service more
/// than it saves. So a service's first request borrows the shared config as before, and only
/// a service called again keeps a copy.
pub(crate) struct CachedConfig<Key> {
    version: u64,
    config: Option<Arc<QuotaConfig<Key>>>,
    called: bool,
}

/// The quotas in force for one request: the service's copy, or the shared config.
pub(crate) enum ConfigRef<'a, Key> {
    Cached(&'a QuotaConfig<Key>),
    Shared(Guard<Arc<QuotaConfig<Key>>>),
}

impl<Key> std::ops::Deref for ConfigRef<'_, Key> {
    type Target = QuotaConfig<Key>;

    fn deref(&self) -> &QuotaConfig<Key> {
        match self {
            ConfigRef::Cached(config) => config,
            ConfigRef::Shared(guard) => guard,
        }
    }
}

impl<Key> CachedConfig<Key> {
    /// An empty copy.
    pub(crate) fn new() -> Self {
        Self {
            version: 0,
            config: None,
            called: false,
        }
    }

    /// The quotas in force: this copy while the handle's version is unchanged. A change made
    /// while a request is being decided applies from the next request.
    #[inline]
    pub(crate) fn get(&mut self, handle: &QuotaHandle<Key>) -> ConfigRef<'_, Key> {
        let version = handle.config.version.load(Ordering::Acquire);
        if self.config.is_none() || self.version != version {
            if !self.called {
                self.called = true;
                return ConfigRef::Shared(handle.config.current.load());
            }
            self.version = version;
            self.config = Some(handle.config.current.load_full());
        }
        match &self.config {
            Some(config) => ConfigRef::Cached(config),
            None => unreachable!("loaded above"),
        }
    }
}

/// Logs a WARN for each named quota of `new` that is in another place in `old`: keys keep
/// their history by place, so it would go on from another quota's.
fn warn_if_moved(old: &Quotas, new: &Quotas) {
    for (at, quota) in new.iter().enumerate() {
        let Some(name) = quota.name() else { continue };
        if let Some(was) = old.iter().position(|q| q.name() == Some(name))
            && was != at
        {
            tracing::warn!(
                quota = name,
                from = was,
                to = at,
                "rate limit quota changes place in the list: keys keep their history by place, \
                 so it goes on from another quota's; keep each quota in its place (add new ones \
                 at the end)"
            );
        }
    }
}

impl<Key> Clone for QuotaHandle<Key> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
        }
    }
}

impl<Key> fmt::Debug for QuotaHandle<Key> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuotaHandle")
            .field("default", &self.config.current.load().default)
            .field("overrides", &self.config.current.load().overrides.len())
            .finish()
    }
}

impl<Key: LimitKey> QuotaHandle<Key> {
    pub(crate) fn new(default: Quotas) -> Self {
        Self {
            config: Arc::new(Versioned {
                current: ArcSwap::from_pointee(QuotaConfig::new(default)),
                version: AtomicU64::new(0),
            }),
        }
    }

    pub(crate) fn load(&self) -> Guard<Arc<QuotaConfig<Key>>> {
        self.config.current.load()
    }

    fn update(&self, f: impl Fn(&mut QuotaConfig<Key>)) {
        self.config.current.rcu(|current| {
            let mut next = QuotaConfig::clone(current);
            f(&mut next);
            next
        });
        self.config.version.fetch_add(1, Ordering::Release);
    }

    /// Replaces the default quotas.
    pub fn set(&self, quotas: impl Into<Quotas>) {
        let quotas = quotas.into();
        warn_if_moved(&self.load().default, &quotas);
        self.update(|c| c.default = quotas.clone());
    }

    /// Gives `key` its own quotas.
    pub fn set_override(&self, key: Key, quotas: impl Into<Quotas>) {
        let quotas = quotas.into();
        self.update(|c| {
            c.overrides.insert(key.clone(), quotas.clone());
        });
    }

    /// Removes `key`'s own quotas; it falls back to the override closure or the default.
    pub fn remove_override(&self, key: &Key) {
        self.update(|c| {
            c.overrides.remove(key);
        });
    }

    /// Chooses quotas per key with a closure (`None`: the default), consulted after the
    /// per-key map. Called on every request, so keep it cheap (clone prebuilt [`Quotas`]).
    pub fn set_resolver<F>(&self, resolver: F)
    where
        F: Fn(&Key) -> Option<Quotas> + Send + Sync + 'static,
    {
        let resolver: Resolver<Key> = Arc::new(resolver);
        self.update(|c| c.resolver = Some(resolver.clone()));
    }

    /// The default quotas.
    pub fn quotas(&self) -> Quotas {
        self.load().default.clone()
    }

    /// The quotas that apply to `key` now.
    pub fn quotas_for(&self, key: &Key) -> Quotas {
        self.load().resolve(Some(key)).into_owned()
    }
}

/// What a layer was told to store its state in.
#[derive(Debug, Clone)]
pub enum Backend {
    /// In this process (the default).
    Memory(MemoryBackend),
    /// In Redis, shared by every instance (feature `redis`).
    #[cfg(feature = "redis")]
    Redis(Box<crate::backend::RedisBackend>),
}

impl Default for Backend {
    fn default() -> Self {
        Backend::Memory(MemoryBackend::default())
    }
}

impl From<MemoryBackend> for Backend {
    fn from(b: MemoryBackend) -> Self {
        Backend::Memory(b)
    }
}

#[cfg(feature = "redis")]
impl From<crate::backend::RedisBackend> for Backend {
    fn from(b: crate::backend::RedisBackend) -> Self {
        Backend::Redis(Box::new(b))
    }
}

enum BackendImpl<Key> {
    Memory(Store<Option<Key>>),
    #[cfg(feature = "redis")]
    Redis(crate::backend::redis::RedisLimiter<Key>),
}

/// A rate limiter: quotas, a backend, a name. Cheap to clone; clones share state.
///
/// Layers build one; [`RateLimitLayer::limiter`](crate::RateLimitLayer::limiter) hands it out
/// for checks outside a Tower stack (a job queue, a WebSocket message loop):
///
/// ```
/// use espresso_rate_limit::{Quota, RateLimitLayer};
///
/// # tokio_test_block_on(async {
/// let layer = RateLimitLayer::new(Quota::per_second(1)).key(|_: &http::request::Parts| Some(0u64));
/// let limiter = layer.limiter();
/// assert!(limiter.check(&7).await.is_allowed());
/// assert!(!limiter.check(&7).await.is_allowed());
/// assert!(limiter.check(&8).await.is_allowed());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
/// # }
/// ```
pub struct Limiter<Key> {
    inner: Arc<LimiterInner<Key>>,
}

struct LimiterInner<Key> {
    name: Arc<str>,
    quotas: QuotaHandle<Key>,
    backend: BackendImpl<Key>,
    /// This limiter's series, for the layer's decisions.
    #[cfg(feature = "metrics")]
    metrics: Option<LimiterMetrics>,
}

impl<Key> Clone for Limiter<Key> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<Key> fmt::Debug for Limiter<Key> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self.inner.backend {
            BackendImpl::Memory(_) => "memory",
            #[cfg(feature = "redis")]
            BackendImpl::Redis(_) => "redis",
        };
        f.debug_struct("Limiter")
            .field("name", &self.inner.name)
            .field("backend", &backend)
            .finish()
    }
}

impl<Key: LimitKey> Limiter<Key> {
    pub(crate) fn new(
        name: Arc<str>,
        quotas: QuotaHandle<Key>,
        backend: &Backend,
        #[cfg(feature = "metrics")] metrics: Option<&LimiterMetrics>,
    ) -> Self {
        let backend = match backend {
            Backend::Memory(config) => {
                let store = Store::new(*config);
                #[cfg(feature = "metrics")]
                let store = store.with_evictions(metrics.map(|m| m.evictions.clone()));
                BackendImpl::Memory(store)
            }
            #[cfg(feature = "redis")]
            Backend::Redis(config) => {
                #[cfg(feature = "metrics")]
                let redis =
                    crate::backend::redis::RedisLimiter::new(config, &name, metrics.cloned());
                #[cfg(not(feature = "metrics"))]
                let redis = crate::backend::redis::RedisLimiter::new(config, &name);
                BackendImpl::Redis(redis)
            }
        };
        Self {
            inner: Arc::new(LimiterInner {
                name,
                quotas,
                backend,
                #[cfg(feature = "metrics")]
                metrics: metrics.cloned(),
            }),
        }
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn metrics(&self) -> Option<&LimiterMetrics> {
        self.inner.metrics.as_ref()
    }

    /// The limiter's name (the `limiter` metrics label).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The handle changing this limiter's quotas at runtime.
    pub fn quota_handle(&self) -> QuotaHandle<Key> {
        self.inner.quotas.clone()
    }

    pub(crate) fn config(&self) -> Guard<Arc<QuotaConfig<Key>>> {
        self.inner.quotas.load()
    }

    /// The quotas of this limiter, for services keeping a [`CachedConfig`].
    pub(crate) fn quotas(&self) -> &QuotaHandle<Key> {
        &self.inner.quotas
    }

    /// Counts one request for `key` and says whether it may go on.
    pub async fn check(&self, key: &Key) -> Decision {
        let quotas = self.config().resolve(Some(key)).into_owned();
        match self.check_key(Some(key.clone()), &quotas, Duration::ZERO) {
            Checked::Ready(d) => d,
            Checked::Pending(fut) => fut.await,
        }
    }

    /// Checks `key` (`None`: the shared bucket of keyless requests) against `quotas`.
    #[inline]
    pub(crate) fn check_key(
        &self,
        key: Option<Key>,
        quotas: &Quotas,
        max_delay: Duration,
    ) -> Checked {
        match &self.inner.backend {
            BackendImpl::Memory(store) => {
                Checked::Ready(store.check(key, quotas.compiled(), max_delay))
            }
            #[cfg(feature = "redis")]
            BackendImpl::Redis(redis) => redis.check(key, quotas, max_delay),
        }
    }

    /// What gives back an admission of `key` under `quotas` (wait mode), given the decision
    /// that took it.
    pub(crate) fn give_back(&self, key: Option<Key>, quotas: Quotas) -> GiveBack {
        let limiter = self.clone();
        Box::new(move |decision: &Decision| match &limiter.inner.backend {
            BackendImpl::Memory(store) => {
                debug_assert!(!decision.remote, "the memory store decided");
                store.give_back(&key, quotas.compiled());
            }
            #[cfg(feature = "redis")]
            BackendImpl::Redis(redis) => redis.give_back(key, &quotas, decision.remote),
        })
    }

    /// How many keys the in-process store tracks now (for a Redis limiter: its local fallback).
    pub fn tracked_keys(&self) -> usize {
        match &self.inner.backend {
            BackendImpl::Memory(store) => store.len(),
            #[cfg(feature = "redis")]
            BackendImpl::Redis(redis) => redis.local_store().len(),
        }
    }

    /// The hard cap on keys tracked in process.
    pub fn max_tracked_keys(&self) -> usize {
        match &self.inner.backend {
            BackendImpl::Memory(store) => store.capacity(),
            #[cfg(feature = "redis")]
            BackendImpl::Redis(redis) => redis.local_store().capacity(),
        }
    }

    /// For a Redis limiter: `true` while Redis is slow or down and the local fallback decides.
    /// Always `false` for the memory backend.
    pub fn is_degraded(&self) -> bool {
        match &self.inner.backend {
            BackendImpl::Memory(_) => false,
            #[cfg(feature = "redis")]
            BackendImpl::Redis(redis) => redis.is_degraded(),
        }
    }
}

/// A held request's admission (wait mode): it took the next free slot at its check, and gives
/// it back when dropped before [`Reservation::used`], as Go's `rate.Limiter` cancels a wait.
/// Later reservations keep their times; the slot goes to the next request checked.
pub(crate) struct Reservation(Option<(GiveBack, Decision)>);

/// Gives back the admission a decision took; see [`Limiter::give_back`].
pub(crate) type GiveBack = Box<dyn FnOnce(&Decision) + Send + Sync>;

impl Reservation {
    /// The admission `decision` took, given back by `give_back` unless used.
    pub(crate) fn new(give_back: GiveBack, decision: Decision) -> Self {
        Self(Some((give_back, decision)))
    }

    /// The request went on: the admission is spent.
    pub(crate) fn used(&mut self) {
        self.0 = None;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some((give_back, decision)) = self.0.take() {
            give_back(&decision);
        }
    }
}
