//! The accept loop: HTTP/1.1 and HTTP/2 (h2c, so gRPC too) on one listener, with the limits an
//! edge proxy would set and a bounded graceful drain.
//!
//! axum's `serve` is simpler but sets no connection limit or timeout, so a client trickling its
//! headers (slowloris), a connection that never sends a byte or an HTTP/2 client that never
//! opens its flow-control window would hold memory and a file descriptor for ever. Here:
//!
//! - at most `max_connections` connections: past it the loop stops accepting (a WARN, and
//!   `espresso_connections_limit_reached_total`) until one closes;
//! - each connection has a watchdog ([`conn`]): first byte and request heads within
//!   `header_read_timeout`, `idle_timeout` without a request, `send_timeout` for a socket the
//!   client stops reading;
//! - each answer is sent in slices and watched ([`send`]): an HTTP/2 stream whose answer makes
//!   no progress for `send_timeout` is reset; answers waiting on one connection are held to
//!   `max_buffered_response_bytes`;
//! - request heads are held to `max_header_bytes` (431 past it), HTTP/2 to
//!   `http2_max_concurrent_streams` streams.

use axum::body::{Body, Bytes, HttpBody};
use futures_util::{FutureExt, future::Either};
use http::{HeaderValue, Request, Response, Version, header::CONNECTION};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::conn::auto,
};
use std::{
    cell::RefCell,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tower::ServiceExt;

mod conn;
mod send;

use crate::{config::ServerConfig, metrics::ListenerMetrics};
pub(crate) use conn::Timeout;
use conn::{ConnState, Next, Timeouts, Watched};
use send::{Guarded, OpenGuard, StreamExecutor};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// After a shutdown delay, how long connections accepted just before the listener closed get to
/// deliver their first request.
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(200);

/// The whole server as one service: every layer and route (see `stack` in the crate root).
pub(crate) trait Stack<B>:
    tower::Service<
        Request<Body>,
        Response = Response<B>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S, B> Stack<B> for S where
    S: tower::Service<
            Request<Body>,
            Response = Response<B>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// What a [`Stack`] answers with: any body hyper can send.
pub(crate) trait ResponseBody:
    HttpBody<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> ResponseBody for B where B: HttpBody<Data = Bytes, Error: Into<BoxError>> + Send + 'static {}

/// Connection-level limits (`[server]`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// First byte, idle and send timeouts.
    pub(crate) timeouts: Timeouts,
    /// In-flight requests get this long to finish once shutdown starts.
    pub(crate) drain_timeout: Duration,
    /// Largest request head; also the cap of an HTTP/1 connection's read buffer.
    pub(crate) max_header_bytes: usize,
    /// Streams open at once on one HTTP/2 connection.
    pub(crate) http2_max_concurrent_streams: u32,
    /// Answer bytes one connection may have waiting for its client.
    pub(crate) max_buffered_response_bytes: usize,
    /// Connections open at once.
    pub(crate) max_connections: usize,
}

impl ConnLimits {
    /// The limits `[server]` sets, with `max_connections` as the open-file limit allows.
    pub(crate) fn new(server: &ServerConfig, max_connections: usize) -> Self {
        Self {
            timeouts: Timeouts {
                header_read: Duration::from_millis(server.header_read_timeout_ms),
                idle: Duration::from_millis(server.idle_timeout_ms),
                send: Duration::from_millis(server.send_timeout_ms),
            },
            drain_timeout: Duration::from_millis(server.drain_timeout_ms),
            max_header_bytes: server.max_header_bytes,
            http2_max_concurrent_streams: server.http2_max_concurrent_streams,
            max_buffered_response_bytes: server.max_buffered_response_bytes,
            max_connections,
        }
    }
}

/// How long a connection the watchdog shut down gracefully (idle) gets to finish closing
/// (HTTP/2: its GOAWAY and the lingering close) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How often, at most, the WARN that the connection limit is reached is logged.
const LIMIT_WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves `stack` on `listener` until `shutdown` completes, then drains. While `closing` is
/// set, HTTP/1 answers carry `Connection: close`.
pub(crate) async fn serve<B: ResponseBody>(
    listener: TcpListener,
    stack: impl Stack<B>,
    limits: ConnLimits,
    metrics: ListenerMetrics,
    closing: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) {
    let executor = StreamExecutor {
        send_timeout: limits.timeouts.send,
        timed_out: metrics.timeout(Timeout::Send).clone(),
    };
    let mut builder = auto::Builder::new(executor);
    builder
        .http1()
        .timer(TokioTimer::new())
        // The connection's watchdog times request heads: from the first byte of each, so that
        // a keep-alive connection waits `idle_timeout` between requests.
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20))
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let (drain, watch_drain) = tokio::sync::watch::channel(());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    metrics.max.set(limits.max_connections as i64);
    let accept = |stream: TcpStream, peer: SocketAddr, slot: OwnedSemaphorePermit| {
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::new(Instant::now()));
        let service = PerConnection {
            stack: RefCell::new(stack.clone()),
            peer,
            closing: closing.clone(),
            conn: state.clone(),
            budget: limits.max_buffered_response_bytes,
        };
        let io = TokioIo::new(Watched::new(stream, state.clone()));
        let connection = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let mut drain = watch_drain.clone();
        let metrics = metrics.clone();
        let timeouts = limits.timeouts;
        tokio::spawn(async move {
            let _slot = slot;
            metrics.open.inc();
            let _open = scopeguard(|| metrics.open.dec());
            let mut connection = std::pin::pin!(connection);
            // The first look: no timeout can end sooner than the shortest.
            let first = timeouts.header_read.min(timeouts.idle).min(timeouts.send);
            let check = tokio::time::sleep(first);
            let mut check = std::pin::pin!(check);
            let mut drained = std::pin::pin!(drain.changed());
            let watch = WatchWaker::new();
            let (mut draining, mut closing) = (false, false);
            loop {
                let event = std::future::poll_fn(|cx| {
                    if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                        return Poll::Ready(Event::Ended(result));
                    }
                    // The watchdog only when its timer or the drain signal woke the task, not
                    // on each of the connection's reads and writes.
                    let Some(mut cx) = watch.woken(cx) else {
                        return Poll::Pending;
                    };
                    if check.as_mut().poll(&mut cx).is_ready() {
                        return Poll::Ready(Event::Check);
                    }
                    if !draining && drained.as_mut().poll(&mut cx).is_ready() {
                        return Poll::Ready(Event::Drain);
                    }
                    Poll::Pending
                })
                .await;
                // Whatever it was, the watchdog looks again at the next poll.
                watch.wake();
                match event {
                    Event::Ended(result) => {
                        if let Err(error) = result {
                            tracing::debug!(%peer, %error, "connection ended with an error");
                        }
                        break;
                    }
                    Event::Check => {
                        if closing {
                            break;
                        }
                        let now = Instant::now();
                        match next_check(&state, &timeouts, now) {
                            Next::CheckAt(at) => check.as_mut().reset(at),
                            Next::Close(timeout) => {
                                metrics.timeout(timeout).inc();
                                tracing::debug!(%peer, timeout = timeout.as_str(), "closing a connection");
                                if timeout != Timeout::Idle {
                                    break;
                                }
                                connection.as_mut().graceful_shutdown();
                                closing = true;
                                check.as_mut().reset(now + CLOSE_GRACE);
                            }
                        }
                    }
                    Event::Drain => {
                        draining = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    };
    tokio::pin!(shutdown);
    let mut last_warning: Option<Instant> = None;
    'accept: loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics.limit_reached.inc();
                if last_warning.is_none_or(|at| at.elapsed() >= LIMIT_WARN_EVERY) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: not accepting until a connection closes \
                         (raise server.max_connections if the machine has room)"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = &mut shutdown => break 'accept,
                }
            }
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => accept(stream, peer, slot),
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    // Set before `shutdown` completed when there was a shutdown delay; read once for both steps.
    let delayed = closing.load(Ordering::Relaxed);
    if delayed {
        // Connections the kernel completed but nobody accepted yet would be reset with the
        // listener, their requests unanswered: serve those too (past the connection limit:
        // this is the last of them).
        while let Some(Ok((stream, peer))) = listener.accept().now_or_never() {
            let slot = match slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    slots.add_permits(1);
                    slots.clone().try_acquire_owned().expect("just added")
                }
            };
            accept(stream, peer, slot);
        }
    }
    drop(listener);
    drop(watch_drain);
    if delayed {
        // A connection accepted in the last moments may hold a request not read yet; graceful
        // shutdown would close it as idle. Let those requests arrive: each is answered with
        // `Connection: close`.
        tokio::time::sleep(FIRST_REQUEST_GRACE).await;
    }
    let _ = drain.send(());
    tokio::select! {
        () = drain.closed() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!(drain = ?limits.drain_timeout, "drain timeout: closing remaining connections");
        }
    }
}

/// What ended a wait of a connection's task.
enum Event<E> {
    /// The connection ended.
    Ended(Result<(), E>),
    /// The watchdog's timer fired.
    Check,
    /// The server began to drain.
    Drain,
}

/// The waker a connection's watchdog (its timer and the drain signal) is polled with: it notes
/// that it was woken, then wakes the task. The task is woken for every read and write of its
/// connection; polling the watchdog each time would cost a timer and a channel poll per wake.
struct WatchWaker {
    flag: Arc<WatchFlag>,
    waker: Waker,
}

struct WatchFlag {
    woken: AtomicBool,
    task: futures_util::task::AtomicWaker,
}

impl std::task::Wake for WatchFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl WatchWaker {
    /// Woken at first: the watchdog is polled once to arm it.
    fn new() -> Self {
        let flag = Arc::new(WatchFlag {
            woken: AtomicBool::new(true),
            task: futures_util::task::AtomicWaker::new(),
        });
        let waker = Waker::from(flag.clone());
        Self { flag, waker }
    }

    /// A context to poll the watchdog with when it woke the task since it was last polled;
    /// `None` otherwise. Either way, a later wake reaches the task behind `cx`.
    fn woken(&self, cx: &Context<'_>) -> Option<Context<'_>> {
        self.flag.task.register(cx.waker());
        self.flag
            .woken
            .swap(false, Ordering::Acquire)
            .then(|| Context::from_waker(&self.waker))
    }

    /// Makes the next [`WatchWaker::woken`] poll the watchdog.
    fn wake(&self) {
        self.flag.woken.store(true, Ordering::Release);
    }
}

/// The watchdog's next step: the connection's own timeouts, and (HTTP/1, whose answers the
/// connection's task sends) the send timeout of the answer in progress.
fn next_check(state: &ConnState, timeouts: &Timeouts, now: Instant) -> Next {
    let next = state.next(timeouts, now);
    match (next, state.sending.last()) {
        (Next::CheckAt(_), Some(last)) if last + timeouts.send <= now => Next::Close(Timeout::Send),
        (Next::CheckAt(at), Some(last)) => Next::CheckAt(at.min(last + timeouts.send)),
        (next, _) => next,
    }
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// One connection's view of the stack: requests carry the peer address, and HTTP/1 answers
/// carry `Connection: close` while the server is closing.
///
/// The connection keeps its own copy of the stack and calls it in place. `TowerToHyperService`
/// would clone the whole stack for every request: every layer's `Arc`s, counted up and down by
/// both cores on shared cache lines.
struct PerConnection<S> {
    // Only the connection's task calls the service, one request at a time.
    stack: RefCell<S>,
    peer: SocketAddr,
    closing: Arc<AtomicBool>,
    /// What the connection is doing, for its watchdog and its buffer budget.
    conn: Arc<ConnState>,
    /// `max_buffered_response_bytes`.
    budget: usize,
}

/// A response future, boxed: requests that wait for their connection's buffer budget.
type Waiting<B> = Pin<Box<dyn Future<Output = Result<Response<B>, Infallible>> + Send>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for PerConnection<S>
where
    // The `Service` bound names `B` (as `Stack<B>` alone cannot).
    S: Stack<B> + tower::Service<Request<Body>, Response = Response<B>>,
    B: ResponseBody,
{
    type Response = Response<Guarded<B>>;
    type Error = Infallible;
    type Future =
        Answer<Either<S::Future, Either<tower::util::Oneshot<S, Request<Body>>, Waiting<B>>>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        // The rate limit's key reads the peer address from here.
        request.extensions_mut().insert(self.peer);
        self.conn.request_started();
        let http1 = request.version() < Version::HTTP_2;
        let open = OpenGuard {
            state: self.conn.clone(),
            http1,
        };
        let close = http1.then(|| self.closing.clone());
        if self.conn.over_budget(self.budget) {
            // The client has not read the answers before this one: answer once it has.
            let (state, budget) = (self.conn.clone(), self.budget);
            let stack = self.stack.borrow().clone();
            let waiting: Waiting<B> = Box::pin(async move {
                // Waiting for the client to read counts as sending: the send timeout applies.
                send::mark_on(&state, http1, true);
                loop {
                    let drained = state.drained.clone().notified_owned();
                    let mut drained = std::pin::pin!(drained);
                    drained.as_mut().enable();
                    if !state.over_budget(budget) {
                        break;
                    }
                    drained.await;
                }
                send::mark_on(&state, http1, false);
                stack.oneshot(request).await
            });
            let inner = Either::Right(Either::Right(waiting));
            return Answer {
                inner,
                close,
                open: Some(open),
            };
        }
        let mut stack = self.stack.borrow_mut();
        let inner = match stack.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => Either::Left(stack.call(request)),
            Poll::Ready(Err(never)) => match never {},
            // No layer of the stack waits to be ready; should one, a copy waits for it.
            Poll::Pending => Either::Right(Either::Left(stack.clone().oneshot(request))),
        };
        Answer {
            inner,
            close,
            open: Some(open),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`PerConnection`].
    struct Answer<F> {
        #[pin]
        inner: F,
        // HTTP/1 only: whether the server is closing when the answer is ready.
        close: Option<Arc<AtomicBool>>,
        // Moves into the answer's body, which keeps the request open until it ends.
        open: Option<OpenGuard>,
    }
}

impl<F, B> Future for Answer<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: HttpBody<Data = Bytes>,
{
    type Output = Result<Response<Guarded<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(Ok(mut response)) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        if this
            .close
            .as_ref()
            .is_some_and(|closing| closing.load(Ordering::Relaxed))
        {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        let open = this.open.take();
        Poll::Ready(Ok(response.map(|body| Guarded::new(body, open))))
    }
}

/// SIGTERM and SIGINT, caught from the moment [`ShutdownSignal::install`] returns: installed
/// before the listener opens, a signal that lands while the server starts up is a graceful
/// shutdown too, never the default action (the process killed under its first requests).
pub(crate) struct ShutdownSignal {
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 2],
}

impl ShutdownSignal {
    pub(crate) fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                signals: [
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::interrupt())?,
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for either signal.
    pub(crate) async fn recv(self) {
        #[cfg(unix)]
        {
            let [mut terminate, mut interrupt] = self.signals;
            tokio::select! {
                _ = terminate.recv() => {},
                _ = interrupt.recv() => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
