//! The cache stage: verdicts kept by content and dictionary version, in process and in Redis.
//!
//! [`CacheLayer`] wraps a filter service (usually the [classifier stage](super::Classifier) over
//! [`FilterService`](espresso_filter_core::FilterService)) and produces [`Cache`]:
//!
//! - **Key**: the dictionary version ([`Engine::version`], a hash of the lists and options)
//!   and a 128-bit xxh3 hash of the exact content. The content is not normalized first: the
//!   cached `masked` text and hit offsets belong to the original text, so two spellings that
//!   normalize alike are two entries. A reload changes the version, so a stale verdict is never
//!   served; the local level is also cleared when the stage first sees the new version. What the
//!   stages inside decide beyond the lists (the classifier's [`LabelMap`](crate::LabelMap)) is
//!   not in the key: instances sharing a Redis must share it too, or use a
//!   [`RedisCache::prefix`] each (during a rollout that changes it, for one).
//! - **Levels**: an in-process [moka](https://docs.rs/moka) cache bounded by entry count (or
//!   approximate bytes, [`CacheLayer::max_bytes`]) and TTL, then optionally a [`RedisCache`]
//!   shared by every instance (a Redis hit fills the local level for the time it has left in
//!   Redis, so no verdict outlives the TTL). A miss calls the inner service and stores its answer
//!   in both; the Redis write runs in the background and never delays the response. A Redis
//!   value this stage could not have stored (degraded, a verdict below its hits' levels, hits
//!   off the text's char boundaries) is ignored and counted as a `decode` error.
//! - **Concurrent misses for one text are computed once**: while a request computes a key,
//!   others for the same key wait for its answer instead of asking the classifier too (a spam
//!   wave of one message costs one classifier call). If that request fails or is cancelled, the
//!   waiters compute on their own.
//! - **A hit skips everything inside**, the classifier included: a cached verdict already holds
//!   the classifier's opinion. For that reason a `degraded` response (a stage was skipped) is
//!   never cached, so the classifier is asked again next time.
//! - **Redis trouble is not degradation**: the cache is an optimization, so a slow or down Redis
//!   (timeout on every call, own circuit breaker) only means local-only caching, counted in
//!   [`CacheMetrics`] and logged; it never sets `degraded` and never fails a request.
//!
//! ```standalone_crate
//! use espresso_filter_stages::CacheLayer;
//! use espresso_filter_core::{Engine, FilterRequest, FilterService, ListSource, Level, Sources, Verdict};
//! use std::time::Duration;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builtin();
//! let service = ServiceBuilder::new()
//!     .layer(CacheLayer::new(engine.clone()).max_entries(10_000).ttl(Duration::from_secs(60)))
//!     .service(FilterService::new(engine.clone()));
//!
//! let request = FilterRequest::new("buy cheap pills").with_request_id("r-1");
//! let first = service.clone().oneshot(request).await?;
//! let again = service.clone().oneshot(FilterRequest::new("buy cheap pills")).await?;
//! assert_eq!(first.verdict, again.verdict);
//! assert_eq!(again.request_id, None); // the request id is the request's, not the cached one
//!
//! // after a reload the old verdict is gone
//! engine.reload(&Sources::new().list(ListSource::inline("ads.txt", "pills\n", Level::Normal)))?;
//! let after = service.oneshot(FilterRequest::new("buy cheap pills")).await?;
//! assert_eq!(after.verdict, Verdict::Review);
//! # Ok(())
//! # }
//! ```

mod redis;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tracing::Instrument;

use tokio::sync::watch;
use tower_layer::Layer;
use tower_service::Service;
use xxhash_rust::xxh3::xxh3_128;

pub use self::redis::{DEFAULT_PREFIX, DEFAULT_REDIS_TIMEOUT, RedisCache, default_redis_breaker};

use espresso_filter_core::{Engine, FilterRequest, FilterResponse, Hit, Verdict};

use crate::classifier::BoxFuture;
use crate::metrics::CacheMetrics;

/// The default bound on local entries.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;

/// The default time to live of an entry (local and in Redis).
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// How the local level is bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    Entries(u64),
    Bytes(u64),
}

/// The approximate memory an entry holds, for [`CacheLayer::max_bytes`].
fn weight(response: &FilterResponse) -> u32 {
    const ENTRY: usize = 128; // key, Arc, response struct, moka's bookkeeping
    const HIT: usize = std::mem::size_of::<espresso_filter_core::Hit>();
    let hits: usize = response
        .hits
        .iter()
        .map(|h| HIT + h.word.len() + h.category.len())
        .sum();
    u32::try_from(ENTRY + response.masked.len() + hits).unwrap_or(u32::MAX)
}

/// An entry of the local level, and how long it lives: the TTL when computed here, what it
/// had left when copied from Redis (so no verdict outlives the TTL).
#[derive(Clone)]
struct Local {
    response: Arc<FilterResponse>,
    ttl: Duration,
}

/// The local level's expiry: each entry's own [`Local::ttl`].
struct LocalTtl;

impl moka::Expiry<Key, Local> for LocalTtl {
    fn expire_after_create(
        &self,
        _: &Key,
        entry: &Local,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// Why a response read from Redis cannot be one this stage stored for `content`, if it cannot:
/// degraded answers are never stored, hits lie on the text's char boundaries, and the verdict
/// is at least what the hits' levels make it (a cache never lowers a verdict).
fn unfit(response: &FilterResponse, content: &str) -> Option<&'static str> {
    if response.degraded {
        return Some("a degraded answer, which is never stored");
    }
    let fits = |h: &Hit| {
        h.start <= h.end && content.is_char_boundary(h.start) && content.is_char_boundary(h.end)
    };
    if !response.hits.iter().all(fits) {
        return Some("a hit off the text's char boundaries");
    }
    let least = response
        .hits
        .iter()
        .map(|h| h.level.verdict())
        .max()
        .unwrap_or(Verdict::Pass);
    (response.verdict < least).then_some("a verdict below its hits' levels")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    version: u64,
    hash: u128,
}

// === impl CacheLayer ===

/// Applies the cache stage ([`Cache`]) to a filter service. See the [module docs](self).
///
/// Every service the layer makes (and every clone of the layer) shares one cache.
#[derive(Clone)]
pub struct CacheLayer {
    bound: Bound,
    ttl: Duration,
    shared: Arc<Shared>,
}

struct Shared {
    engine: Engine,
    local: moka::future::Cache<Key, Local>,
    ttl: Duration,
    redis: Option<RedisCache>,
    metrics: Option<CacheMetrics>,
    version: AtomicU64,
    flights: Mutex<HashMap<Key, watch::Receiver<Option<Arc<FilterResponse>>>>>,
}

/// What a request that missed the local level does.
enum Role {
    /// Another request is computing the same key: wait for its answer.
    Wait(watch::Receiver<Option<Arc<FilterResponse>>>),
    /// Compute it, and publish the answer to the waiters.
    Lead(Flight),
}

/// The computation of one key; leaves the map when done, answered or not (a dropped leader
/// wakes its waiters with no answer, and they compute on their own).
struct Flight {
    shared: Arc<Shared>,
    key: Key,
    tx: watch::Sender<Option<Arc<FilterResponse>>>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut flights = self
            .shared
            .flights
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        flights.remove(&self.key);
    }
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("bound", &self.bound)
            .field("ttl", &self.ttl)
            .field("redis", &self.shared.redis)
            .finish_non_exhaustive()
    }
}

impl CacheLayer {
    /// A local-only cache of verdicts of `engine` (the one the inner service checks with),
    /// holding [`DEFAULT_MAX_ENTRIES`] for [`DEFAULT_TTL`].
    pub fn new(engine: Engine) -> Self {
        let shared = Shared::new(
            engine,
            Bound::Entries(DEFAULT_MAX_ENTRIES),
            DEFAULT_TTL,
            None,
            None,
        );
        CacheLayer {
            bound: Bound::Entries(DEFAULT_MAX_ENTRIES),
            ttl: DEFAULT_TTL,
            shared: Arc::new(shared),
        }
    }

    /// Bounds the local level to `max_entries` entries (the least useful are evicted first).
    /// Replaces a [`max_bytes`](Self::max_bytes) bound.
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.bound = Bound::Entries(max_entries);
        self.rebuild()
    }

    /// Bounds the local level by the approximate memory of its entries (the masked text, the
    /// hits and a fixed overhead per entry) instead of their number: the bound to use when
    /// texts can be large. Replaces a [`max_entries`](Self::max_entries) bound.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.bound = Bound::Bytes(max_bytes);
        self.rebuild()
    }

    /// How long an entry lives, locally and in Redis: at most [`MAX_TTL`], 1,000 years (the
    /// in-process cache's limit; a longer one is taken as that, which no entry outlives).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.min(MAX_TTL);
        self.rebuild()
    }

    /// Shares verdicts through Redis too.
    pub fn redis(self, redis: RedisCache) -> Self {
        self.with(|redis_slot, _| *redis_slot = Some(redis))
    }

    /// Records lookups and Redis errors in `metrics`.
    pub fn metrics(self, metrics: CacheMetrics) -> Self {
        self.with(|_, metrics_slot| *metrics_slot = Some(metrics))
    }

    /// The number of local entries (approximate: pending evictions may still be counted).
    pub fn local_entries(&self) -> u64 {
        self.shared.local.entry_count()
    }

    /// Runs the local cache's pending maintenance (evictions, expirations) now instead of on
    /// later operations, so that [`local_entries`](Self::local_entries) is exact.
    pub async fn run_pending_tasks(&self) {
        self.shared.local.run_pending_tasks().await;
    }

    fn rebuild(self) -> Self {
        self.with(|_, _| {})
    }

    fn with(self, change: impl FnOnce(&mut Option<RedisCache>, &mut Option<CacheMetrics>)) -> Self {
        let mut redis = self.shared.redis.clone();
        let mut metrics = self.shared.metrics.clone();
        change(&mut redis, &mut metrics);
        let shared = Shared::new(
            self.shared.engine.clone(),
            self.bound,
            self.ttl,
            redis,
            metrics,
        );
        CacheLayer {
            shared: Arc::new(shared),
            ..self
        }
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = Cache<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cache {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The longest [`CacheLayer::ttl`]: 1,000 years, the in-process cache's (moka's) limit.
pub const MAX_TTL: Duration = Duration::from_secs(1000 * 365 * 24 * 3600);

// === impl Shared ===

impl Shared {
    fn new(
        engine: Engine,
        bound: Bound,
        ttl: Duration,
        redis: Option<RedisCache>,
        metrics: Option<CacheMetrics>,
    ) -> Self {
        let builder = moka::future::Cache::builder().expire_after(LocalTtl);
        let local = match bound {
            Bound::Entries(max) => builder.max_capacity(max).build(),
            Bound::Bytes(max) => builder
                .max_capacity(max)
                .weigher(|_: &Key, entry: &Local| weight(&entry.response))
                .build(),
        };
        let version = AtomicU64::new(engine.version());
        Shared {
            engine,
            local,
            ttl,
            redis,
            metrics,
            version,
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// The key for `content` checked against `lists` (`None`: the default lists) under the
    /// current dictionary; clears the local level when the dictionary changed since the last
    /// request.
    fn key(&self, content: &str, lists: Option<&[String]>) -> Key {
        let version = self.engine.version();
        // a plain load on the hot path; the swap only when the version moved, so one clear
        if self.version.load(Ordering::Acquire) != version
            && self.version.swap(version, Ordering::AcqRel) != version
        {
            self.local.invalidate_all();
            if let Some(m) = &self.metrics {
                m.invalidated();
            }
        }
        let hash = match lists {
            None => xxh3_128(content.as_bytes()),
            // 0xFE and 0xFF never occur in UTF-8: the names cannot be mistaken for content
            Some(lists) => {
                let mut bytes = Vec::with_capacity(content.len() + 16 * lists.len() + 1);
                bytes.extend_from_slice(content.as_bytes());
                bytes.push(0xFE);
                for list in lists {
                    bytes.push(0xFF);
                    bytes.extend_from_slice(list.as_bytes());
                }
                xxh3_128(&bytes)
            }
        };
        Key { version, hash }
    }

    async fn local_get(&self, key: Key) -> Option<Arc<FilterResponse>> {
        let hit = self.local.get(&key).await.map(|entry| entry.response);
        if hit.is_some() {
            self.count("local_hit");
        }
        hit
    }

    /// The Redis level (filling the local one on a hit, for the time the entry has left there);
    /// counts a miss when neither has it. An entry is used only if it could be an answer for
    /// `content` this stage stored.
    async fn remote_get(&self, key: Key, content: &str) -> Option<Arc<FilterResponse>> {
        if let Some(redis) = &self.redis {
            let found = redis
                .get(&redis.key(key.version, key.hash), self.metrics.as_ref())
                .await;
            if let Some((bytes, left)) = found {
                let response = serde_json::from_slice::<FilterResponse>(&bytes)
                    .map_err(|error| error.to_string())
                    .and_then(|response| match unfit(&response, content) {
                        Some(why) => Err(why.to_owned()),
                        None => Ok(response),
                    });
                match response {
                    Ok(response) => {
                        let response = Arc::new(response);
                        let ttl = left.map_or(self.ttl, |left| left.min(self.ttl));
                        let entry = Local {
                            response: response.clone(),
                            ttl,
                        };
                        self.local.insert(key, entry).await;
                        self.count("redis_hit");
                        return Some(response);
                    }
                    Err(error) => {
                        tracing::debug!(%error, "verdict cache: Redis entry ignored");
                        if let Some(m) = &self.metrics {
                            m.redis_error("get", "decode");
                        }
                    }
                }
            }
        }
        self.count("miss");
        None
    }

    async fn store(self: Arc<Self>, key: Key, response: &FilterResponse) {
        let entry = Arc::new(FilterResponse {
            request_id: None,
            ..response.clone()
        });
        if let Some(redis) = self.redis.clone() {
            match serde_json::to_vec(&*entry) {
                Ok(bytes) => {
                    let shared = self.clone();
                    tokio::spawn(async move {
                        let redis_key = redis.key(key.version, key.hash);
                        redis
                            .set(&redis_key, &bytes, shared.ttl, shared.metrics.as_ref())
                            .await;
                    });
                }
                Err(error) => {
                    tracing::debug!(%error, "verdict cache: response not encodable, kept local");
                }
            }
        }
        let entry = Local {
            response: entry,
            ttl: self.ttl,
        };
        self.local.insert(key, entry).await;
    }

    /// Joins the computation already running for `key`, or becomes the one running it.
    fn join_or_lead(self: &Arc<Self>, key: Key) -> Role {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = flights.get(&key) {
            return Role::Wait(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(key, rx);
        Role::Lead(Flight {
            shared: self.clone(),
            key,
            tx,
        })
    }

    /// A miss: the Redis level, else the inner service (storing a cacheable answer).
    async fn fill<S>(
        self: &Arc<Self>,
        key: Key,
        mut inner: S,
        request: FilterRequest,
    ) -> Result<Arc<FilterResponse>, S::Error>
    where
        S: Service<FilterRequest, Response = FilterResponse>,
    {
        if let Some(hit) = self.remote_get(key, &request.content).await {
            return Ok(hit);
        }
        // The dictionary the inner service checks with, or a newer one. A verdict is kept only
        // when no reload came in between: comparing versions alone, lists reloaded A → B → A
        // during the call would file B's verdict under A's version.
        let dictionary = self.engine.dictionary();
        let response = Arc::new(inner.call(request).await?);
        // a degraded answer lacks a stage's opinion: not kept either
        if !response.degraded
            && dictionary.version() == key.version
            && Arc::ptr_eq(&dictionary, &self.engine.dictionary())
        {
            self.clone().store(key, &response).await;
        }
        Ok(response)
    }

    fn count(&self, result: &str) {
        if let Some(m) = &self.metrics {
            m.lookup(result);
        }
    }
}

// === impl Cache ===

/// The cache stage over `S`; made by [`CacheLayer`].
#[derive(Clone)]
pub struct Cache<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for Cache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("inner", &self.inner)
            .field("redis", &self.shared.redis)
            .finish_non_exhaustive()
    }
}

impl<S> Cache<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> Service<FilterRequest> for Cache<S>
where
    S: Service<FilterRequest, Response = FilterResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = FilterResponse;
    type Error = S::Error;
    type Future = BoxFuture<FilterResponse, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: FilterRequest) -> Self::Future {
        // the ready service answers a miss later; leave a fresh clone in its place
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        // The span covers the look-ups (local, then Redis) and, on a miss, the stages behind.
        let span = tracing::info_span!("cache");
        Box::pin(
            async move {
                let key = shared.key(&request.content, request.lists.as_deref());
                let id = request.request_id.clone();
                let answer = |response: &FilterResponse| FilterResponse {
                    request_id: id.clone(),
                    ..response.clone()
                };
                if let Some(hit) = shared.local_get(key).await {
                    return Ok(answer(&hit));
                }
                match shared.join_or_lead(key) {
                    Role::Wait(mut rx) => {
                        let published = rx
                            .wait_for(Option::is_some)
                            .await
                            .ok()
                            .and_then(|v| v.clone());
                        if let Some(response) = published {
                            shared.count("coalesced");
                            return Ok(answer(&response));
                        }
                        // the leader failed or was dropped: on our own (boxed, as below)
                        let response = Box::pin(shared.fill(key, inner, request)).await?;
                        Ok(answer(&response))
                    }
                    Role::Lead(flight) => {
                        // a leader that finished between our lookup and now has stored its answer
                        if let Some(hit) = shared.local_get(key).await {
                            flight.tx.send_replace(Some(hit.clone()));
                            return Ok(answer(&hit));
                        }
                        // Boxed: the miss path's future (Redis, moka, the stages inside)
                        // is so deeply nested that a crate holding it unboxed needed a raised
                        // `recursion_limit`; a miss calls the stages inside anyway.
                        let response = Box::pin(shared.fill(key, inner, request)).await?;
                        // waiters get it even when it is not cacheable (degraded): same text, same moment
                        flight.tx.send_replace(Some(response.clone()));
                        drop(flight);
                        Ok(answer(&response))
                    }
                }
            }
            .instrument(span),
        )
    }
}
