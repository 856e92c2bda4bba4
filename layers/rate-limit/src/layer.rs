//! [`RateLimitLayer`]: the builder of the rate-limit middleware.

#[cfg(feature = "metrics")]
use crate::RateLimitMetrics;
use crate::{
    Backend, HeaderMode, KeyExtractor, Limiter, MissingKey, PeerIp, QuotaHandle, Quotas,
    service::{Keyless, Policy, RateLimit, Shared},
};
use espresso_common::{
    Rejection,
    grpc::Code,
    refusal::{Fallback, Respond, ReturnError},
};
use http::StatusCode;
use std::{
    borrow::Cow,
    fmt,
    sync::{Arc, OnceLock, atomic::AtomicBool},
    time::Duration,
};
use tower_layer::Layer;

/// Applies [`RateLimit`] to a service: keyed GCRA with plain-words quotas.
///
/// Built with [`RateLimitLayer::new`] and builder methods. The default key is [`PeerIp`]
/// trusting no proxy, the default backend is in-process memory capped at 100 000 keys,
/// refusals are 429 / gRPC `RESOURCE_EXHAUSTED` responses with `Retry-After` and the
/// `RateLimit` headers, and a request without a key is refused with a 500 naming the cause
/// ([`MissingKey::Refuse`]).
///
/// # A plain value
///
/// Every builder method takes the layer by value and returns a new one; a clone taken before
/// is never changed. The state the layer's services share is of two parts:
///
/// - The **quotas** ([`quota_handle`](Self::quota_handle)): created by [`new`](Self::new) (and
///   [`key`](Self::key), whose key type the per-key overrides use) and kept by every other
///   builder method, so a handle taken at any point after `key` changes the quotas of every
///   layer built on from there, and of their clones.
/// - The **buckets** ([`limiter`](Self::limiter)): made when the layer first makes a service
///   or hands out its limiter, and shared by every service of that layer and its clones (axum
///   makes one service per route: they count together). The methods that say what the
///   limiter is (`key`, `backend`, `name`, `metrics`) give the layer they return buckets of its
///   own: two layers named apart never count against each other.
///
/// ```
/// use espresso_rate_limit::{Global, Quota, RateLimitLayer};
///
/// let base = RateLimitLayer::new(Quota::per_second(10)).key(Global::new());
/// let quotas = base.quota_handle();
/// let shadow = base.clone().shadow(true).name("shadowed");
/// quotas.set(Quota::per_second(5));
/// assert_eq!(shadow.quota_handle().quotas(), Quota::per_second(5).into());
/// ```
pub struct RateLimitLayer<K: KeyExtractor = PeerIp, P = Respond> {
    extractor: Arc<K>,
    quotas: QuotaHandle<K::Key>,
    backend: Backend,
    #[cfg(feature = "metrics")]
    metrics: Option<RateLimitMetrics>,
    name: Arc<str>,
    /// The buckets, made on first use and shared by clones.
    limiter: Arc<OnceLock<Limiter<K::Key>>>,
    /// Whether the keyless WARN line was logged (once per layer and its clones).
    warned: Arc<AtomicBool>,
    policy: PolicyConfig,
    refusal: P,
}

#[derive(Clone)]
struct PolicyConfig {
    shadow: bool,
    header_mode: HeaderMode,
    max_delay: Duration,
    missing_key: MissingKey,
    /// How the keyless WARN says to accept keyless requests.
    missing_key_fix: Cow<'static, str>,
}

/// The keyless WARN's fix unless the app gives its own.
const MISSING_KEY_FIX: &str =
    "`.on_missing_key(MissingKey::SharedBucket)` or `Allow` to accept them";

/// The rejection of a request over its quota: 429 `rate_limited`, gRPC `RESOURCE_EXHAUSTED`.
fn rate_limited() -> Rejection {
    Rejection::new(StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted)
        .code("rate_limited")
        .message("too many requests")
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
        Self {
            extractor: Arc::new(PeerIp::new()),
            quotas: QuotaHandle::new(quotas.into()),
            backend: Backend::default(),
            #[cfg(feature = "metrics")]
            metrics: None,
            name: Arc::from("default"),
            limiter: Arc::default(),
            warned: Arc::default(),
            policy: PolicyConfig {
                shadow: false,
                header_mode: HeaderMode::default(),
                max_delay: Duration::ZERO,
                missing_key: MissingKey::default(),
                missing_key_fix: Cow::Borrowed(MISSING_KEY_FIX),
            },
            refusal: Respond::new(rate_limited()),
        }
    }
}

impl<K: KeyExtractor, P> RateLimitLayer<K, P> {
    /// The same layer with its own, not yet made, buckets.
    fn fresh_buckets(mut self) -> Self {
        self.limiter = Arc::default();
        self
    }

    /// Keys requests with `extractor` (a [`KeyExtractor`] or a closure). The quotas start
    /// afresh from the current default ones: per-key overrides were keyed by the old key type,
    /// and so is a [`QuotaHandle`] taken before, so choose the key first.
    pub fn key<K2: KeyExtractor>(self, extractor: K2) -> RateLimitLayer<K2, P> {
        RateLimitLayer {
            extractor: Arc::new(extractor),
            quotas: QuotaHandle::new(self.quotas.quotas()),
            backend: self.backend,
            #[cfg(feature = "metrics")]
            metrics: self.metrics,
            name: self.name,
            limiter: Arc::default(),
            warned: Arc::default(),
            policy: self.policy,
            refusal: self.refusal,
        }
    }

    /// Stores state in `backend`: a [`MemoryBackend`](crate::MemoryBackend) or a
    /// `RedisBackend` (feature `redis`).
    pub fn backend(mut self, backend: impl Into<Backend>) -> Self {
        self.backend = backend.into();
        self.fresh_buckets()
    }

    /// Names the limiter: the `limiter` label of its metrics, part of its Redis keys, and its
    /// log lines (default `"default"`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self.fresh_buckets()
    }

    /// Counts decisions into `metrics` under this limiter's name (feature `metrics`). The
    /// limiter's series are created at 0 when the layer makes its first service or hands out
    /// its [`limiter`](Self::limiter): at startup, before any request.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: RateLimitMetrics) -> Self {
        self.metrics = Some(metrics);
        self.fresh_buckets()
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
    /// requests count as `decision="delayed"`. A held request has taken its slot; one given up
    /// while it waits (a timeout outside the layer, a client gone: its response future dropped)
    /// gives it back, as Go's `rate.Limiter` cancels a wait: the next request checked gets it,
    /// and requests held already keep their times. With the Redis backend the give-back is one
    /// more script call, made in the background (or the local fallback's, when it decided).
    pub fn wait_up_to(mut self, max_delay: Duration) -> Self {
        self.policy.max_delay = max_delay;
        self
    }

    /// When to add the `RateLimit` / `RateLimit-Policy` headers (default: on refusals).
    pub fn headers(mut self, mode: HeaderMode) -> Self {
        self.policy.header_mode = mode;
        self
    }

    /// What to do with requests the key extractor finds no key for (default:
    /// [`MissingKey::Refuse`]).
    pub fn on_missing_key(mut self, missing: MissingKey) -> Self {
        self.policy.missing_key = missing;
        self
    }

    /// How the WARN logged at the first keyless request says to accept such requests (default:
    /// "`.on_missing_key(MissingKey::SharedBucket)` or `Allow` to accept them"). An app set up
    /// from a config file names its own setting, so that the line tells its operator what to
    /// change.
    ///
    /// ```
    /// use espresso_rate_limit::{Header, Quota, RateLimitLayer};
    /// use http::HeaderName;
    ///
    /// let layer = RateLimitLayer::new(Quota::per_second(10))
    ///     .key(Header::new(HeaderName::from_static("x-api-key")))
    ///     .missing_key_fix("set rate_limit.missing_key = \"allow\" to accept them");
    /// ```
    pub fn missing_key_fix(mut self, fix: impl Into<Cow<'static, str>>) -> Self {
        self.policy.missing_key_fix = fix.into();
        self
    }

    /// Refused requests get 429 (gRPC: `RESOURCE_EXHAUSTED`) with `Retry-After` and the
    /// `RateLimit` headers, and keyless ones a 500 naming the cause: the default.
    pub fn respond(self) -> RateLimitLayer<K, Respond> {
        self.respond_with(rate_limited())
    }

    /// Requests over their quota get `rejection`, with the limiter's `Retry-After` and
    /// `RateLimit` headers added (keyless ones still get the 500 naming the cause).
    ///
    /// ```
    /// use espresso_common::{Rejection, grpc::Code};
    /// use espresso_rate_limit::{Quota, RateLimitLayer};
    /// use http::StatusCode;
    ///
    /// let layer = RateLimitLayer::new(Quota::per_second(10)).respond_with(
    ///     Rejection::new(StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted)
    ///         .code("slow_down")
    ///         .message("one request every 100 ms, please"),
    /// );
    /// ```
    pub fn respond_with(self, rejection: Rejection) -> RateLimitLayer<K, Respond> {
        self.refusal(Respond::new(rejection))
    }

    /// Refused requests fail with `Err(`[`RateLimited`](crate::RateLimited)`)` (keyless ones
    /// with [`KeyNotFound`](crate::KeyNotFound)), boxed into a `BoxError` with the inner
    /// service's errors, for stacks that turn errors into responses themselves.
    pub fn return_error(self) -> RateLimitLayer<K, ReturnError> {
        self.refusal(ReturnError)
    }

    /// Refused requests go to `service` instead; it finds the
    /// [`RateLimited`](crate::RateLimited) (or, for a keyless request refused under
    /// [`MissingKey::Refuse`], the [`KeyNotFound`](crate::KeyNotFound)) in the request's
    /// extensions. It answers with a body of its own type: responses carry a
    /// [`FallbackBody`](espresso_common::FallbackBody), the inner service's body or the
    /// fallback's, so the layer may sit outside other layers that wrap the body, and an axum
    /// `Router` or a tonic service serves as it is (it gets the refused request, path and all:
    /// `Router::new().fallback(handler)` answers every path).
    ///
    /// ```
    /// use espresso_rate_limit::{Global, Quota, RateLimitLayer, RateLimited};
    /// use http::{Request, Response};
    /// use http_body_util::BodyExt;
    /// use std::convert::Infallible;
    /// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cached = service_fn(|request: Request<()>| async move {
    ///     let limited = request.extensions().get::<RateLimited>().unwrap();
    ///     Ok::<_, Infallible>(Response::new(format!("cached (limiter {})", limited.limiter())))
    /// });
    /// let mut service = ServiceBuilder::new()
    ///     .layer(RateLimitLayer::new(Quota::per_second(1)).key(Global::new()).fallback(cached))
    ///     .service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new("fresh".to_owned())) });
    ///
    /// let first = service.ready().await.unwrap().call(Request::new(())).await.unwrap();
    /// let second = service.ready().await.unwrap().call(Request::new(())).await.unwrap();
    /// assert!(!first.body().is_fallback() && second.body().is_fallback());
    /// let text = second.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(text, "cached (limiter default)");
    /// # }
    /// ```
    pub fn fallback<S>(self, service: S) -> RateLimitLayer<K, Fallback<S>> {
        self.refusal(Fallback::new(service))
    }

    fn refusal<P2>(self, refusal: P2) -> RateLimitLayer<K, P2> {
        RateLimitLayer {
            extractor: self.extractor,
            quotas: self.quotas,
            backend: self.backend,
            #[cfg(feature = "metrics")]
            metrics: self.metrics,
            name: self.name,
            limiter: self.limiter,
            warned: self.warned,
            policy: self.policy,
            refusal,
        }
    }

    /// The handle changing the quotas at runtime: the default ones, per-key overrides (a map
    /// or a closure). It stays bound to every layer built on from this one except through
    /// [`key`](Self::key) (see [A plain value](Self#a-plain-value)).
    ///
    /// ```
    /// use espresso_rate_limit::{Quota, RateLimitLayer};
    ///
    /// let layer = RateLimitLayer::new(Quota::per_second(10))
    ///     .key(|parts: &http::request::Parts| parts.headers.get("x-user").cloned());
    /// let quotas = layer.quota_handle();
    /// quotas.set_override("batch".parse().unwrap(), Quota::per_second(1));
    /// let layer = layer.name("users"); // the override still applies
    /// assert_eq!(layer.quota_handle().quotas_for(&"batch".parse().unwrap()), Quota::per_second(1).into());
    /// ```
    pub fn quota_handle(&self) -> QuotaHandle<K::Key> {
        self.quotas.clone()
    }

    /// The limiter, for checks outside a Tower stack: the buckets this layer's services use
    /// (made now if no service was made yet).
    pub fn limiter(&self) -> Limiter<K::Key> {
        self.limiter
            .get_or_init(|| {
                Limiter::new(
                    self.name.clone(),
                    self.quotas.clone(),
                    &self.backend,
                    #[cfg(feature = "metrics")]
                    self.metrics
                        .as_ref()
                        .map(|all| all.for_limiter(&self.name))
                        .as_ref(),
                )
            })
            .clone()
    }
}

impl<K: KeyExtractor, P: Clone> Clone for RateLimitLayer<K, P> {
    fn clone(&self) -> Self {
        Self {
            extractor: self.extractor.clone(),
            quotas: self.quotas.clone(),
            backend: self.backend.clone(),
            #[cfg(feature = "metrics")]
            metrics: self.metrics.clone(),
            name: self.name.clone(),
            limiter: self.limiter.clone(),
            warned: self.warned.clone(),
            policy: self.policy.clone(),
            refusal: self.refusal.clone(),
        }
    }
}

impl<K: KeyExtractor, P: fmt::Debug> fmt::Debug for RateLimitLayer<K, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("name", &self.name)
            .field("quotas", &self.quotas.quotas())
            .field("backend", &self.backend)
            .field("shadow", &self.policy.shadow)
            .field("headers", &self.policy.header_mode)
            .field("max_delay", &self.policy.max_delay)
            .field("missing_key", &self.policy.missing_key)
            .field("refusal", &self.refusal)
            .finish()
    }
}

impl<S, K: KeyExtractor, P: Clone> Layer<S> for RateLimitLayer<K, P> {
    type Service = RateLimit<S, K, P>;

    fn layer(&self, inner: S) -> Self::Service {
        let limiter = self.limiter();
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
            keyless: Keyless::new(
                self.name.clone(),
                &self.extractor.missing_key_cause(),
                &self.policy.missing_key_fix,
                self.warned.clone(),
            ),
            #[cfg(feature = "metrics")]
            metrics: limiter.metrics().cloned(),
        };
        RateLimit::new(
            inner,
            Arc::new(Shared {
                extractor: self.extractor.clone(),
                limiter,
                policy: Arc::new(policy),
            }),
            self.refusal.clone(),
        )
    }
}
