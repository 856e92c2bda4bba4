use crate::{
    Degrade, DegradeMetrics, DegradeSwitch, FallbackService, PriorityHeader, Reject, ShedError,
    admission::{Core, Settings},
    limit::Limit,
    queue::QueueDelay,
};
use espresso_common::Rejection;
use prometheus::Registry;
use std::{fmt, sync::Arc, time::Duration};
use tower_layer::Layer;

/// Wraps a service in [`Degrade`]: a concurrency limit, a short queue with a delay rule, request
/// priorities and a manual switch decide whether the service or a fallback answers.
///
/// # One layer, one limiter
///
/// Every service this layer wraps (each route under axum's `Router::layer`, every clone) shares
/// the same limit, in-flight count and queue, so the limit protects what they have in common.
/// Build another layer for an independent limiter. The builder's settings apply to that shared
/// limiter, including in clones made before the setting.
///
/// # Defaults
///
/// - fallback: [`Reject`] (503 with `Retry-After: 1`, gRPC `RESOURCE_EXHAUSTED`);
/// - no queue: a request over the limit goes to the fallback at once ([`queue`](Self::queue)
///   enables one);
/// - priorities from the `x-priority` header, unmarked requests critical; sheddable requests
///   admitted below 75% of the limit;
/// - a switch that is off; no metrics.
pub struct DegradeLayer<F = Reject, P = PriorityHeader> {
    core: Arc<Core>,
    fallback: F,
    priority: P,
    switch: DegradeSwitch,
    name: Arc<str>,
}

impl<F: Clone, P: Clone> Clone for DegradeLayer<F, P> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            fallback: self.fallback.clone(),
            priority: self.priority.clone(),
            switch: self.switch.clone(),
            name: self.name.clone(),
        }
    }
}

impl<F: fmt::Debug, P: fmt::Debug> fmt::Debug for DegradeLayer<F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DegradeLayer")
            .field("name", &self.name)
            .field("limit", &self.core.limit())
            .field("settings", &self.core.settings())
            .field("fallback", &self.fallback)
            .field("priority", &self.priority)
            .field("switch", &self.switch)
            .finish()
    }
}

impl DegradeLayer {
    /// A layer driven by `limit` (any [`Limit`]: [`Gradient2`](crate::limit::Gradient2),
    /// [`Aimd`](crate::limit::Aimd), [`Vegas`](crate::limit::Vegas), [`Fixed`](crate::limit::Fixed)...),
    /// answering overload with [`Reject`].
    pub fn new(limit: impl Limit) -> Self {
        let settings = Settings {
            queue_capacity: 0,
            queue_delay: QueueDelay::default(),
            sheddable_fraction: 0.75,
        };
        Self {
            core: Arc::new(Core::new(Box::new(limit), settings)),
            fallback: Reject::default(),
            priority: PriorityHeader::default(),
            switch: DegradeSwitch::new(),
            name: Arc::from("default"),
        }
    }
}

impl<F, P> DegradeLayer<F, P> {
    fn with_fallback<G>(self, fallback: G) -> DegradeLayer<G, P> {
        DegradeLayer {
            core: self.core,
            fallback,
            priority: self.priority,
            switch: self.switch,
            name: self.name,
        }
    }

    /// Sends shed requests to `service` (a cheaper answer: a cache, a local-only engine...). The
    /// request carries its [`DegradeReason`](crate::DegradeReason) in its extensions.
    pub fn fallback<T>(self, service: T) -> DegradeLayer<FallbackService<T>, P> {
        self.with_fallback(FallbackService::new(service))
    }

    /// Answers shed requests with `rejection` (shaped for HTTP or gRPC by the request).
    pub fn rejection(self, rejection: Rejection) -> DegradeLayer<Reject, P> {
        self.with_fallback(Reject::new(rejection))
    }

    /// Answers shed requests with `Err(`[`Shed`](crate::Shed)`)` (as a `BoxError`).
    pub fn error(self) -> DegradeLayer<ShedError, P> {
        self.with_fallback(ShedError)
    }

    /// Decides request priorities with `priority`: a [`PriorityHeader`] or a closure
    /// `Fn(&Request<B>) -> Priority`.
    pub fn priority<Q>(self, priority: Q) -> DegradeLayer<F, Q> {
        DegradeLayer {
            core: self.core,
            fallback: self.fallback,
            priority,
            switch: self.switch,
            name: self.name,
        }
    }

    /// Sheddable requests are admitted only while fewer than `fraction` of the limit are in flight
    /// (0.75 by default; clamped into `[0, 1]`, and at least one request is always admitted).
    pub fn sheddable_fraction(self, fraction: f64) -> Self {
        let mut settings = self.core.settings();
        settings.sheddable_fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            settings.sheddable_fraction
        };
        self.core.set_settings(settings);
        self
    }

    /// Lets up to `capacity` requests wait for a permit when the limit is reached, under the
    /// queueing-delay rule (see [`queue_delay`](Self::queue_delay)). 0 (the default) sheds at once.
    pub fn queue(self, capacity: usize) -> Self {
        let mut settings = self.core.settings();
        settings.queue_capacity = capacity;
        self.core.set_settings(settings);
        self
    }

    /// The queueing-delay rule (after CoDel; 5 ms and 100 ms by default): a queued request waits
    /// at most `interval`, and only `target` once the delay has stayed above `target` for an
    /// `interval`. See the [`queue`](crate::queue) module.
    pub fn queue_delay(self, target: Duration, interval: Duration) -> Self {
        let mut settings = self.core.settings();
        settings.queue_delay = QueueDelay {
            target,
            interval: interval.max(target),
        };
        self.core.set_settings(settings);
        self
    }

    /// Uses `switch` as the manual switch (share one handle between layers, or keep it for an
    /// admin endpoint).
    pub fn switch(mut self, switch: DegradeSwitch) -> Self {
        self.switch = switch;
        self
    }

    /// The manual switch of this layer.
    pub fn switch_handle(&self) -> DegradeSwitch {
        self.switch.clone()
    }

    /// Names this layer in metrics (`name` label; `default` unless set). Set it before
    /// [`metrics`](Self::metrics).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Registers the [`DegradeMetrics`] into `registry` and reports into them.
    ///
    /// Registering fails when the registry has them already (another layer registered them):
    /// that is logged as a warning and the layer reports nothing. Create the metrics once with
    /// [`DegradeMetrics::new`] and give them to every layer with
    /// [`with_metrics`](Self::with_metrics) instead.
    pub fn metrics(self, registry: &Registry) -> Self {
        match DegradeMetrics::new(registry) {
            Ok(metrics) => self.with_metrics(&metrics),
            Err(error) => {
                tracing::warn!(%error, layer = %self.name, "degrade metrics not registered");
                self
            }
        }
    }

    /// Reports into `metrics`, labelled with this layer's [`name`](Self::name). A layer reports
    /// into the first metrics it was given.
    pub fn with_metrics(self, metrics: &DegradeMetrics) -> Self {
        if !self.core.set_metrics(metrics.for_layer(&self.name)) {
            tracing::warn!(layer = %self.name, "degrade layer already has metrics");
        }
        self
    }

    /// The current concurrency limit.
    pub fn current_limit(&self) -> usize {
        self.core.limit()
    }

    /// Requests currently in flight in the wrapped services.
    pub fn inflight(&self) -> usize {
        self.core.inflight()
    }
}

impl<S, F: Clone, P: Clone> Layer<S> for DegradeLayer<F, P> {
    type Service = Degrade<S, F, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Degrade::from_parts(
            inner,
            self.fallback.clone(),
            self.core.clone(),
            self.priority.clone(),
            self.switch.clone(),
        )
    }
}
