use crate::{AllowedChars, MakeRequestId, RequestIdService, UuidV4, validate::Policy};
use http::HeaderName;
use std::fmt;
use tower_layer::Layer;
use tracing::Level;

/// The default id header, `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Settings shared by the layer and its services.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) header: HeaderName,
    pub(crate) policy: Policy,
    pub(crate) always_generate: bool,
    pub(crate) keep_client_id: bool,
    pub(crate) response_extension: bool,
    pub(crate) span: Option<Level>,
}

/// Gives every request an id: keeps a valid incoming one, generates one otherwise, and
/// propagates it to the request, the response, the tracing span and the task.
///
/// See the [crate docs](crate) for the full behaviour. Built with [`RequestIdLayer::new`] and
/// adjusted with builder methods:
///
/// ```
/// use espresso_request_id::{AllowedChars, RequestIdLayer, UuidV7};
/// use http::HeaderName;
///
/// let layer = RequestIdLayer::new()
///     .header(HeaderName::from_static("x-correlation-id"))
///     .generator(UuidV7)
///     .max_len(64)
///     .allowed_chars(AllowedChars::DEFAULT.with("/"))
///     .keep_client_id(true);
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct RequestIdLayer<M = UuidV4> {
    make: M,
    config: Config,
}

impl RequestIdLayer {
    /// `x-request-id`, UUID v4 ids, incoming ids of up to 128 characters from `[A-Za-z0-9._:-]`
    /// kept, rejected ids dropped, an INFO span named `request`.
    pub fn new() -> Self {
        Self {
            make: UuidV4,
            config: Config {
                header: X_REQUEST_ID,
                policy: Policy::default(),
                always_generate: false,
                keep_client_id: false,
                response_extension: false,
                span: Some(Level::INFO),
            },
        }
    }
}

impl Default for RequestIdLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> RequestIdLayer<M> {
    /// Reads and writes the id in `header` instead of `x-request-id`.
    pub fn header(mut self, header: HeaderName) -> Self {
        self.config.header = header;
        self
    }

    /// Makes new ids with `make` (a [`MakeRequestId`], closures included).
    pub fn generator<N: MakeRequestId>(self, make: N) -> RequestIdLayer<N> {
        RequestIdLayer {
            make,
            config: self.config,
        }
    }

    /// Rejects incoming ids longer than `max_len` bytes (default 128).
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.config.policy.max_len = max_len;
        self
    }

    /// Rejects incoming ids with bytes outside `allowed` (default `[A-Za-z0-9._:-]`).
    pub fn allowed_chars(mut self, allowed: AllowedChars) -> Self {
        self.config.policy.allowed = allowed;
        self
    }

    /// With `true`, ignores incoming ids and always generates one (default `false`).
    ///
    /// For a service at a trust boundary (public edge), where a client must not choose the id
    /// that internal logs and services will use. Combine with
    /// [`keep_client_id`](Self::keep_client_id) to still record what the client sent.
    pub fn always_generate(mut self, always: bool) -> Self {
        self.config.always_generate = always;
        self
    }

    /// With `true`, a client id that is not kept is put, sanitized, in request extensions as a
    /// [`ClientRequestId`](crate::ClientRequestId) (default `false`).
    pub fn keep_client_id(mut self, keep: bool) -> Self {
        self.config.keep_client_id = keep;
        self
    }

    /// With `true`, also puts the [`RequestId`](crate::RequestId) in the response's extensions
    /// (default `false`).
    ///
    /// For outer layers that want the typed id rather than the response header (which the inner
    /// service may have set itself, see the [crate docs](crate#doesnt-override-existing-response-headers)).
    /// Off by default because it costs an allocation per response (the extensions map) that
    /// most stacks never use.
    pub fn response_extension(mut self, insert: bool) -> Self {
        self.config.response_extension = insert;
        self
    }

    /// Opens the per-request span at `level` instead of INFO.
    pub fn span_level(mut self, level: Level) -> Self {
        self.config.span = Some(level);
        self
    }

    /// Opens no span of its own: the id is only recorded on the current span when it declares
    /// a `request_id` field. See [Tracing](crate#tracing).
    pub fn without_span(mut self) -> Self {
        self.config.span = None;
        self
    }

    /// The header the id is read from and written to.
    pub fn header_name(&self) -> &HeaderName {
        &self.config.header
    }
}

impl<M> fmt::Debug for RequestIdLayer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestIdLayer")
            .field("generator", &std::any::type_name::<M>())
            .field("config", &self.config)
            .finish()
    }
}

impl<S, M: Clone> Layer<S> for RequestIdLayer<M> {
    type Service = RequestIdService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService::from_parts(inner, self.make.clone(), self.config.clone())
    }
}
