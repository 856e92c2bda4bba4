//! The shared admission state: the limit, the requests in flight, the queue.

use crate::{
    DegradeReason, Priority,
    limit::Limit,
    metrics::Metrics,
    queue::{CoDel, QueueDelay},
};
use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
    task::{Context, Poll, ready},
    time::Duration,
};
use tokio::{
    sync::oneshot,
    time::{Instant, Sleep},
};

/// A notable limit change is logged at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// One limiter, shared by every service a layer makes.
pub(crate) struct Core {
    algorithm: Mutex<Algorithm>,
    gate: Mutex<Gate>,
    metrics: OnceLock<Metrics>,
}

struct Algorithm {
    limit: Box<dyn Limit>,
    reported: usize,
    reported_at: Option<Instant>,
}

/// Settings a layer's builder may change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) queue_capacity: usize,
    pub(crate) queue_delay: QueueDelay,
    pub(crate) sheddable_fraction: f64,
}

struct Gate {
    settings: Settings,
    limit: usize,
    inflight: usize,
    queued: usize,
    waiters: [VecDeque<oneshot::Sender<()>>; 2],
    codel: CoDel,
}

impl Gate {
    fn threshold(&self, priority: Priority) -> usize {
        match priority {
            Priority::Critical => self.limit,
            Priority::Sheddable => {
                ((self.limit as f64 * self.settings.sheddable_fraction) as usize).max(1)
            }
        }
    }

    /// Hands free permits to waiters, critical ones first.
    fn drain(&mut self) {
        for priority in [Priority::Critical, Priority::Sheddable] {
            let threshold = self.threshold(priority);
            while self.inflight < threshold {
                let Some(tx) = self.waiters[priority.index()].pop_front() else {
                    break;
                };
                if tx.send(()).is_ok() {
                    self.inflight += 1;
                }
            }
        }
    }

    fn observe(&mut self, sojourn: Duration, now: Instant) {
        if let Some(shedding) = self.codel.observe(&self.settings.queue_delay, sojourn, now) {
            let rule = &self.settings.queue_delay;
            if shedding {
                tracing::debug!(
                    target_ms = rule.target.as_millis() as u64,
                    interval_ms = rule.interval.as_millis() as u64,
                    "queueing delay above target for an interval: shedding queued requests"
                );
            } else {
                tracing::debug!("queueing delay back below target");
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What [`Core::admit`] decided.
pub(crate) enum Admit {
    Now(Permit),
    Wait(Waiting),
    Shed(DegradeReason),
}

impl Core {
    pub(crate) fn new(limit: Box<dyn Limit>, settings: Settings) -> Self {
        let initial = limit.limit().max(1);
        Self {
            algorithm: Mutex::new(Algorithm {
                limit,
                reported: initial,
                reported_at: None,
            }),
            gate: Mutex::new(Gate {
                settings,
                limit: initial,
                inflight: 0,
                queued: 0,
                waiters: [VecDeque::new(), VecDeque::new()],
                codel: CoDel::default(),
            }),
            metrics: OnceLock::new(),
        }
    }

    /// Reports into `metrics` from now on (set once, when the layer creates its limiter).
    #[cfg(feature = "metrics")]
    pub(crate) fn set_metrics(&self, metrics: Metrics) {
        let gate = lock(&self.gate);
        metrics.limit(gate.limit);
        metrics.gauges(gate.inflight, gate.queued);
        let _first = self.metrics.set(metrics);
    }

    pub(crate) fn metrics(&self) -> Option<&Metrics> {
        self.metrics.get()
    }

    /// The current limit.
    pub(crate) fn limit(&self) -> usize {
        lock(&self.gate).limit
    }

    /// Requests in flight in the primary service.
    pub(crate) fn inflight(&self) -> usize {
        lock(&self.gate).inflight
    }

    fn gauges(&self, gate: &Gate) {
        if let Some(m) = self.metrics.get() {
            m.gauges(gate.inflight, gate.queued);
        }
    }

    /// Admits a request now, queues it, or sheds it.
    pub(crate) fn admit(self: &Arc<Self>, priority: Priority) -> Admit {
        let now = Instant::now();
        let mut gate = lock(&self.gate);
        if gate.inflight < gate.threshold(priority) {
            gate.inflight += 1;
            gate.observe(Duration::ZERO, now);
            let inflight = gate.inflight;
            self.gauges(&gate);
            return Admit::Now(Permit::new(self.clone(), inflight));
        }
        if gate.queued >= gate.settings.queue_capacity {
            return Admit::Shed(DegradeReason::Limit);
        }
        let (tx, rx) = oneshot::channel();
        let sweep_at = 2 * gate.settings.queue_capacity.max(8);
        let deque = &mut gate.waiters[priority.index()];
        // Waiters that gave up leave their sender behind; sweep them once they pile up.
        if deque.len() >= sweep_at {
            deque.retain(|tx| !tx.is_closed());
        }
        gate.waiters[priority.index()].push_back(tx);
        gate.queued += 1;
        let rule = gate.settings.queue_delay;
        self.gauges(&gate);
        drop(gate);
        Admit::Wait(Waiting {
            core: self.clone(),
            rx,
            enqueued: now,
            rule,
            sleep: Box::pin(tokio::time::sleep_until(now + rule.target)),
            past_target: false,
            done: false,
        })
    }

    fn release(&self) {
        let mut gate = lock(&self.gate);
        gate.inflight = gate.inflight.saturating_sub(1);
        gate.drain();
        self.gauges(&gate);
    }

    fn sample(&self, start: Instant, rtt: Duration, inflight: usize, dropped: bool) {
        let now = Instant::now();
        let new = {
            let mut algorithm = lock(&self.algorithm);
            let new = algorithm
                .limit
                .on_sample(start, rtt, inflight, dropped)
                .max(1);
            let since = algorithm.reported.abs_diff(new);
            let due = algorithm
                .reported_at
                .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY);
            if since * 10 >= algorithm.reported && due {
                tracing::info!(
                    from = algorithm.reported,
                    to = new,
                    rtt_ms = rtt.as_secs_f64() * 1e3,
                    dropped,
                    "concurrency limit changed"
                );
                algorithm.reported = new;
                algorithm.reported_at = Some(now);
            }
            new
        };
        let mut gate = lock(&self.gate);
        if gate.limit != new {
            gate.limit = new;
            gate.drain();
            if let Some(m) = self.metrics.get() {
                m.limit(new);
            }
            self.gauges(&gate);
        }
    }
}

/// A request's place in the limit, held by its response until the response is classified (at its
/// head, or when a streamed body ends); released when dropped.
pub struct Permit {
    core: Arc<Core>,
    start: Instant,
    inflight: usize,
}

impl Permit {
    fn new(core: Arc<Core>, inflight: usize) -> Self {
        Self {
            core,
            start: Instant::now(),
            inflight,
        }
    }

    /// Feeds the finished request to the limit algorithm, then releases the permit.
    pub(crate) fn record(self, dropped: bool) {
        let rtt = self.start.elapsed();
        self.core.sample(self.start, rtt, self.inflight, dropped);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.core.release();
    }
}

/// A request waiting in the queue for a permit.
pub(crate) struct Waiting {
    core: Arc<Core>,
    rx: oneshot::Receiver<()>,
    enqueued: Instant,
    rule: QueueDelay,
    sleep: Pin<Box<Sleep>>,
    past_target: bool,
    done: bool,
}

impl Waiting {
    fn finish(&mut self, granted: bool) -> Result<Permit, DegradeReason> {
        self.done = true;
        let now = Instant::now();
        let mut gate = lock(&self.core.gate);
        gate.queued = gate.queued.saturating_sub(1);
        gate.observe(now.duration_since(self.enqueued), now);
        let inflight = gate.inflight;
        self.core.gauges(&gate);
        drop(gate);
        if granted {
            Ok(Permit::new(self.core.clone(), inflight))
        } else {
            Err(DegradeReason::QueueDelay)
        }
    }
}

impl Future for Waiting {
    type Output = Result<Permit, DegradeReason>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(granted) = Pin::new(&mut this.rx).poll(cx) {
            return Poll::Ready(this.finish(granted.is_ok()));
        }
        loop {
            ready!(this.sleep.as_mut().poll(cx));
            if !this.past_target && !lock(&this.core.gate).codel.shedding() {
                // Calm: a burst may wait a whole interval.
                this.past_target = true;
                let until = this.enqueued + this.rule.interval.max(this.rule.target);
                this.sleep.as_mut().reset(until);
                continue;
            }
            // Give up, unless a permit arrived meanwhile.
            this.rx.close();
            let granted = this.rx.try_recv().is_ok();
            return Poll::Ready(this.finish(granted));
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // The request was cancelled while waiting: leave the queue, and hand back a permit that
        // may have arrived.
        self.rx.close();
        let granted = self.rx.try_recv().is_ok();
        let mut gate = lock(&self.core.gate);
        gate.queued = gate.queued.saturating_sub(1);
        if granted {
            gate.inflight = gate.inflight.saturating_sub(1);
            gate.drain();
        }
        self.core.gauges(&gate);
    }
}
