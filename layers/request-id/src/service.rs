use crate::{
    ClientRequestId, MakeRequestId, RequestId, RequestIdLayer, UuidV4,
    current::{scope, sync_scope},
    future::ResponseFuture,
    layer::Config,
    validate::Incoming,
};
use http::{Request, Response, request::Parts};
use std::{
    fmt,
    task::{Context, Poll},
};
use tower_service::Service;
use tracing::{Level, Span, field, span::Record};

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
    /// Decides the request's id and writes it into the request head.
    fn assign(&mut self, parts: &mut Parts) -> RequestId {
        let config = &self.config;
        let incoming = config.policy.check(&parts.headers, &config.header);
        let rejected = match incoming {
            Incoming::Valid(value) if !config.always_generate => {
                // A valid value is visible ASCII, so it always makes a `RequestId`.
                if let Some(id) = RequestId::new(value.clone()) {
                    parts.extensions.insert(id.clone());
                    return id;
                }
                Some((value, crate::RejectReason::DisallowedChar))
            }
            Incoming::Valid(value) => Some((value, crate::RejectReason::Untrusted)),
            Incoming::Rejected(value, reason) => Some((value, reason)),
            Incoming::Missing => None,
        };
        let client = rejected.and_then(|(value, reason)| {
            config.keep_client_id.then(|| {
                ClientRequestId::escape(
                    value,
                    reason,
                    &config.policy.allowed,
                    config.policy.max_len,
                )
            })
        });
        let reason = rejected.map(|(_, reason)| reason);
        let id = self.make.make_request_id(parts);
        if let Some(reason) = reason {
            tracing::debug!(request_id = %id, reason = reason.as_str(), "replaced the incoming request id");
        }
        parts
            .headers
            .insert(config.header.clone(), id.header_value().clone());
        parts.extensions.insert(id.clone());
        if let Some(client) = client {
            parts.extensions.insert(client);
        }
        id
    }
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

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let id = self.assign(&mut parts);
        let request = Request::from_parts(parts, body);

        let span = request_span(self.config.span, &id);
        let inner = {
            let _entered = span.enter();
            sync_scope(id.clone(), || self.inner.call(request))
        };
        ResponseFuture::new(scope(id, inner), span, self.config.header.clone())
    }
}

/// Records the id on the current span when it declares a `request_id` field (and then returns
/// a disabled span), otherwise opens a new `request` span at `level`.
fn request_span(level: Option<Level>, id: &RequestId) -> Span {
    if record_on_current(id) {
        return Span::none();
    }
    let id = field::display(id);
    match level {
        None => Span::none(),
        Some(Level::ERROR) => tracing::error_span!("request", request_id = %id),
        Some(Level::WARN) => tracing::warn_span!("request", request_id = %id),
        Some(Level::INFO) => tracing::info_span!("request", request_id = %id),
        Some(Level::DEBUG) => tracing::debug_span!("request", request_id = %id),
        Some(_) => tracing::trace_span!("request", request_id = %id),
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
