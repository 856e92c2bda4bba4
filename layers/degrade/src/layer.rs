#[cfg(feature = "metrics")]
use crate::DegradeMetrics;
use crate::{
    Degrade, DegradeSwitch, PriorityHeader,
    admission::{Core, Settings},
    limit::Limit,
    overload_signals,
    queue::QueueDelay,
};
use espresso_common::{
    Rejection,
    classify::ServerErrorsAsFailures,
    grpc::Code,
    refusal::{Fallback, Respond, ReturnError},
};
use http::{StatusCode, header::RETRY_AFTER};
use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::Duration,
};
use tower_layer::Layer;

/// Wraps a service in [`Degrade`]: a concurrency limit, a short queue with a delay rule, request
/// priorities and a manual switch decide whether the service answers or the request is shed.
///
/// # What a shed request gets
///
/// The builder methods every espresso layer shares:
///
/// - [`respond`](Self::respond) (the default): HTTP 503 with `Retry-After: 1` and the JSON error
///   `overloaded`, or gRPC `RESOURCE_EXHAUSTED`; [`respond_with`](Self::respond_with) picks the
///   [`Rejection`] (given the same `Retry-After: 1` when it carries none);
/// - [`return_error`](Self::return_error): `Err(`[`Shed`](crate::Shed)`)`, boxed (under axum's
///   `Router::layer`, behind a `HandleErrorLayer`);
/// - [`fallback`](Self::fallback): another service answers (a cheaper answer), finding the
///   [`Shed`](crate::Shed) in the request's extensions.
///
/// # One layer, one limiter
///
/// Every service this layer wraps (each route under axum's `Router::layer`, every clone of the
/// layer) shares the same limit, in-flight count and queue, so the limit protects what they have
/// in common. The layer is a plain value: a setter returns a layer with a limiter of its own and
/// never changes a clone taken before it; the limiter is created when the layer first wraps a
/// service (or is asked for [`current_limit`](Self::current_limit)).
///
/// # Only around HTTP services
///
/// The layer wraps services of [`http::Request`]s (axum routers, tonic services, hyper services):
/// it reads a request's priority and its protocol from the request. Around a service of other
/// requests, use tower's `ConcurrencyLimit` and `LoadShed` instead.
///
/// # Refused settings
///
/// A setting that cannot mean what it says panics with a message naming the setter and the fix,
/// rather than being changed silently:
///
/// - at [`new`](Self::new): a limit whose `max_limit` is below its minimum (`min_limit`,
///   `min_concurrency`), or a window limit whose `max_window` is below its `min_window`, whatever
///   the order of the setters;
/// - at the setter: a `max_limit` of 0, a NaN or infinite setting of a limit algorithm, a
///   [`sheddable_fraction`](Self::sheddable_fraction) outside `[0, 1]`, a
///   [`queue_delay`](Self::queue_delay) interval shorter than its target;
/// - when the layer first wraps a service: a [`queue`](Self::queue) whose
///   [`queue_delay`](Self::queue_delay) interval is 0, so that it would hold no request.
///
/// Two layers (not clones of one) reporting into one [`DegradeMetrics`](crate::DegradeMetrics)
/// under one [`name`](Self::name) log a `tracing` WARN: give each its own name.
///
/// # Defaults
///
/// - shed requests answered with [`respond`](Self::respond);
/// - no queue: a request over the limit is shed at once ([`queue`](Self::queue) enables one);
/// - priorities from the `x-priority` header, unmarked requests critical; sheddable requests
///   admitted below 75% of the limit;
/// - overload signals from [`overload_signals`](crate::overload_signals);
/// - a switch that is off; no metrics.
pub struct DegradeLayer<P = Respond, Q = PriorityHeader, C = ServerErrorsAsFailures> {
    limit: Arc<dyn Fn() -> Box<dyn Limit> + Send + Sync>,
    settings: Settings,
    #[cfg(feature = "metrics")]
    metrics: Option<DegradeMetrics>,
    name: Arc<str>,
    core: Arc<OnceLock<Arc<Core>>>,
    policy: P,
    priority: Q,
    classify: C,
    switch: DegradeSwitch,
}

impl<P: Clone, Q: Clone, C: Clone> Clone for DegradeLayer<P, Q, C> {
    fn clone(&self) -> Self {
        Self {
            limit: self.limit.clone(),
            settings: self.settings,
            #[cfg(feature = "metrics")]
            metrics: self.metrics.clone(),
            name: self.name.clone(),
            core: self.core.clone(),
            policy: self.policy.clone(),
            priority: self.priority.clone(),
            classify: self.classify.clone(),
            switch: self.switch.clone(),
        }
    }
}

impl<P: fmt::Debug, Q: fmt::Debug, C> fmt::Debug for DegradeLayer<P, Q, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DegradeLayer")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("policy", &self.policy)
            .field("priority", &self.priority)
            .field("switch", &self.switch)
            .finish_non_exhaustive()
    }
}

/// When a shed request's client is told to try again.
const RETRY_AFTER_SHED: Duration = Duration::from_secs(1);

/// The rejection of a shed request: 503 `overloaded` with `Retry-After: 1`, gRPC
/// `RESOURCE_EXHAUSTED`.
fn overloaded() -> Rejection {
    Rejection::new(StatusCode::SERVICE_UNAVAILABLE, Code::ResourceExhausted)
        .code("overloaded")
        .message("the server is overloaded, try again later")
        .retry_after(RETRY_AFTER_SHED)
}

/// `rejection`, with the default rejection's `Retry-After` unless it carries one of its own.
fn with_retry_after(rejection: Rejection) -> Rejection {
    // `Rejection` does not tell its `Retry-After`; its rendered headers do, whether it was set
    // with `retry_after` or added with `header`. Rendered once, when the layer is built.
    if rejection
        .grpc_response::<()>()
        .headers()
        .contains_key(RETRY_AFTER)
    {
        rejection
    } else {
        rejection.retry_after(RETRY_AFTER_SHED)
    }
}

impl DegradeLayer {
    /// A layer driven by `limit` (any [`Limit`]: [`Gradient2`](crate::limit::Gradient2),
    /// [`Aimd`](crate::limit::Aimd), [`Vegas`](crate::limit::Vegas), [`Fixed`](crate::limit::Fixed)...),
    /// answering shed requests with [`respond`](Self::respond).
    ///
    /// # Panics
    ///
    /// If `limit` refuses its settings, e.g. a `max_limit` below its `min_limit`.
    pub fn new<L: Limit + Clone + Sync>(limit: L) -> Self {
        // The algorithms refuse contradictory bounds when first asked for the limit; asked here,
        // they do so where the layer is built rather than when it first wraps a service.
        limit.limit();
        Self {
            limit: Arc::new(move || Box::new(limit.clone())),
            settings: Settings {
                queue_capacity: 0,
                queue_delay: QueueDelay::default(),
                sheddable_fraction: 0.75,
            },
            #[cfg(feature = "metrics")]
            metrics: None,
            name: Arc::from("default"),
            core: Arc::default(),
            policy: Respond::new(overloaded()),
            priority: PriorityHeader::default(),
            classify: overload_signals(),
            switch: DegradeSwitch::new(),
        }
    }
}

impl<P, Q, C> DegradeLayer<P, Q, C> {
    /// The same settings with other policies, and a limiter of its own.
    fn with<P2, Q2, C2>(
        self,
        policies: impl FnOnce(P, Q, C) -> (P2, Q2, C2),
    ) -> DegradeLayer<P2, Q2, C2> {
        let (policy, priority, classify) = policies(self.policy, self.priority, self.classify);
        DegradeLayer {
            limit: self.limit,
            settings: self.settings,
            #[cfg(feature = "metrics")]
            metrics: self.metrics,
            name: self.name,
            core: Arc::default(),
            policy,
            priority,
            classify,
            switch: self.switch,
        }
    }

    /// A fresh limiter for a changed layer, so that clones taken before keep theirs.
    fn changed(mut self) -> Self {
        self.core = Arc::default();
        self
    }

    /// Shed requests get 503 with `Retry-After: 1` and the JSON error `overloaded` (gRPC:
    /// `RESOURCE_EXHAUSTED`). The default.
    pub fn respond(self) -> DegradeLayer<Respond, Q, C> {
        self.respond_with(overloaded())
    }

    /// Shed requests get `rejection` (shaped for HTTP or gRPC by the request). A rejection
    /// without a `Retry-After` of its own gets the default's, `Retry-After: 1` (a shed request may
    /// be admitted a moment later); set one with [`Rejection::retry_after`] to send another. To
    /// answer without one, use a [`fallback`](Self::fallback) service.
    pub fn respond_with(self, rejection: Rejection) -> DegradeLayer<Respond, Q, C> {
        let rejection = with_retry_after(rejection);
        self.with(|_, q, c| (Respond::new(rejection), q, c))
    }

    /// Shed requests fail with [`Shed`](crate::Shed), boxed into a `BoxError` with the inner
    /// service's errors.
    ///
    /// axum's `Router::layer` takes only services that cannot fail (it reports
    /// `Infallible: From<Box<dyn Error + Send + Sync>>` is not satisfied), so there this policy
    /// needs an `axum::error_handling::HandleErrorLayer` outside the layer to turn the error into
    /// a response; or keep the default, [`respond`](Self::respond), which answers by itself:
    ///
    /// ```
    /// use axum::{Router, error_handling::HandleErrorLayer, routing::get};
    /// use espresso_degrade::{DegradeLayer, limit::Fixed};
    /// use http::StatusCode;
    /// use tower::{BoxError, ServiceBuilder};
    ///
    /// let app: Router = Router::new().route("/", get(|| async { "hello" })).layer(
    ///     ServiceBuilder::new()
    ///         .layer(HandleErrorLayer::new(|_: BoxError| async {
    ///             StatusCode::SERVICE_UNAVAILABLE
    ///         }))
    ///         .layer(DegradeLayer::new(Fixed::new(64)).return_error()),
    /// );
    /// # let _ = app;
    /// ```
    pub fn return_error(self) -> DegradeLayer<ReturnError, Q, C> {
        self.with(|_, q, c| (ReturnError, q, c))
    }

    /// Shed requests go to `service` (a cheaper answer: a cache, a local-only engine...), which
    /// finds the [`Shed`](crate::Shed) in the request's extensions. It answers with a body of
    /// its own type: responses carry a [`FallbackBody`](espresso_common::FallbackBody), the
    /// inner service's body or the fallback's.
    pub fn fallback<S>(self, service: S) -> DegradeLayer<Fallback<S>, Q, C> {
        self.with(|_, q, c| (Fallback::new(service), q, c))
    }

    /// Decides request priorities with `priority`: a [`PriorityHeader`] or a closure
    /// `Fn(&Request<B>) -> Priority`.
    pub fn priority<Q2>(self, priority: Q2) -> DegradeLayer<P, Q2, C> {
        self.with(|p, _, c| (p, priority, c))
    }

    /// Decides which answers of the primary signal overload to the limit: a
    /// [`Classify`](espresso_common::classify::Classify) policy or a closure
    /// `Fn(Result<&Res, &E>) -> Outcome` (a failure signals overload; an ignored answer is no
    /// sample). `Res` and `E` are the service's response and error as the refusal policy types
    /// them. The default is [`overload_signals`](crate::overload_signals).
    pub fn classify<C2>(self, classify: C2) -> DegradeLayer<P, Q, C2> {
        self.with(|p, q, _| (p, q, classify))
    }

    /// Sheddable requests are admitted only while fewer than `fraction` of the limit are in flight
    /// (0.75 by default; within `[0, 1]`, and at least one request is always admitted).
    ///
    /// # Panics
    ///
    /// If `fraction` is NaN or outside `[0, 1]` (it is a fraction of the limit: 0.75 for 75%).
    #[track_caller]
    pub fn sheddable_fraction(mut self, fraction: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&fraction),
            "degrade: `sheddable_fraction` must be within [0, 1], got {fraction}; it is a \
             fraction of the limit (0.75 for 75%)"
        );
        self.settings.sheddable_fraction = fraction;
        self.changed()
    }

    /// Lets up to `capacity` requests wait for a permit when the limit is reached, under the
    /// queueing-delay rule (see [`queue_delay`](Self::queue_delay)). 0 (the default) sheds at once.
    ///
    /// # Panics
    ///
    /// When the layer first wraps a service, if `capacity` is not 0 but the
    /// [`queue_delay`](Self::queue_delay) interval is: no request could wait in the queue.
    pub fn queue(mut self, capacity: usize) -> Self {
        self.settings.queue_capacity = capacity;
        self.changed()
    }

    /// The queueing-delay rule (after CoDel; 5 ms and 100 ms by default): a queued request waits
    /// at most `interval`, and only `target` once the delay has stayed above `target` for an
    /// `interval`. A `target` of 0 is allowed: once the delay has stayed above 0 for an interval,
    /// queued requests are given up on at once. See the [`queue`](crate::queue) module.
    ///
    /// # Panics
    ///
    /// If `interval` is shorter than `target`: no request waits longer than `interval`, so the
    /// delay could never stay above `target`. With a [`queue`](Self::queue), an `interval` of 0
    /// is refused when the layer first wraps a service.
    #[track_caller]
    pub fn queue_delay(mut self, target: Duration, interval: Duration) -> Self {
        assert!(
            interval >= target,
            "degrade: the `queue_delay` interval ({interval:?}) is shorter than its target \
             ({target:?}); no queued request waits longer than the interval, so the delay could \
             never stay above the target: make the interval at least the target (5 ms and \
             100 ms by default)"
        );
        self.settings.queue_delay = QueueDelay { target, interval };
        self.changed()
    }

    /// Uses `switch` as the manual switch: keep a clone for an admin endpoint or a config
    /// reload, or share one switch between layers. (Without one, the layer's switch stays off.)
    pub fn switch(mut self, switch: DegradeSwitch) -> Self {
        self.switch = switch;
        self
    }

    /// Names this layer in metrics (the `name` label; `default` unless set). Layers reporting into
    /// one [`DegradeMetrics`](crate::DegradeMetrics) need a name each: a second live layer under a
    /// name already in use logs a WARN.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self.changed()
    }

    /// Reports into `metrics` (registered once with [`DegradeMetrics::register`]), labelled with
    /// this layer's [`name`](Self::name). One set of metrics serves any number of layers.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: DegradeMetrics) -> Self {
        self.metrics = Some(metrics);
        self.changed()
    }

    /// The limiter every service of this layer shares, created on first use.
    fn core(&self) -> Arc<Core> {
        self.core
            .get_or_init(|| {
                // Checked here, once both setters have had their say, whatever their order.
                let Settings {
                    queue_capacity,
                    queue_delay,
                    ..
                } = self.settings;
                assert!(
                    queue_capacity == 0 || !queue_delay.interval.is_zero(),
                    "degrade: `queue({queue_capacity})` with a `queue_delay` interval of 0 gives \
                     up on every queued request at once, so the queue would hold none; give \
                     queue_delay an interval (100 ms by default), or remove `.queue(...)` to \
                     shed at once"
                );
                #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
                let mut core = Core::new((self.limit)(), self.settings);
                #[cfg(feature = "metrics")]
                if let Some(metrics) = &self.metrics {
                    core.set_metrics(metrics.for_layer(&self.name));
                }
                Arc::new(core)
            })
            .clone()
    }

    /// The current concurrency limit of this layer's limiter.
    pub fn current_limit(&self) -> usize {
        self.core().limit()
    }

    /// Requests currently in flight in the primary service (the services this layer wraps), as
    /// the `espresso_degrade_inflight` metric reports them.
    pub fn inflight(&self) -> usize {
        self.core().inflight()
    }
}

impl<S, P: Clone, Q: Clone, C: Clone> Layer<S> for DegradeLayer<P, Q, C> {
    type Service = Degrade<S, P, Q, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Degrade::from_parts(
            inner,
            self.policy.clone(),
            self.classify.clone(),
            self.core(),
            self.priority.clone(),
            self.switch.clone(),
        )
    }
}
