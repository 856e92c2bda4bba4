//! One connection's lifecycle: what it is doing, read by its watchdog.
//!
//! hyper times a request head (HTTP/1) and pings (HTTP/2), but nothing closes a connection that
//! never sends a byte (hyper-util's protocol detection has no timer), an HTTP/2 connection with
//! no stream that keeps answering pings, or a socket the client stopped reading. Each
//! connection's task runs a watchdog beside it, which reads a [`ConnState`] kept up to date by
//! the connection's socket ([`Watched`]) and by its requests:
//!
//! | the connection | closed after | counted as |
//! |---|---|---|
//! | accepted, no complete request head (HTTP/1) or not yet HTTP/2 | `header_read_timeout` from the accept | `first_byte` (no byte read) or `header_read` |
//! | between requests (HTTP/1), no open stream (HTTP/2) | `idle_timeout` | `idle` |
//! | HTTP/1, the first bytes of the next request head arrived | `header_read_timeout` from them | `header_read` |
//! | a socket write blocked (the client reads nothing) | `send_timeout` | `send` |
//!
//! An idle connection is shut down gracefully (HTTP/2: GOAWAY); the others are closed at once.
//! When the server closes a connection, [`Watched`] shuts its write side first and reads what
//! the client still sends for a moment (a "lingering close", as nginx does): a client that
//! pipelined requests behind one the server refused reads the refusal and a clean end of the
//! stream, not a reset.

use super::send::Progress;
use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    task::{Context, Poll, ready},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
    time::{Instant, Sleep},
};

/// The first bytes of every HTTP/2 connection (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long a closing connection keeps reading (and discarding) what the client still sends.
pub(crate) const LINGER: Duration = Duration::from_secs(1);

/// Most bytes a closing connection reads and discards before it closes anyway.
const LINGER_MAX_BYTES: u64 = 1024 * 1024;

/// A timestamp field that holds no time.
const NEVER: u64 = u64::MAX;

/// The connection timeouts of `[server]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub(crate) header_read: Duration,
    pub(crate) idle: Duration,
    pub(crate) send: Duration,
}

/// Why the watchdog closed a connection (the `timeout` label of
/// `espresso_connection_timeouts_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// Nothing arrived within `header_read_timeout` of the accept.
    FirstByte,
    /// A request head (or the HTTP/2 preface) was not complete within `header_read_timeout`.
    HeaderRead,
    /// No request in progress for `idle_timeout`.
    Idle,
    /// The client read nothing for `send_timeout`.
    Send,
}

impl Timeout {
    /// Every value, for exporting the metric's series at 0.
    pub(crate) const ALL: [Self; 4] = [Self::FirstByte, Self::HeaderRead, Self::Idle, Self::Send];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::FirstByte => "first_byte",
            Self::HeaderRead => "header_read",
            Self::Idle => "idle",
            Self::Send => "send",
        }
    }
}

/// What the watchdog does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Look again at this time.
    CheckAt(Instant),
    /// Close the connection.
    Close(Timeout),
}

/// The protocol a connection speaks, as its first bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Protocol {
    Unknown = 0,
    Http1 = 1,
    Http2 = 2,
}

/// What one connection is doing, shared by its socket, its requests and its watchdog.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// Times below are nanoseconds since this instant.
    base: Instant,
    protocol: AtomicU8,
    /// Whether any byte arrived.
    read_any: AtomicBool,
    /// Requests received so far.
    requests: AtomicU64,
    /// Requests (HTTP/2: streams) in progress: from their arrival to the end of their answer.
    open: AtomicUsize,
    /// When `open` last fell to 0 (the accept, before any request).
    idle_since: AtomicU64,
    /// HTTP/1: when the first byte after the last answer arrived (a request head begins).
    head_started: AtomicU64,
    /// When a socket write last found the socket full, until a write goes through.
    write_blocked_since: AtomicU64,
    /// Answer bytes handed out and not yet sent on (see `max_buffered_response_bytes`).
    buffered: AtomicUsize,
    /// Woken when `buffered` falls.
    pub(crate) drained: Arc<Notify>,
    /// HTTP/1: the answer the connection's task is sending (an HTTP/2 stream's task keeps its
    /// own).
    pub(crate) sending: Progress,
}

impl ConnState {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            base: now,
            protocol: AtomicU8::new(Protocol::Unknown as u8),
            read_any: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NEVER),
            write_blocked_since: AtomicU64::new(NEVER),
            buffered: AtomicUsize::new(0),
            drained: Arc::new(Notify::new()),
            sending: Progress::new(now),
        }
    }

    fn stamp(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.base).as_nanos() as u64
    }

    fn time(&self, stamp: u64) -> Option<Instant> {
        (stamp != NEVER).then(|| self.base + Duration::from_nanos(stamp))
    }

    fn protocol(&self) -> Protocol {
        match self.protocol.load(Relaxed) {
            1 => Protocol::Http1,
            2 => Protocol::Http2,
            _ => Protocol::Unknown,
        }
    }

    /// A request arrived: the connection is busy until [`ConnState::request_ended`].
    pub(crate) fn request_started(&self) {
        self.requests.fetch_add(1, Relaxed);
        self.open.fetch_add(1, Relaxed);
        self.head_started.store(NEVER, Relaxed);
    }

    /// A request's answer ended (sent, or abandoned).
    pub(crate) fn request_ended(&self, now: Instant) {
        if self.open.fetch_sub(1, Relaxed) == 1 {
            self.idle_since.store(self.stamp(now), Relaxed);
            self.head_started.store(NEVER, Relaxed);
        }
    }

    /// Whether the answers waiting to be sent reached `cap` bytes.
    pub(crate) fn over_budget(&self, cap: usize) -> bool {
        self.buffered.load(Relaxed) >= cap
    }

    /// Counts `bytes` of answer as waiting to be sent.
    pub(crate) fn buffer(&self, bytes: usize) {
        self.buffered.fetch_add(bytes, Relaxed);
    }

    /// `bytes` counted by [`ConnState::buffer`] are gone.
    pub(crate) fn unbuffer(&self, bytes: usize) {
        if bytes > 0 {
            self.buffered.fetch_sub(bytes, Relaxed);
            self.drained.notify_waiters();
        }
    }

    /// `bytes` arrived on the socket. The clock is read only when a request head begins.
    fn on_read(&self, bytes: &[u8], now: impl FnOnce() -> Instant, preface_seen: &mut usize) {
        self.read_any.store(true, Relaxed);
        if self.protocol() == Protocol::Unknown {
            let want = &H2_PREFACE[*preface_seen..];
            let n = want.len().min(bytes.len());
            let protocol = if bytes[..n] != want[..n] {
                Protocol::Http1
            } else {
                *preface_seen += n;
                if *preface_seen < H2_PREFACE.len() {
                    return;
                }
                Protocol::Http2
            };
            self.protocol.store(protocol as u8, Relaxed);
        }
        if self.open.load(Relaxed) == 0
            && self.requests.load(Relaxed) > 0
            && self.head_started.load(Relaxed) == NEVER
        {
            self.head_started.store(self.stamp(now()), Relaxed);
        }
    }

    /// A socket write went through or found the socket full. The clock is read only when a
    /// write starts to block: every other write leaves the times as they are.
    fn on_write(&self, blocked: bool, now: impl FnOnce() -> Instant) {
        let since = self.write_blocked_since.load(Relaxed);
        if blocked && since == NEVER {
            self.write_blocked_since.store(self.stamp(now()), Relaxed);
        } else if !blocked && since != NEVER {
            self.write_blocked_since.store(NEVER, Relaxed);
        }
    }

    /// What the watchdog does at `now`: close the connection, or look again later. Deadlines
    /// are computed from recorded times, so looking late never moves one; looking again at
    /// most the shortest timeout from now never misses one that activity starts later.
    pub(crate) fn next(&self, timeouts: &Timeouts, now: Instant) -> Next {
        let mut check = now + timeouts.header_read.min(timeouts.idle).min(timeouts.send);
        let mut deadline = |start: Instant, after: Duration, timeout: Timeout| {
            let at = start + after;
            if at <= now {
                return Some(timeout);
            }
            check = check.min(at);
            None
        };
        if let Some(since) = self.time(self.write_blocked_since.load(Relaxed))
            && let Some(timeout) = deadline(since, timeouts.send, Timeout::Send)
        {
            return Next::Close(timeout);
        }
        let protocol = self.protocol();
        let requests = self.requests.load(Relaxed);
        if requests == 0 && protocol != Protocol::Http2 {
            let timeout = if self.read_any.load(Relaxed) {
                Timeout::HeaderRead
            } else {
                Timeout::FirstByte
            };
            if let Some(timeout) = deadline(self.base, timeouts.header_read, timeout) {
                return Next::Close(timeout);
            }
        } else if self.open.load(Relaxed) == 0 {
            let head = self.time(self.head_started.load(Relaxed));
            let closes = match head {
                Some(started) if protocol == Protocol::Http1 => {
                    deadline(started, timeouts.header_read, Timeout::HeaderRead)
                }
                _ => {
                    let idle = self.time(self.idle_since.load(Relaxed));
                    deadline(idle.unwrap_or(self.base), timeouts.idle, Timeout::Idle)
                }
            };
            if let Some(timeout) = closes {
                return Next::Close(timeout);
            }
        }
        Next::CheckAt(check)
    }
}

/// The connection's socket, reporting to its [`ConnState`]; closes with a lingering close.
pub(crate) struct Watched<T> {
    inner: T,
    state: Arc<ConnState>,
    /// Bytes of the HTTP/2 preface seen so far.
    preface_seen: usize,
    linger: Linger,
}

/// Where a close stands.
enum Linger {
    /// Not closing.
    Open,
    /// Write side shut; reading until the client closes, this long, or this many bytes.
    Draining {
        until: Pin<Box<Sleep>>,
        read: u64,
    },
    Done,
}

impl<T> Watched<T> {
    pub(crate) fn new(inner: T, state: Arc<ConnState>) -> Self {
        Self {
            inner,
            state,
            preface_seen: 0,
            linger: Linger::Open,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            this.state
                .on_read(read, Instant::now, &mut this.preface_seen);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.state.on_write(result.is_pending(), Instant::now);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.state.on_write(result.is_pending(), Instant::now);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.state.on_write(result.is_pending(), Instant::now);
        result
    }

    /// Shuts the write side, then reads and discards what the client still sends until it
    /// closes its side, for at most [`LINGER`] and [`LINGER_MAX_BYTES`]: closing a socket with
    /// unread bytes would reset the connection, and the client could lose the answers it has
    /// not read yet.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.linger {
                Linger::Open => {
                    ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                    this.linger = Linger::Draining {
                        until: Box::pin(tokio::time::sleep(LINGER)),
                        read: 0,
                    };
                }
                Linger::Draining { until, read } => {
                    let mut scratch = [0u8; 8192];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                            *read += buf.filled().len() as u64;
                            if *read < LINGER_MAX_BYTES {
                                continue;
                            }
                        }
                        // The client closed its side (or the socket failed): done.
                        Poll::Ready(_) => {}
                        Poll::Pending => {
                            if until.as_mut().poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                        }
                    }
                    this.linger = Linger::Done;
                }
                Linger::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

use std::future::Future as _;

#[cfg(test)]
mod tests {
    //! The watchdog's decisions, on a paused clock: `tokio::time::pause` freezes `Instant::now`
    //! and `advance` moves it, so each case states exactly how long the connection has been in
    //! a state.

    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(60),
        send: Duration::from_secs(30),
    };

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_closes_at_the_header_read_timeout() {
        let start = Instant::now();
        let state = ConnState::new(start);
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(9)),
            Next::CheckAt(start + secs(10))
        );
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(10)),
            Next::Close(Timeout::FirstByte)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_or_preface_not_finished_in_time_is_a_header_read_timeout() {
        let start = Instant::now();
        let state = ConnState::new(start);
        let mut seen = 0;
        state.on_read(b"GET / HT", || start, &mut seen);
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(10)),
            Next::Close(Timeout::HeaderRead)
        );
        let state = ConnState::new(start);
        let mut seen = 0;
        state.on_read(&H2_PREFACE[..10], || start, &mut seen);
        assert_eq!(state.protocol(), Protocol::Unknown);
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(10)),
            Next::Close(Timeout::HeaderRead)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_http2_connection_without_streams_closes_at_the_idle_timeout() {
        let start = Instant::now();
        let state = ConnState::new(start);
        let mut seen = 0;
        state.on_read(&H2_PREFACE[..10], || start, &mut seen);
        state.on_read(&H2_PREFACE[10..], || start, &mut seen);
        assert_eq!(state.protocol(), Protocol::Http2);
        // Pings and settings keep arriving: they are no request.
        state.on_read(b"\0\0\x08\x06\0\0\0\0\0", || start + secs(30), &mut seen);
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(59)),
            Next::CheckAt(start + secs(60))
        );
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(60)),
            Next::Close(Timeout::Idle)
        );
        // A stream in progress keeps it open however long; its end restarts the idle time.
        state.request_started();
        assert!(matches!(
            state.next(&TIMEOUTS, start + secs(500)),
            Next::CheckAt(_)
        ));
        state.request_ended(start + secs(500));
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(559)),
            Next::CheckAt(start + secs(560))
        );
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(560)),
            Next::Close(Timeout::Idle)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn http1_keep_alive_waits_the_idle_timeout_then_times_the_next_head() {
        let start = Instant::now();
        let served = || {
            let state = ConnState::new(start);
            let mut seen = 0;
            state.on_read(b"GET / HTTP/1.1\r\n\r\n", || start, &mut seen);
            state.request_started();
            state.request_ended(start + secs(1));
            (state, seen)
        };
        // Idle: the idle timeout, not the header-read timeout.
        let (state, _) = served();
        assert!(matches!(
            state.next(&TIMEOUTS, start + secs(60)),
            Next::CheckAt(_)
        ));
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(61)),
            Next::Close(Timeout::Idle)
        );
        // The next head begins at 30 s and stalls: closed 10 s later.
        let (state, mut seen) = served();
        state.on_read(b"GE", || start + secs(30), &mut seen);
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(39)),
            Next::CheckAt(start + secs(40))
        );
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(40)),
            Next::Close(Timeout::HeaderRead)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_socket_the_client_stops_reading_closes_at_the_send_timeout() {
        let start = Instant::now();
        let state = ConnState::new(start);
        let mut seen = 0;
        state.on_read(b"GET / HTTP/1.1\r\n\r\n", || start, &mut seen);
        state.request_started();
        state.on_write(true, || start + secs(1));
        // Still blocked later: the first blocked write counts.
        state.on_write(true, || start + secs(20));
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(30)),
            Next::CheckAt(start + secs(31))
        );
        assert_eq!(
            state.next(&TIMEOUTS, start + secs(31)),
            Next::Close(Timeout::Send)
        );
        // A write that goes through clears it.
        state.on_write(false, || start + secs(31));
        assert!(matches!(
            state.next(&TIMEOUTS, start + secs(100)),
            Next::CheckAt(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn buffered_answers_count_against_the_budget_until_sent() {
        let state = ConnState::new(Instant::now());
        state.buffer(600);
        assert!(!state.over_budget(1000));
        state.buffer(600);
        assert!(state.over_budget(1000));
        state.unbuffer(600);
        assert!(!state.over_budget(1000));
    }
}
