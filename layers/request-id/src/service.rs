use crate::{
    ClientRequestId, MakeRequestId, RejectReason, RequestId, RequestIdLayer, UuidV4,
    current::{Entered, Scoped},
    future::ResponseFuture,
    layer::Config,
    validate::Incoming,
};
use http::{Request, Response, request::Parts};
use std::{
    fmt,
    sync::atomic::{AtomicBool, Ordering},
    task::{Context, Poll},
};
use tower_service::Service;
use tracing::{Level, Span, field, level_filters::LevelFilter, span::Record};

/// The service made by [`RequestIdLayer`]. `Clone` when the inner service and the generator are.
#[derive(Clone)]
pub struct RequestIdService<S, M = UuidV4> {
    inner: S,
    make: M,
    config: Config,
}

impl<S> RequestIdService<S> {
    /// Wraps `inner` with the settings of [`RequestIdLayer::new`].
    pub fn new(inner: S) -> Self {
        tower_layer::Layer::layer(&RequestIdLayer::new(), inner)
    }

    /// A [`RequestIdLayer`] with the default settings.
    pub fn layer() -> RequestIdLayer {
        RequestIdLayer::new()
    }
}

impl<S, M> RequestIdService<S, M> {
    pub(crate) fn from_parts(inner: S, make: M, config: Config) -> Self {
        Self {
            inner,
            make,
            config,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug, M> fmt::Debug for RequestIdService<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestIdService")
            .field("inner", &self.inner)
            .field("generator", &std::any::type_name::<M>())
            .field("config", &self.config)
            .finish()
    }
}

impl<S, M> RequestIdService<S, M>
where
    M: MakeRequestId,
{
    /// Keeps a valid incoming id, touching the request in place (the hot path), or says why
    /// one must be generated (`None`: the client sent none).
    #[inline]
    fn keep<B>(&self, request: &mut Request<B>) -> Result<RequestId, Option<RejectReason>> {
        let config = &self.config;
        let reason = match config.policy.check(request.headers(), &config.header) {
            Incoming::Missing => return Err(None),
            Incoming::Valid(value) if !config.always_generate => {
                // A valid value is visible ASCII, so this always makes an id.
                match RequestId::new(value.clone()) {
                    Some(id) => {
                        request.extensions_mut().insert(id.clone());
                        return Ok(id);
                    }
                    None => RejectReason::DisallowedChar,
                }
            }
            Incoming::Valid(_) => RejectReason::Untrusted,
            Incoming::Rejected(reason) => reason,
        };
        Err(Some(reason))
    }

    /// Generates an id and puts it in the request in place of whatever the client sent.
    fn generate<B>(
        &mut self,
        request: &mut Request<B>,
        rejected: Option<RejectReason>,
    ) -> RequestId {
        let config = &self.config;
        let client = match rejected {
            Some(reason) if config.keep_client_id => {
                request.headers().get(&config.header).map(|value| {
                    let policy = &config.policy;
                    ClientRequestId::escape(value, reason, &policy.allowed, policy.max_len)
                })
            }
            _ => None,
        };
        let id = match self.make.make_request_id_in_place(request) {
            Some(id) => id,
            None => make_by_parts(&mut self.make, request),
        };
        if let Some(reason) = rejected {
            tracing::debug!(request_id = %id, reason = reason.as_str(), "replaced the incoming request id");
        }
        request
            .headers_mut()
            .insert(config.header.clone(), id.header_value().clone());
        let extensions = request.extensions_mut();
        extensions.insert(id.clone());
        if let Some(client) = client {
            extensions.insert(client);
        }
        id
    }
}

/// Asks `make` for an id through [`MakeRequestId::make_request_id`], lending it `request`'s
/// head as the `Parts` it takes: a `Request` cannot lend its parts, so they are swapped into a
/// `Parts` and back.
#[cold]
#[inline(never)]
fn make_by_parts<M: MakeRequestId, B>(make: &mut M, request: &mut Request<B>) -> RequestId {
    let (mut parts, ()) = Request::new(()).into_parts();
    swap_head(&mut parts, request);
    let id = make.make_request_id(&parts);
    swap_head(&mut parts, request);
    id
}

fn swap_head<B>(parts: &mut Parts, request: &mut Request<B>) {
    std::mem::swap(&mut parts.method, request.method_mut());
    std::mem::swap(&mut parts.uri, request.uri_mut());
    std::mem::swap(&mut parts.version, request.version_mut());
    std::mem::swap(&mut parts.headers, request.headers_mut());
    std::mem::swap(&mut parts.extensions, request.extensions_mut());
}

impl<S, M, ReqBody, ResBody> Service<Request<ReqBody>> for RequestIdService<S, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    M: MakeRequestId,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let id = match self.keep(&mut request) {
            Ok(id) => id,
            Err(rejected) => self.generate(&mut request, rejected),
        };
        let span = request_span(self.config.span, &id);
        let mut slot = Some(id);
        let inner = {
            let _span = span.enter();
            let current = Entered::new(&mut slot);
            if current.entered_inside_another() {
                warn_nested();
            }
            self.inner.call(request)
        };
        ResponseFuture::new(
            Scoped::new(slot, inner),
            span,
            self.config.header.clone(),
            self.config.response_extension,
        )
    }
}

/// A request id layer inside the scope of another request's: on a client stack, where each
/// call gets an id of its own and it is recorded on the caller's span. Said once a process.
#[cold]
fn warn_nested() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "RequestIdLayer is serving a request inside another request's RequestIdLayer, as on \
             a client stack: each call gets a new id, recorded on the caller's span over its \
             own; use ForwardRequestIdLayer on clients to send the caller's id on"
        );
    }
}

/// Records the id on the current span when it declares a `request_id` field (and then returns
/// a disabled span), otherwise opens a new `request` span at `level`.
fn request_span(level: Option<Level>, id: &RequestId) -> Span {
    // With no subscriber ever installed there is no span to record on or to open.
    if !tracing::dispatcher::has_been_set() || record_on_current(id) {
        return Span::none();
    }
    // Checked before the span macros: their disabled path still builds a span with metadata
    // (and, when tracing's `log` feature is on, as axum's default features turn it on, checks
    // the `log` crate on every enter and exit).
    let level = match level {
        Some(level) if level <= LevelFilter::current() => level,
        _ => return Span::none(),
    };
    let id = field::display(id);
    match level {
        Level::ERROR => tracing::error_span!("request", request_id = %id),
        Level::WARN => tracing::warn_span!("request", request_id = %id),
        Level::INFO => tracing::info_span!("request", request_id = %id),
        Level::DEBUG => tracing::debug_span!("request", request_id = %id),
        Level::TRACE => tracing::trace_span!("request", request_id = %id),
    }
}

/// Records `request_id` on the current span if it has that field. Looks the current span up
/// without cloning it, so the common case (no subscriber, or a span without the field) is a
/// thread-local read.
fn record_on_current(id: &RequestId) -> bool {
    tracing::dispatcher::get_default(|dispatch| {
        let current = dispatch.current_span();
        let (Some(span), Some(meta)) = (current.id(), current.metadata()) else {
            return false;
        };
        let Some(field) = meta.fields().field("request_id") else {
            return false;
        };
        let value = field::display(id);
        let values = [(&field, Some(&value as &dyn field::Value))];
        dispatch.record(span, &Record::new(&meta.fields().value_set(&values)));
        true
    })
}
