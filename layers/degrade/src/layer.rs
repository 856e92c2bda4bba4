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
use http::StatusCode;
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
///   [`Rejection`];
/// - [`return_error`](Self::return_error): `Err(`[`Shed`](crate::Shed)`)`, boxed;
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

/// The rejection of a shed request: 503 `overloaded` with `Retry-After: 1`, gRPC
/// `RESOURCE_EXHAUSTED`.
fn overloaded() -> Rejection {
    Rejection::new(StatusCode::SERVICE_UNAVAILABLE, Code::ResourceExhausted)
        .code("overloaded")
        .message("the server is overloaded, try again later")
        .retry_after(Duration::from_secs(1))
}

impl DegradeLayer {
    /// A layer driven by `limit` (any [`Limit`]: [`Gradient2`](crate::limit::Gradient2),
    /// [`Aimd`](crate::limit::Aimd), [`Vegas`](crate::limit::Vegas), [`Fixed`](crate::limit::Fixed)...),
    /// answering shed requests with [`respond`](Self::respond).
    pub fn new<L: Limit + Clone + Sync>(limit: L) -> Self {
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

    /// Shed requests get `rejection` (shaped for HTTP or gRPC by the request).
    pub fn respond_with(self, rejection: Rejection) -> DegradeLayer<Respond, Q, C> {
        self.with(|_, q, c| (Respond::new(rejection), q, c))
    }

    /// Shed requests fail with [`Shed`](crate::Shed), boxed into a `BoxError` with the inner
    /// service's errors.
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
    /// (0.75 by default; clamped into `[0, 1]`, and at least one request is always admitted).
    pub fn sheddable_fraction(mut self, fraction: f64) -> Self {
        if fraction.is_finite() {
            self.settings.sheddable_fraction = fraction.clamp(0.0, 1.0);
        }
        self.changed()
    }

    /// Lets up to `capacity` requests wait for a permit when the limit is reached, under the
    /// queueing-delay rule (see [`queue_delay`](Self::queue_delay)). 0 (the default) sheds at once.
    pub fn queue(mut self, capacity: usize) -> Self {
        self.settings.queue_capacity = capacity;
        self.changed()
    }

    /// The queueing-delay rule (after CoDel; 5 ms and 100 ms by default): a queued request waits
    /// at most `interval`, and only `target` once the delay has stayed above `target` for an
    /// `interval`. See the [`queue`](crate::queue) module.
    pub fn queue_delay(mut self, target: Duration, interval: Duration) -> Self {
        self.settings.queue_delay = QueueDelay {
            target,
            interval: interval.max(target),
        };
        self.changed()
    }

    /// Uses `switch` as the manual switch: keep a clone for an admin endpoint or a config
    /// reload, or share one switch between layers. (Without one, the layer's switch stays off.)
    pub fn switch(mut self, switch: DegradeSwitch) -> Self {
        self.switch = switch;
        self
    }

    /// Names this layer in metrics (the `name` label; `default` unless set).
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

    /// Requests currently in flight in the services this layer wraps.
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
