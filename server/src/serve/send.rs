//! Answers a client reads nothing of: the per-stream send timeout and the per-connection budget
//! of buffered answer bytes.
//!
//! HTTP/2 flow control lets a client stop an answer without stopping the socket: with a zero
//! window, hyper holds the answer and waits for capacity that never comes. Each answer body is
//! wrapped in a [`Guarded`] body, which hands the answer to hyper in slices of at most
//! [`SLICE`] and records, in the [`Progress`] of the task sending it, when hyper last took one
//! (an HTTP/2 stream's task keeps its own in a task-local; an HTTP/1 connection's is in the
//! connection's state, read without one). A task that serves answers (an HTTP/2 stream's task,
//! spawned through [`StreamExecutor`]; an HTTP/1 connection's task) is watched: an answer that made no progress for `send_timeout` ends the
//! task, and dropping it resets the stream (`RST_STREAM CANCEL`) and frees what hyper and h2
//! buffered for it. For HTTP/1 that closes the connection.

use super::conn::ConnState;
use axum::body::{Bytes, HttpBody};
use hyper::body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use prometheus::IntCounter;
use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    task::{Context, Poll, ready},
    time::Duration,
};
use tokio::time::{Instant, Sleep};

/// Largest piece of an answer handed to hyper at once: what an HTTP/2 stream buffers beyond
/// the client's window, and the step in which progress is seen.
pub(crate) const SLICE: usize = 16 * 1024;

tokio::task_local! {
    /// The progress of the answer the current task is sending, if the task is watched.
    static PROGRESS: Arc<Progress>;
}

/// When the answer a task sends last moved, or that it sends none.
#[derive(Debug)]
pub(crate) struct Progress {
    base: Instant,
    /// Nanoseconds since `base` + 1; 0: not sending.
    last: AtomicU64,
}

impl Progress {
    /// Nothing sent yet; times count from `base`.
    pub(crate) fn new(base: Instant) -> Self {
        Self {
            base,
            last: AtomicU64::new(0),
        }
    }

    /// Records progress (`Some(now)`) or the end of sending (`None`).
    pub(crate) fn set(&self, at: Option<Instant>) {
        let stamp = at.map_or(0, |at| {
            at.saturating_duration_since(self.base).as_nanos() as u64 + 1
        });
        self.last.store(stamp, Relaxed);
    }

    /// When the answer being sent last moved; `None` when none is being sent.
    pub(crate) fn last(&self) -> Option<Instant> {
        match self.last.load(Relaxed) {
            0 => None,
            stamp => Some(self.base + Duration::from_nanos(stamp - 1)),
        }
    }

    /// Runs `future` with this as the task's progress.
    pub(crate) fn scope<F: Future>(self: Arc<Self>, future: F) -> impl Future<Output = F::Output> {
        PROGRESS.scope(self, future)
    }
}

/// Records progress (`Some(now)`) or the end of sending (`None`) for the current task, when a
/// [`StreamExecutor`] watches it.
pub(crate) fn mark(sending: bool) {
    let _ = PROGRESS.try_with(|progress| progress.set(sending.then(Instant::now)));
}

/// Spawns hyper's HTTP/2 stream tasks, each watched for an answer that stops moving.
#[derive(Clone)]
pub(crate) struct StreamExecutor {
    pub(crate) send_timeout: Duration,
    /// `espresso_connection_timeouts_total{timeout="send"}`.
    pub(crate) timed_out: IntCounter,
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        let progress = Arc::new(Progress::new(Instant::now()));
        tokio::spawn(SendWatch {
            inner: progress.clone().scope(future),
            progress,
            timeout: self.send_timeout,
            sleep: None,
            timed_out: self.timed_out.clone(),
        });
    }
}

pin_project! {
    /// A task that ends when the answer it sends stops moving for `timeout`.
    struct SendWatch<F> {
        #[pin]
        inner: F,
        progress: Arc<Progress>,
        timeout: Duration,
        sleep: Option<Pin<Box<Sleep>>>,
        timed_out: IntCounter,
    }
}

impl<F: Future<Output = ()>> Future for SendWatch<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.inner.poll(cx).is_ready() {
            return Poll::Ready(());
        }
        loop {
            let Some(last) = this.progress.last() else {
                return Poll::Pending;
            };
            let deadline = last + *this.timeout;
            if deadline <= Instant::now() {
                this.timed_out.inc();
                tracing::debug!(timeout = ?this.timeout, "send timeout: resetting a stream the client reads nothing of");
                return Poll::Ready(());
            }
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            ready!(sleep.as_mut().poll(cx));
        }
    }
}

/// Decrements the connection's open requests when dropped: the request's answer ended (or
/// was abandoned).
pub(crate) struct OpenGuard {
    pub(crate) state: Arc<ConnState>,
    /// HTTP/1: the connection's task sends the answer, and its progress is the connection's.
    /// HTTP/2: a stream's task sends it and keeps its progress in a task-local.
    pub(crate) http1: bool,
}

impl OpenGuard {
    /// Records the progress of the answer.
    pub(crate) fn mark(&self, sending: bool) {
        mark_on(&self.state, self.http1, sending);
    }
}

/// Records the progress of an answer on `state`'s connection: in the connection's own record
/// (HTTP/1) or the stream task's (HTTP/2, [`mark`]).
pub(crate) fn mark_on(state: &ConnState, http1: bool, sending: bool) {
    if http1 {
        state.sending.set(sending.then(Instant::now));
    } else {
        mark(sending);
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.state.request_ended(Instant::now());
    }
}

pin_project! {
    /// An answer body handed to hyper in slices of at most [`SLICE`] bytes, counted against
    /// its connection's buffer budget and its task's [`Progress`] until it ends.
    pub(crate) struct Guarded<B> {
        #[pin]
        inner: B,
        // What remains of a frame larger than a slice.
        rest: Bytes,
        // Bytes counted in the connection's budget.
        counted: usize,
        // HTTP/1: progress was marked by `new` and the body was not polled since.
        marked: bool,
        open: Option<OpenGuard>,
    }

    impl<B> PinnedDrop for Guarded<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(open) = this.open.take() {
                open.state.unbuffer(*this.counted);
                open.mark(false);
            }
        }
    }
}

impl<B: HttpBody<Data = Bytes>> Guarded<B> {
    /// Wraps `inner`; with `open`, its size counts against the connection's budget until it
    /// ends and the current task watches its progress.
    pub(crate) fn new(inner: B, open: Option<OpenGuard>) -> Self {
        let (counted, marked) = match &open {
            Some(open) if !inner.is_end_stream() => {
                let size = usize::try_from(inner.size_hint().lower()).unwrap_or(usize::MAX);
                open.state.buffer(size);
                open.mark(true);
                (size, open.http1)
            }
            _ => (0, false),
        };
        Self {
            inner,
            rest: Bytes::new(),
            counted,
            marked,
            open,
        }
    }
}

impl<B: HttpBody<Data = Bytes>> HttpBody for Guarded<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        // Each poll says the frame before it was taken. HTTP/1's first poll comes right after
        // `new` marked the answer ready, or once a full socket drains (which the connection
        // times by itself): its clock read would say nothing new. HTTP/2 polls a body once the
        // client opened its window, which is progress.
        if let Some(open) = this.open
            && !std::mem::take(this.marked)
        {
            open.mark(true);
        }
        if !this.rest.is_empty() {
            let slice = this.rest.split_to(SLICE.min(this.rest.len()));
            return Poll::Ready(Some(Ok(Frame::data(slice))));
        }
        match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut data) if data.len() > SLICE => {
                    *this.rest = data.split_off(SLICE);
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Ok(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        hint.set_lower(hint.lower() + rest);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + rest);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    //! Progress and the watch, on a paused clock: time moves only when the test says so.

    use super::*;
    use crate::serve::conn::{Next, Timeout, Timeouts};
    use http_body_util::{BodyExt, Full};

    #[tokio::test(start_paused = true)]
    async fn a_large_answer_is_handed_over_in_slices_with_its_length_kept() {
        let body = Full::new(Bytes::from(vec![b'x'; 3 * SLICE + 5]));
        let state = Arc::new(ConnState::new(Instant::now()));
        state.request_started();
        let guarded = Guarded::new(
            body,
            Some(OpenGuard {
                state: state.clone(),
                http1: true,
            }),
        );
        assert_eq!(guarded.size_hint().exact(), Some(3 * SLICE as u64 + 5));
        assert!(state.over_budget(3 * SLICE));
        let mut guarded = Box::pin(guarded);
        let mut sizes = Vec::new();
        while let Some(frame) = guarded.frame().await {
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        assert_eq!(sizes, [SLICE, SLICE, SLICE, 5]);
        drop(guarded);
        assert!(!state.over_budget(1), "the budget is given back");
    }

    #[tokio::test(start_paused = true)]
    async fn an_http1_answer_keeps_its_progress_in_the_connection_until_it_ends() {
        let secs = Duration::from_secs;
        let timeouts = Timeouts {
            header_read: secs(10),
            idle: secs(60),
            send: secs(30),
        };
        let start = Instant::now();
        let state = Arc::new(ConnState::new(start));
        state.request_started();
        let body = Full::new(Bytes::from(vec![b'x'; 2 * SLICE]));
        let open = OpenGuard {
            state: state.clone(),
            http1: true,
        };
        let mut guarded = Box::pin(Guarded::new(body, Some(open)));
        assert_eq!(
            state.sending.last(),
            Some(start),
            "sending from the moment it is ready"
        );
        tokio::time::advance(secs(20)).await;
        assert!(guarded.frame().await.is_some());
        tokio::time::advance(secs(5)).await;
        assert!(guarded.frame().await.is_some(), "the second slice");
        assert_eq!(state.sending.last(), Some(start + secs(25)));
        // It stops moving: the connection closes `send` after its last progress.
        let at = |t| crate::serve::next_check(&state, &timeouts, start + secs(t));
        assert!(matches!(at(54), Next::CheckAt(_)));
        assert_eq!(at(55), Next::Close(Timeout::Send));
        drop(guarded);
        assert_eq!(state.sending.last(), None, "nothing is being sent any more");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_whose_answer_stops_moving_ends_after_the_send_timeout() {
        let timed_out = IntCounter::new("t", "t").unwrap();
        let executor = StreamExecutor {
            send_timeout: Duration::from_secs(30),
            timed_out: timed_out.clone(),
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        // A task that starts an answer, then waits forever for a window that never opens.
        hyper::rt::Executor::execute(&executor, async move {
            let _done = done_tx;
            mark(true);
            std::future::pending::<()>().await;
        });
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(timed_out.get(), 0);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(timed_out.get(), 1);
        // The task (and everything it held) is gone.
        assert!(done_rx.await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_keeps_moving_or_sends_nothing_is_left_alone() {
        let timed_out = IntCounter::new("t", "t").unwrap();
        let executor = StreamExecutor {
            send_timeout: Duration::from_secs(30),
            timed_out: timed_out.clone(),
        };
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
        hyper::rt::Executor::execute(&executor, async move {
            for _ in 0..10 {
                mark(true);
                tokio::time::sleep(Duration::from_secs(20)).await;
            }
            mark(false);
            tokio::time::sleep(Duration::from_secs(100)).await;
            let _ = done_tx.send(());
        });
        tokio::time::sleep(Duration::from_secs(301)).await;
        assert_eq!(timed_out.get(), 0);
        assert!(done_rx.try_recv().is_ok());
    }
}
