//! The [`RateLimit`] service and what it does with a decision.

#[cfg(feature = "metrics")]
use crate::metrics::LimiterMetrics;
use crate::{
    Decision, KeyExtractor, Limiter, Quotas,
    error::RateLimited,
    future::ResponseFuture,
    headers::{self, HeaderMode},
    limiter::{CachedConfig, Checked, Reservation},
};
use espresso_common::{
    Rejection,
    grpc::Code,
    refusal::{Refusal, RefusalPolicy, Respond},
};
use http::{HeaderMap, Request, Response, StatusCode};
use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};
use tower_service::Service;

/// What the layer does with a request its [`KeyExtractor`] finds no key for.
///
/// Every such request is counted in `espresso_rate_limit_missing_key_total{action}`.
///
/// ```
/// use espresso_rate_limit::{MissingKey, PeerIp, Quota, RateLimitLayer};
/// use http::{Request, Response, StatusCode};
/// use std::convert::Infallible;
/// use tower::{Service, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // No peer address in the request (a server that does not record it): refused, loudly.
/// let mut service = ServiceBuilder::new()
///     .layer(RateLimitLayer::new(Quota::per_second(10)).key(PeerIp::new()))
///     .service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) });
/// let response = service.ready().await.unwrap().call(Request::new(())).await.unwrap();
/// assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
///
/// // Sharing one bucket is an explicit choice.
/// let shared = RateLimitLayer::new(Quota::per_second(10)).on_missing_key(MissingKey::SharedBucket);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// Refuse the request (the default): HTTP 500 with a JSON error `rate_limit_key_missing`
    /// naming the cause (gRPC `INTERNAL`), `Err(`[`KeyNotFound`]`)` with `.return_error()`, or
    /// the fallback service with `.fallback(…)`; the first such request of a layer logs one
    /// WARN line with the fix. A per-client limit that cannot find the client is a
    /// misconfiguration, not a reason to limit everyone as one.
    #[default]
    Refuse,
    /// Count every keyless request against one bucket shared by all of them, under the default
    /// quotas: the whole set of keyless clients is limited as one.
    SharedBucket,
    /// Let keyless requests through, unlimited.
    Allow,
}

/// A request the rate limiter found no key for, refused under [`MissingKey::Refuse`]: the error
/// of [`return_error`](crate::RateLimitLayer::return_error) (boxed in a `BoxError`), and what a
/// [`fallback`](crate::RateLimitLayer::fallback) service finds in the request's extensions.
///
/// ```
/// use espresso_common::BoxError;
/// use espresso_rate_limit::KeyNotFound;
///
/// fn is_misconfigured(error: &BoxError) -> bool {
///     error.downcast_ref::<KeyNotFound>().is_some()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct KeyNotFound {
    limiter: Arc<str>,
    cause: Arc<str>,
}

impl KeyNotFound {
    /// The name of the limiter that found no key.
    pub fn limiter(&self) -> &str {
        &self.limiter
    }

    /// Why there was no key, and the fix.
    pub fn cause(&self) -> &str {
        &self.cause
    }
}

impl fmt::Display for KeyNotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limiter `{}` found no key: {}",
            self.limiter, self.cause
        )
    }
}

impl std::error::Error for KeyNotFound {}

impl Refusal for KeyNotFound {
    /// A 500 naming the cause, whatever the layer's rate-limit rejection: the request was not
    /// over a quota, the server could not tell who sent it.
    fn rejection(&self, _template: &Rejection) -> Rejection {
        Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal)
            .code("rate_limit_key_missing")
            .message(format!(
                "the rate limiter found no key for this request: {}",
                self.cause
            ))
    }
}

/// The [`RefusalPolicy`] bounds of a [`RateLimit`] service: `P` answers both of its refusals,
/// [`RateLimited`] and [`KeyNotFound`], with the same types. [`Respond`],
/// [`ReturnError`](espresso_common::refusal::ReturnError) and
/// [`Fallback`](espresso_common::refusal::Fallback) all do.
pub trait RateLimitPolicy<Req, Res, E>:
    RefusalPolicy<Req, RateLimited, Res, E>
    + RefusalPolicy<
        Req,
        KeyNotFound,
        Res,
        E,
        Response = <Self as RefusalPolicy<Req, RateLimited, Res, E>>::Response,
        Error = <Self as RefusalPolicy<Req, RateLimited, Res, E>>::Error,
        Future = <Self as RefusalPolicy<Req, RateLimited, Res, E>>::Future,
    > + Clone
{
}

impl<P, Req, Res, E> RateLimitPolicy<Req, Res, E> for P where
    P: RefusalPolicy<Req, RateLimited, Res, E>
        + RefusalPolicy<
            Req,
            KeyNotFound,
            Res,
            E,
            Response = <P as RefusalPolicy<Req, RateLimited, Res, E>>::Response,
            Error = <P as RefusalPolicy<Req, RateLimited, Res, E>>::Error,
            Future = <P as RefusalPolicy<Req, RateLimited, Res, E>>::Future,
        > + Clone
{
}

/// Adds the rate-limit headers to an admitted request's response.
pub(crate) fn add_headers<B>(response: &mut Response<B>, headers: HeaderMap) {
    let target = response.headers_mut();
    for (name, value) in headers {
        if let Some(name) = name {
            target.entry(name).or_insert(value);
        }
    }
}

/// What the layer does with decisions (everything but the key and the limiter).
pub(crate) struct Policy {
    pub(crate) name: Arc<str>,
    pub(crate) shadow: bool,
    pub(crate) header_mode: HeaderMode,
    pub(crate) max_delay: Duration,
    pub(crate) missing_key: MissingKey,
    pub(crate) keyless: Keyless,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<LimiterMetrics>,
}

/// The refusal of a keyless request, built once per layer.
pub(crate) struct Keyless {
    pub(crate) error: KeyNotFound,
    /// The WARN line's fix.
    fix: Arc<str>,
    /// Set by the first keyless request of a layer (and its clones), which logs the WARN line.
    pub(crate) warned: Arc<AtomicBool>,
}

impl Keyless {
    pub(crate) fn new(limiter: Arc<str>, cause: &str, fix: &str, warned: Arc<AtomicBool>) -> Self {
        let error = KeyNotFound {
            limiter,
            cause: cause.into(),
        };
        Self {
            error,
            fix: fix.into(),
            warned,
        }
    }

    /// Logs the WARN line, once per layer.
    fn warn_once(&self) {
        if !self.warned.load(Ordering::Relaxed) && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                limiter = %self.error.limiter,
                "rate limiter found no key: {}; refusing such requests with 500 ({})",
                self.error.cause,
                self.fix,
            );
        }
    }
}

/// What to do with a request once decided.
pub(crate) enum Action {
    // Boxed: the common case carries neither, and a small `Action` is cheap to move.
    Pass {
        wait: Duration,
        headers: Option<Box<HeaderMap>>,
    },
    Reject(Box<RateLimited>),
}

impl Policy {
    /// Counts a keyless request under what [`MissingKey`] does with it.
    fn count_keyless(&self) {
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            match self.missing_key {
                MissingKey::Refuse => m.missing_refused.inc(),
                MissingKey::SharedBucket => m.missing_shared.inc(),
                MissingKey::Allow => m.missing_allowed.inc(),
            }
        }
    }

    /// Counts an admitted request.
    #[inline]
    fn count_admitted(&self, wait: Duration) {
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            if wait.is_zero() {
                m.allowed.inc();
            } else {
                m.delayed.inc();
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = wait;
    }

    /// What to do with a decided request. The common case (admitted, no headers to add) is
    /// inlined into the service's `call`; the rest is not.
    #[inline]
    pub(crate) fn act(&self, decision: &Decision, quotas: &Quotas) -> Action {
        if decision.allowed && self.header_mode != HeaderMode::Always {
            let wait = decision.delay();
            self.count_admitted(wait);
            return Action::Pass {
                wait,
                headers: None,
            };
        }
        self.act_otherwise(decision, quotas)
    }

    #[inline(never)]
    fn act_otherwise(&self, decision: &Decision, quotas: &Quotas) -> Action {
        let always = self.header_mode == HeaderMode::Always;
        if decision.allowed {
            let wait = decision.delay();
            self.count_admitted(wait);
            return Action::Pass {
                wait,
                headers: always.then(|| Box::new(headers::header_map(quotas, decision))),
            };
        }
        if self.shadow {
            #[cfg(feature = "metrics")]
            if let Some(m) = &self.metrics {
                m.shadow_limited.inc();
            }
            tracing::debug!(limiter = %self.name, retry_after = ?decision.wait, "rate limit exceeded (shadow mode: request passed)");
            return Action::Pass {
                wait: Duration::ZERO,
                headers: always.then(|| Box::new(headers::header_map(quotas, decision))),
            };
        }
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            m.limited.inc();
        }
        let headers = match self.header_mode {
            HeaderMode::Never => HeaderMap::new(),
            _ => headers::header_map(quotas, decision),
        };
        Action::Reject(Box::new(RateLimited::new(
            decision.wait,
            self.name.clone(),
            headers,
        )))
    }
}

pub(crate) struct Shared<K: KeyExtractor> {
    pub(crate) extractor: Arc<K>,
    pub(crate) limiter: Limiter<K::Key>,
    pub(crate) policy: Arc<Policy>,
}

/// Rate-limits requests to the inner service. Built by [`RateLimitLayer`](crate::RateLimitLayer);
/// `P` is what refused requests get (see [`RefusalPolicy`]).
pub struct RateLimit<S, K: KeyExtractor, P = Respond> {
    inner: S,
    shared: Arc<Shared<K>>,
    refusal: P,
    /// This service's copy of the quotas in force.
    config: CachedConfig<K::Key>,
}

impl<S, K: KeyExtractor, P> RateLimit<S, K, P> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<K>>, refusal: P) -> Self {
        Self {
            inner,
            shared,
            refusal,
            config: CachedConfig::new(),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the limiter, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The limiter this service checks against.
    pub fn limiter(&self) -> &Limiter<K::Key> {
        &self.shared.limiter
    }
}

impl<S: Clone, K: KeyExtractor, P: Clone> Clone for RateLimit<S, K, P> {
    fn clone(&self) -> Self {
        Self::new(
            self.inner.clone(),
            self.shared.clone(),
            self.refusal.clone(),
        )
    }
}

impl<S: fmt::Debug, K: KeyExtractor, P> fmt::Debug for RateLimit<S, K, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("limiter", &self.shared.limiter)
            .finish()
    }
}

impl<S, K, P, ReqB, ResB> Service<Request<ReqB>> for RateLimit<S, K, P>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    K: KeyExtractor,
    P: RateLimitPolicy<Request<ReqB>, Response<ResB>, S::Error>,
{
    type Response =
        <P as RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>>::Response;
    type Error = <P as RefusalPolicy<Request<ReqB>, RateLimited, S::Response, S::Error>>::Error;
    type Future = ResponseFuture<S, ReqB, P>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(<P as RefusalPolicy<Request<ReqB>, RateLimited, _, _>>::error)
    }

    #[inline]
    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        // Each path moves the request on once: an extractor reading it in place spares taking
        // it apart and putting it together again.
        match self.shared.extractor.extract_in_place(&request) {
            Some(Some(key)) => self.check(Some(key), request),
            Some(None) => self.keyless(request),
            None => self.call_by_parts(request),
        }
    }
}

impl<S, K: KeyExtractor, P> RateLimit<S, K, P> {
    /// Checks `key` and answers: the inner call, a wait, or a refusal.
    #[inline]
    fn check<ReqB, ResB>(
        &mut self,
        key: Option<K::Key>,
        request: Request<ReqB>,
    ) -> ResponseFuture<S, ReqB, P>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
        P: RateLimitPolicy<Request<ReqB>, Response<ResB>, S::Error>,
    {
        let shared = &*self.shared;
        let policy = &*shared.policy;
        let config = self.config.get(shared.limiter.quotas());
        let quotas = config.resolve(key.as_ref());
        // Wait mode: a request held and then given up gives its admission back.
        let held_key = (!policy.max_delay.is_zero()).then(|| key.clone());
        match shared.limiter.check_key(key, &quotas, policy.max_delay) {
            Checked::Ready(decision) => match policy.act(&decision, &quotas) {
                Action::Pass { wait, headers } if wait.is_zero() => {
                    ResponseFuture::calling(self.inner.call(request), headers)
                }
                Action::Pass { wait, headers } => {
                    let reservation = held_key.map(|key| {
                        let give_back = shared.limiter.give_back(key, quotas.into_owned());
                        Reservation::new(give_back, decision)
                    });
                    let service = take_ready(&mut self.inner);
                    ResponseFuture::waiting(wait, service, request, headers, reservation)
                }
                Action::Reject(limited) => {
                    ResponseFuture::refused(self.refusal.refuse(request, *limited))
                }
            },
            Checked::Pending(pending) => {
                let quotas = quotas.into_owned();
                let give_back = held_key.map(|key| shared.limiter.give_back(key, quotas.clone()));
                ResponseFuture::checking(
                    pending,
                    take_ready(&mut self.inner),
                    request,
                    quotas,
                    shared.policy.clone(),
                    self.refusal.clone(),
                    give_back,
                )
            }
        }
    }

    /// Keys the request by its parts ([`KeyExtractor::extract`]), then checks it.
    #[inline(never)]
    fn call_by_parts<ReqB, ResB>(&mut self, request: Request<ReqB>) -> ResponseFuture<S, ReqB, P>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
        P: RateLimitPolicy<Request<ReqB>, Response<ResB>, S::Error>,
    {
        let (parts, body) = request.into_parts();
        let key = self.shared.extractor.extract(&parts);
        let request = Request::from_parts(parts, body);
        match key {
            Some(key) => self.check(Some(key), request),
            None => self.keyless(request),
        }
    }

    /// Answers a request without a key under [`MissingKey`].
    #[cold]
    fn keyless<ReqB, ResB>(&mut self, request: Request<ReqB>) -> ResponseFuture<S, ReqB, P>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
        P: RateLimitPolicy<Request<ReqB>, Response<ResB>, S::Error>,
    {
        let policy = &*self.shared.policy;
        policy.count_keyless();
        match policy.missing_key {
            MissingKey::Refuse => {
                policy.keyless.warn_once();
                let error = policy.keyless.error.clone();
                ResponseFuture::refused(self.refusal.refuse(request, error))
            }
            MissingKey::Allow => ResponseFuture::calling(self.inner.call(request), None),
            MissingKey::SharedBucket => self.check(None, request),
        }
    }
}

/// The ready inner service, leaving a clone in its place (the future calls it later).
fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}
