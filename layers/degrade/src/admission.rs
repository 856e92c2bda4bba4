//! The shared admission state: the limit, the requests in flight, the queue.

use crate::{
    DegradeReason, Priority,
    limit::Limit,
    metrics::Metrics,
    queue::{CoDel, QueueDelay},
};
use espresso_common::classify::HeadTime;
use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
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
    // Set once, before the limiter is shared.
    metrics: Option<Metrics>,
    /// [`Limit::takes_samples`]: without samples, requests read no clock.
    samples: bool,
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
    #[inline]
    fn threshold(&self, priority: Priority) -> usize {
        match priority {
            Priority::Critical => self.limit,
            Priority::Sheddable => {
                ((self.limit as f64 * self.settings.sheddable_fraction) as usize).max(1)
            }
        }
    }

    /// Hands free permits to waiters, critical ones first.
    #[inline]
    fn drain(&mut self) {
        // Every waiter still waiting is counted in `queued` (senders of waiters that left may
        // remain in the deques; they are swept or popped later).
        if self.queued > 0 {
            self.hand_out();
        }
    }

    #[inline(never)]
    fn hand_out(&mut self) {
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

    /// Observes a request admitted without waiting: a sojourn of zero, which reads the clock
    /// only when the target is zero too (then it counts as at or above the target).
    #[inline]
    fn observe_admitted(&mut self, now: Option<Instant>) {
        if self.settings.queue_delay.target.is_zero() {
            self.observe(Duration::ZERO, now.unwrap_or_else(Instant::now));
        } else if self.codel.below_target() {
            self.report(false);
        }
    }

    fn observe(&mut self, sojourn: Duration, now: Instant) {
        if let Some(shedding) = self.codel.observe(&self.settings.queue_delay, sojourn, now) {
            self.report(shedding);
        }
    }

    #[cold]
    #[inline(never)]
    fn report(&self, shedding: bool) {
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
        let samples = limit.takes_samples();
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
            metrics: None,
            samples,
        }
    }

    /// Reports into `metrics` from now on (set once, when the layer creates its limiter).
    #[cfg(feature = "metrics")]
    pub(crate) fn set_metrics(&mut self, metrics: Metrics) {
        let gate = lock(&self.gate);
        metrics.limit(gate.limit);
        metrics.gauges(gate.inflight, gate.queued);
        drop(gate);
        self.metrics = Some(metrics);
    }

    pub(crate) fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
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
        if let Some(m) = self.metrics.as_ref() {
            m.gauges(gate.inflight, gate.queued);
        }
    }

    /// The in-flight gauge alone, for a change that leaves the queue as it was.
    fn inflight_gauge(&self, gate: &Gate) {
        if let Some(m) = self.metrics.as_ref() {
            m.inflight(gate.inflight);
        }
    }

    /// Admits a request now, queues it, or sheds it.
    #[inline]
    pub(crate) fn admit(self: &Arc<Self>, priority: Priority) -> Admit {
        // One clock read per admission, for the sample's start, and none when the limit takes no
        // samples (unless the queueing-delay rule needs it).
        let start = self.samples.then(Instant::now);
        let mut gate = lock(&self.gate);
        if gate.inflight < gate.threshold(priority) {
            gate.inflight += 1;
            gate.observe_admitted(start);
            let inflight = gate.inflight;
            self.inflight_gauge(&gate);
            drop(gate);
            return Admit::Now(Permit::new(self.clone(), start, inflight));
        }
        self.queue_or_shed(gate, priority, start)
    }

    /// The rest of [`admit`](Self::admit) once the limit is reached, kept out of the path of an
    /// admitted request.
    #[inline(never)]
    fn queue_or_shed(
        self: &Arc<Self>,
        mut gate: MutexGuard<'_, Gate>,
        priority: Priority,
        start: Option<Instant>,
    ) -> Admit {
        if gate.queued >= gate.settings.queue_capacity {
            return Admit::Shed(DegradeReason::Limit);
        }
        let now = start.unwrap_or_else(Instant::now);
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
        self.give_back(&mut lock(&self.gate));
    }

    /// Gives a finished request's place back and hands free places to waiters.
    fn give_back(&self, gate: &mut Gate) {
        gate.inflight = gate.inflight.saturating_sub(1);
        gate.drain();
        self.inflight_gauge(gate);
    }

    /// Feeds a finished request to the limit algorithm (its round trip: `rtt`, or until now)
    /// and, unless it was freed at its head already, releases its place, under one lock of the
    /// gate.
    fn sample_and_release(
        &self,
        start: Instant,
        rtt: Option<Duration>,
        inflight: usize,
        dropped: bool,
    ) {
        let now = Instant::now();
        let freed = rtt.is_some();
        let rtt = rtt.unwrap_or_else(|| now.saturating_duration_since(start));
        let new = {
            let mut algorithm = lock(&self.algorithm);
            let new = algorithm
                .limit
                .on_sample(start, rtt, inflight, dropped)
                .max(1);
            let since = algorithm.reported.abs_diff(new);
            if since * 10 >= algorithm.reported
                && algorithm
                    .reported_at
                    .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY)
            {
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
            if let Some(m) = self.metrics.as_ref() {
                m.limit(new);
            }
        }
        if freed {
            // a limit raised now may admit waiters
            gate.drain();
            self.inflight_gauge(&gate);
        } else {
            self.give_back(&mut gate);
        }
    }
}

/// A request's place in the limit, held until its response head: classified there, or, for a
/// gRPC stream whose status comes in its trailers, deferred there (`Complete::deferred`), which
/// frees the place (what follows is paced by the client); its sample, taken when its outcome
/// comes, has its time to the head. Released when dropped.
pub struct Permit {
    // `None` once recorded or released.
    core: Option<Arc<Core>>,
    // When the request was admitted; `None` when the limit takes no samples.
    start: Option<Instant>,
    inflight: usize,
    // The time to the response head, once the place was freed there.
    answered_after: HeadTime,
}

impl Permit {
    fn new(core: Arc<Core>, start: Option<Instant>, inflight: usize) -> Self {
        Self {
            core: Some(core),
            start,
            inflight,
            answered_after: HeadTime::NONE,
        }
    }

    /// Feeds the finished request to the limit algorithm, then releases the permit.
    #[inline]
    pub(crate) fn record(mut self, dropped: bool) {
        // Without a start, the limit takes no samples: dropping releases the permit.
        if let Some(start) = self.start
            && let Some(core) = self.core.take()
        {
            core.sample_and_release(start, self.answered_after.get(), self.inflight, dropped);
        }
    }

    /// The callee answered with a head that leaves the outcome to the end of a streamed body:
    /// its place is free from now on, and its sample, taken when the outcome comes, has its
    /// time to the head as the round trip. A watch stream held open for minutes would otherwise
    /// hold a place all along and feed its whole life to the limit as one round trip,
    /// shrinking the limit until every other call is shed.
    pub(crate) fn answered(&mut self) {
        if self.answered_after != HeadTime::NONE {
            return;
        }
        let Some(core) = &self.core else {
            return;
        };
        self.answered_after
            .set(self.start.map_or(Duration::ZERO, |s| s.elapsed()));
        core.release();
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        // not freed at its head already
        if let Some(core) = &self.core
            && self.answered_after == HeadTime::NONE
        {
            core.release();
        }
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
            let start = self.core.samples.then_some(now);
            Ok(Permit::new(self.core.clone(), start, inflight))
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
