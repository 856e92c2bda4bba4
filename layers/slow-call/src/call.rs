//! One request's accounting: started in `call`, finished when the response body ends, the body
//! or future is dropped, or the inner service fails. Whatever happens, it is finished exactly once.

#[cfg(feature = "metrics")]
use crate::{layer::Config, policy::method_label};
use crate::{
    policy::RouteLabel,
    recorder::InRequest,
    tree::{CallTree, Ms},
};
use espresso_common::{
    RequestId,
    classify::{ClassifyEos, GrpcStatus},
    grpc::Code,
};
use http::{HeaderMap, Method, StatusCode, uri::PathAndQuery};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;
use tracing::Span;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The response body ended (or there was none).
    Complete,
    /// The inner service or the response body failed.
    Error,
    /// The future or the body was dropped first: the client went away.
    Cancelled,
}

/// The response status as far as it is known.
#[derive(Debug, Clone, Copy)]
enum Status {
    /// No response yet.
    Pending,
    Http(StatusCode),
    /// A gRPC call whose `grpc-status` has not been seen yet.
    GrpcPending,
    Grpc(Code),
}

/// One request being timed.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) span: Span,
    tree: Arc<CallTree>,
    start: Instant,
    threshold: Duration,
    method: Method,
    // The path alone for the log line: a `Uri` costs three shared buffers to clone and drop.
    path: Option<PathAndQuery>,
    route: RouteLabel,
    request_id: Option<RequestId>,
    grpc: bool,
    status: Status,
    /// The layer's settings, for its metrics: one shared count, where a copy of the metrics
    /// would add and drop one per metric with every request.
    #[cfg(feature = "metrics")]
    config: Arc<Config>,
    done: bool,
}

/// A [`Call`] made current by [`Call::enter`].
pub(crate) struct Entered<'a> {
    _tree: InRequest,
    _span: tracing::span::Entered<'a>,
}

/// What `Call::new` needs to know about the request.
pub(crate) struct Start {
    pub(crate) span: Span,
    pub(crate) tree: Arc<CallTree>,
    pub(crate) start: Instant,
    pub(crate) threshold: Duration,
    pub(crate) method: Method,
    pub(crate) path: Option<PathAndQuery>,
    pub(crate) route: RouteLabel,
    pub(crate) request_id: Option<RequestId>,
    pub(crate) grpc: bool,
    #[cfg(feature = "metrics")]
    pub(crate) config: Arc<Config>,
}

impl Call {
    /// Boxed: the call rides in the response future and then in the response body, which every
    /// layer above moves, several times each; a pointer moves more cheaply than some 200 bytes.
    pub(crate) fn new(s: Start) -> Box<Self> {
        #[cfg(feature = "metrics")]
        if let Some(m) = &s.config.metrics {
            m.active.inc();
        }
        Box::new(Self {
            span: s.span,
            tree: s.tree,
            start: s.start,
            threshold: s.threshold,
            method: s.method,
            path: s.path,
            route: s.route,
            request_id: s.request_id,
            grpc: s.grpc,
            status: Status::Pending,
            #[cfg(feature = "metrics")]
            config: s.config,
            done: false,
        })
    }

    /// Makes this request current until the guard drops: spans opened meanwhile join its tree,
    /// and its root span, when one was created, is entered.
    pub(crate) fn enter(&self) -> Entered<'_> {
        Entered {
            _tree: InRequest::enter(&self.tree),
            _span: self.span.enter(),
        }
    }

    /// `true` when the response has no body to wait for: servers send no body for `HEAD`
    /// (and may drop it unpolled).
    pub(crate) fn bodiless(&self) -> bool {
        self.method == Method::HEAD
    }

    /// Notes the response head: the HTTP status, or the gRPC status of a trailers-only response.
    pub(crate) fn response(&mut self, status: StatusCode, headers: &HeaderMap) {
        if self.request_id.is_none() {
            warn_if_request_id_inside(headers);
        }
        self.status = if !self.grpc || status != StatusCode::OK {
            Status::Http(status)
        } else {
            GrpcStatus::in_head(headers).map_or(Status::GrpcPending, Status::Grpc)
        };
    }

    /// Notes the response trailers (where a gRPC call's status usually is).
    pub(crate) fn trailers(&mut self, trailers: &HeaderMap) {
        // The classification's end-of-stream step, shared with the breaker and degrade.
        if let Status::GrpcPending = self.status {
            self.status = Status::Grpc(GrpcStatus.eos(Some(trailers)));
        }
    }

    /// The request's path, as `Uri::path` reads it.
    fn path(&self) -> &str {
        self.path.as_ref().map_or("", PathAndQuery::path)
    }

    fn status_label(&self, end: End) -> &'static str {
        match (end, self.status) {
            (End::Cancelled, _) => "cancelled",
            (End::Error, _) | (_, Status::Pending) => "error",
            // a gRPC call answered without gRPC (a proxy's 503): what its client reads
            (End::Complete, Status::Http(s)) if self.grpc => grpc_name(Code::from_http(s)),
            (End::Complete, Status::Http(s)) => http_status_label(s),
            (End::Complete, Status::GrpcPending) => grpc_name(GrpcStatus.eos(None)),
            (End::Complete, Status::Grpc(code)) => grpc_name(code),
        }
    }

    /// Accounts the request once: metrics, and the slow-call event when it was slow.
    pub(crate) fn finish(&mut self, end: End) {
        if self.done {
            return;
        }
        self.done = true;
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.start);
        let status = self.status_label(end);
        let slow = elapsed > self.threshold;
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.config.metrics {
            let method = method_label(&self.method);
            m.active.dec();
            m.observe(method, &self.route, status, elapsed.as_secs_f64());
            if slow {
                m.slow.with_label_values(&[self.route.as_str()]).inc();
            }
        }
        if !slow {
            self.tree.discard();
            return;
        }
        crate::recorder::warn_if_not_installed();
        let tree = self.tree.render(now);
        self.tree.discard();
        // The log shows the exact HTTP status, not the metric's class label.
        let exact;
        let status = match (end, self.status) {
            (End::Complete, Status::Http(s)) => {
                exact = s;
                exact.as_str()
            }
            _ => status,
        };
        if self.span.is_disabled() {
            // No root span to carry the request's context: the line carries it.
            tracing::warn!(
                target: "espresso_slow_call",
                request_id = self
                    .request_id
                    .as_ref()
                    .map(|id| tracing::field::display(id.as_str())),
                method = self.method.as_str(),
                route = self.route.as_str(),
                path = self.path(),
                status,
                duration_ms = millis(elapsed),
                threshold_ms = millis(self.threshold),
                cancelled = end == End::Cancelled,
                tree = tree.as_str(),
                "slow call: {} {} took {}",
                self.method,
                self.path(),
                Ms(elapsed),
            );
        } else {
            // The root span (or the request-id layer's span above it) already shows the id,
            // method, route and path: the line adds only what the span cannot know.
            tracing::warn!(
                target: "espresso_slow_call",
                parent: &self.span,
                status,
                duration_ms = millis(elapsed),
                threshold_ms = millis(self.threshold),
                cancelled = end == End::Cancelled,
                tree = tree.as_str(),
                "slow call: {} {} took {}",
                self.method,
                self.path(),
                Ms(elapsed),
            );
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(End::Cancelled);
    }
}

/// Milliseconds as a float, exact for whole microseconds (`12.0`, not `12.000000000000002`).
fn millis(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

fn http_status_label(status: StatusCode) -> &'static str {
    // Every `StatusCode` is three ASCII digits; the labels are interned to keep them `'static`.
    const LABELS: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    match status.as_u16() {
        200 => "200",
        201 => "201",
        204 => "204",
        206 => "206",
        301 => "301",
        302 => "302",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        499 => "499",
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        504 => "504",
        n => LABELS[usize::from(n / 100).clamp(1, 5) - 1],
    }
}

/// The gRPC specification's name of a status code.
pub(crate) fn grpc_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Warns once per process when a request came without a [`RequestId`] and its answer carries
/// `x-request-id`: the request-id layer runs inside this one, so the lines lack the id. Read
/// only for requests without an id, and not after the WARN.
fn warn_if_request_id_inside(headers: &HeaderMap) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.load(Ordering::Relaxed)
        && headers.contains_key("x-request-id")
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            target: "espresso_slow_call",
            "an answer carries x-request-id, but its request reached SlowCallLayer without a \
             RequestId: RequestIdLayer seems to run inside SlowCallLayer, so slow-call lines \
             lack the id; put RequestIdLayer outside it (before it in a ServiceBuilder or \
             tonic's layers, after it in axum's Router::layer calls)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_labels_stay_few() {
        assert_eq!(http_status_label(StatusCode::OK), "200");
        assert_eq!(http_status_label(StatusCode::IM_A_TEAPOT), "4xx");
        assert_eq!(http_status_label(StatusCode::from_u16(599).unwrap()), "5xx");
        assert_eq!(http_status_label(StatusCode::CONTINUE), "1xx");
        assert_eq!(grpc_name(Code::Unavailable), "UNAVAILABLE");
        assert_eq!(grpc_name(GrpcStatus.eos(None)), "UNKNOWN");
    }
}
