//! The accept loop: HTTP/1.1 and HTTP/2 (h2c, so gRPC too) on one listener, with header-read
//! timeouts against slow clients and a bounded graceful drain.
//!
//! axum's `serve` is simpler but sets no header-read timeout, so a client trickling its headers
//! (slowloris) would hold a connection forever; hyper-util's builder gives us that knob.

use axum::body::{Body, Bytes, HttpBody};
use futures_util::{FutureExt, future::Either};
use http::{HeaderValue, Request, Response, Version, header::CONNECTION};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
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
    task::{Context, Poll, Waker, ready},
    time::Duration,
};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

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

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// A client must send a request's headers within this long.
    pub(crate) header_read_timeout: Duration,
    /// In-flight requests get this long to finish once shutdown starts.
    pub(crate) drain_timeout: Duration,
}

/// Serves `stack` on `listener` until `shutdown` completes, then drains. While `closing` is
/// set, HTTP/1 answers carry `Connection: close`.
pub(crate) async fn serve<B: ResponseBody>(
    listener: TcpListener,
    stack: impl Stack<B>,
    limits: ConnLimits,
    closing: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20));
    let graceful = GracefulShutdown::new();
    let accept = |stream: TcpStream, peer: SocketAddr| {
        let _ = stream.set_nodelay(true);
        let service = PerConnection {
            stack: RefCell::new(stack.clone()),
            peer,
            closing: closing.clone(),
        };
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => accept(stream, peer),
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
        // listener, their requests unanswered: serve those too.
        while let Some(Ok((stream, peer))) = listener.accept().now_or_never() {
            accept(stream, peer);
        }
    }
    drop(listener);
    if delayed {
        // A connection accepted in the last moments may hold a request not read yet; graceful
        // shutdown would close it as idle. Let those requests arrive: each is answered with
        // `Connection: close`.
        tokio::time::sleep(FIRST_REQUEST_GRACE).await;
    }
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!(drain = ?limits.drain_timeout, "drain timeout: closing remaining connections");
        }
    }
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
}

impl<S, B> hyper::service::Service<Request<Incoming>> for PerConnection<S>
where
    // The `Service` bound names `B` (as `Stack<B>` alone cannot).
    S: Stack<B> + tower::Service<Request<Body>, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = Answer<Either<S::Future, tower::util::Oneshot<S, Request<Body>>>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        // The rate limit's key reads the peer address from here.
        request.extensions_mut().insert(self.peer);
        let close = (request.version() < Version::HTTP_2).then(|| self.closing.clone());
        let mut stack = self.stack.borrow_mut();
        let inner = match stack.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => Either::Left(stack.call(request)),
            Poll::Ready(Err(never)) => match never {},
            // No layer of the stack waits to be ready; should one, a copy waits for it.
            Poll::Pending => Either::Right(stack.clone().oneshot(request)),
        };
        Answer { inner, close }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`PerConnection`].
    struct Answer<F> {
        #[pin]
        inner: F,
        // HTTP/1 only: whether the server is closing when the answer is ready.
        close: Option<Arc<AtomicBool>>,
    }
}

impl<F, B> Future for Answer<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if this
            .close
            .as_ref()
            .is_some_and(|closing| closing.load(Ordering::Relaxed))
        {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(response))
    }
}

/// Waits for SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
