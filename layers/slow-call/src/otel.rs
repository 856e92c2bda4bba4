//! OpenTelemetry: W3C trace-context propagation and OTLP export (feature `otel`).
//!
//! - Incoming: [`SlowCall`](crate::SlowCall) reads `traceparent`/`tracestate` from each request
//!   and makes the remote span the parent of the request's root span, whose `trace_id` field then
//!   holds the trace id (next to the request id, on the root span or the request-id layer's span
//!   above it). The OpenTelemetry span of the root carries `request_id` either way, and the
//!   request-id layer's span is left out of the trace by [`span_filter`] (it is opened before the
//!   `traceparent` is read, so it would be a trace of its own). The OpenTelemetry layer must see that span (target `espresso_slow_call`, INFO):
//!   behind a filter that drops it the incoming context is lost, which the first request reports
//!   in a WARN (see [Filtering](crate::SlowCallRecorder#filtering)).
//! - Outgoing: [`inject`] writes the current span's context into an outgoing request's headers;
//!   [`InjectTraceContextLayer`] does it for every request of an HTTP client or a tonic `Channel`.
//! - Export: [`init_from_env`] builds an OTLP exporter from the standard `OTEL_EXPORTER_OTLP_*`
//!   variables and returns `None` when none says where to send spans: nothing is exported unless
//!   configured. Add [`Otel::layer`] to the subscriber next to the
//!   [`SlowCallRecorder`](crate::SlowCallRecorder).
//!
//! ```no_run
//! use espresso_slow_call::{SlowCallRecorder, otel};
//! use tracing_subscriber::prelude::*;
//!
//! # #[tokio::main] async fn main() -> Result<(), otel::OtelError> {
//! // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc
//! let otel = otel::init_from_env()?;
//! tracing_subscriber::registry()
//!     .with(SlowCallRecorder::new())
//!     .with(otel.as_ref().map(|o| o.layer()))
//!     .with(tracing_subscriber::fmt::layer())
//!     .init();
//! // ... serve ...
//! if let Some(otel) = otel {
//!     otel.shutdown()?; // flushes the spans still buffered
//! }
//! # Ok(()) }
//! ```
//!
//! # Environment
//!
//! | variable | meaning |
//! | --- | --- |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | where spans go, used as it is |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base address; `/v1/traces` is appended for HTTP |
//! | `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL` | `grpc` or `http/protobuf` (the default, as the specification says) |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, ... | read by the exporter itself |
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | the resource |
//! | `OTEL_TRACES_EXPORTER=none`, `OTEL_SDK_DISABLED=true` | turn export off |

use http::{HeaderMap, HeaderName, HeaderValue, Request};
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{SdkTracer, SdkTracerProvider},
};
use std::{
    fmt,
    task::{Context as TaskContext, Poll},
};
use tower_layer::Layer;
use tower_service::Service;
use tracing::{Metadata, Span, Subscriber};
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::{
    Layer as _,
    filter::{FilterFn, Filtered},
    registry::LookupSpan,
};

// === propagation ===

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::try_from(value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The remote parent carried by `traceparent`/`tracestate` in `headers`, if any.
pub fn extract(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Makes the remote span in `headers` the parent of `span` and records the trace id on it.
///
/// `request_id`, when given, becomes an attribute of the OpenTelemetry span only: the id is in
/// the log line already, from the request-id layer's span, which [`span_filter`] leaves out of
/// the trace.
pub(crate) fn extract_parent(span: &Span, headers: &HeaderMap, request_id: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    if let Some(id) = request_id {
        span.set_attribute("request_id", id.to_owned());
    }
    // Without a `traceparent` there is nothing to extract (and the propagator costs more than
    // the rest of this function).
    if headers.contains_key("traceparent") {
        let parent = extract(headers);
        if parent.span().span_context().is_valid() {
            // Fails only when no OpenTelemetry layer is installed: then there is nothing to link.
            let _ = span.set_parent(parent);
        }
    }
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// The filter of [`span_filter`].
pub type SpanFilter = FilterFn<fn(&Metadata<'_>) -> bool>;

/// A per-layer filter for an OpenTelemetry layer: everything but the request-id layer's span.
///
/// That span is opened, and entered, before this crate's layer reads the request's
/// `traceparent`, so it would start a trace of its own: each request would export a one-span
/// trace beside the caller's. Left out, the request's root span (which carries `request_id` as
/// an attribute too) is the first span of the request in the caller's trace. [`Otel::layer`]
/// has it already; put it on an OpenTelemetry layer of your own:
///
/// ```
/// use espresso_slow_call::otel::span_filter;
/// use opentelemetry::trace::TracerProvider as _;
/// use tracing_subscriber::{Layer as _, prelude::*};
///
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
/// let subscriber = tracing_subscriber::registry().with(
///     tracing_opentelemetry::layer()
///         .with_tracer(provider.tracer("app"))
///         .with_filter(span_filter()),
/// );
/// # drop(subscriber);
/// ```
pub fn span_filter() -> SpanFilter {
    fn keep(meta: &Metadata<'_>) -> bool {
        !(meta.is_span() && meta.target().starts_with("espresso_request_id"))
    }
    FilterFn::new(keep as fn(&Metadata<'_>) -> bool)
}

/// Writes `span`'s trace context as `traceparent`/`tracestate` into `headers`.
///
/// Writes nothing when the span has no OpenTelemetry context (no [`Otel::layer`] installed).
pub fn inject_span(span: &Span, headers: &mut HeaderMap) {
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
    }
}

/// Writes the current span's trace context into `headers` (see [`inject_span`]).
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// espresso_slow_call::otel::inject(&mut headers);
/// // Outside any traced span there is nothing to propagate.
/// assert!(headers.is_empty());
/// ```
pub fn inject(headers: &mut HeaderMap) {
    inject_span(&Span::current(), headers);
}

/// Applies [`InjectTraceContext`]: every outgoing request carries the caller's trace context.
///
/// Works for HTTP clients and for tonic clients alike (wrap the `Channel`):
///
/// ```no_run
/// use espresso_slow_call::otel::InjectTraceContextLayer;
/// use tower::ServiceBuilder;
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051")
///     .connect()
///     .await?;
/// let traced = ServiceBuilder::new()
///     .layer(InjectTraceContextLayer::new())
///     .service(channel);
/// // let client = ClassifierClient::new(traced);
/// # let _ = traced; Ok(()) }
/// ```
///
/// # Doesn't override existing headers
///
/// A request that already carries `traceparent` is sent as it is.
#[derive(Debug, Clone, Default)]
pub struct InjectTraceContextLayer {
    _priv: (),
}

impl InjectTraceContextLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for InjectTraceContextLayer {
    type Service = InjectTraceContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectTraceContext { inner }
    }
}

/// Writes the current span's trace context into each outgoing request; see
/// [`InjectTraceContextLayer`].
#[derive(Debug, Clone)]
pub struct InjectTraceContext<S> {
    inner: S,
}

impl<S> InjectTraceContext<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for InjectTraceContext<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if !req.headers().contains_key("traceparent") {
            inject(req.headers_mut());
        }
        self.inner.call(req)
    }
}

// === export ===

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over gRPC (tonic); the collector's port is usually 4317.
    Grpc,
    /// OTLP protobuf over HTTP; the collector's port is usually 4318.
    HttpProtobuf,
}

/// Where and how to export spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The full address spans are sent to (for HTTP, including `/v1/traces`).
    pub endpoint: String,
    /// The transport.
    pub protocol: Protocol,
    /// `service.name` of the resource; `None` leaves it to `OTEL_SERVICE_NAME` or the SDK.
    pub service_name: Option<String>,
}

impl OtlpConfig {
    /// Exports to `endpoint` over `protocol`.
    pub fn new(endpoint: impl Into<String>, protocol: Protocol) -> Self {
        Self {
            endpoint: endpoint.into(),
            protocol,
            service_name: None,
        }
    }

    /// Sets `service.name`.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Reads the configuration from the process environment; `Ok(None)` when export is not
    /// configured (or turned off). See the [module docs](self) for the variables.
    pub fn from_env() -> Result<Option<Self>, OtelError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// As [`from_env`](Self::from_env), reading variables through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, OtelError> {
        let var = |key: &str| {
            var(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some(exporters) = var("OTEL_TRACES_EXPORTER")
            && !exporters.split(',').any(|e| e.trim() == "otlp")
        {
            return Ok(None);
        }
        let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .as_deref()
        {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => {
                return Err(OtelError(format!(
                    "unsupported OTLP protocol {other:?} (expected \"grpc\" or \"http/protobuf\")"
                )));
            }
        };
        let endpoint = match var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(endpoint) => endpoint,
            None => match var("OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some(base) if protocol == Protocol::HttpProtobuf => {
                    format!("{}/v1/traces", base.trim_end_matches('/'))
                }
                Some(base) => base,
                None => return Ok(None),
            },
        };
        Ok(Some(Self {
            endpoint,
            protocol,
            service_name: var("OTEL_SERVICE_NAME"),
        }))
    }
}

/// Why OpenTelemetry could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtelError(String);

impl fmt::Display for OtelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpenTelemetry setup failed: {}", self.0)
    }
}

impl std::error::Error for OtelError {}

/// A running OTLP export pipeline: a tracer provider with a batch exporter.
///
/// Spans are exported in batches from a background thread. Call [`shutdown`](Self::shutdown)
/// before the process exits to send the last batch.
#[derive(Debug, Clone)]
pub struct Otel {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// Sets up export from the environment (see the [module docs](self)); `Ok(None)` when it is not
/// configured. Call it inside a Tokio runtime: the gRPC exporter's channel runs on it.
pub fn init_from_env() -> Result<Option<Otel>, OtelError> {
    OtlpConfig::from_env()?.map(Otel::init).transpose()
}

impl Otel {
    /// Builds the exporter and the tracer provider, installs the W3C trace-context propagator
    /// and the provider as OpenTelemetry's globals, and returns the pipeline.
    ///
    /// Call it inside a Tokio runtime when `protocol` is gRPC.
    pub fn init(config: OtlpConfig) -> Result<Self, OtelError> {
        let exporter = match config.protocol {
            Protocol::Grpc => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(OtelError(
                        "the gRPC OTLP exporter must be built inside a Tokio runtime".into(),
                    ));
                }
                SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(config.endpoint)
                    .build()
            }
            Protocol::HttpProtobuf => SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(config.endpoint)
                .build(),
        }
        .map_err(|e| OtelError(e.to_string()))?;
        let mut resource = Resource::builder();
        if let Some(name) = config.service_name {
            resource = resource.with_service_name(name);
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("espresso");
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider.clone());
        Ok(Self { provider, tracer })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans for this pipeline, behind
    /// [`span_filter`] (the request-id layer's span left out, so a request is one trace).
    pub fn layer<S>(&self) -> Filtered<OpenTelemetryLayer<S, SdkTracer>, SpanFilter, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer.clone())
            .with_filter(span_filter())
    }

    /// The tracer provider.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// Exports every finished span now. Blocks; from async code call it in `spawn_blocking`.
    pub fn force_flush(&self) -> Result<(), OtelError> {
        self.provider
            .force_flush()
            .map_err(|e| OtelError(e.to_string()))
    }

    /// Exports what is buffered and stops the pipeline. Blocks, as [`force_flush`](Self::force_flush).
    pub fn shutdown(self) -> Result<(), OtelError> {
        self.provider
            .shutdown()
            .map_err(|e| OtelError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Option<OtlpConfig>, OtelError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OtlpConfig::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn nothing_is_exported_unless_configured() {
        assert_eq!(config(&[]), Ok(None));
        assert_eq!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), Ok(None));
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert_eq!(config(&[on, ("OTEL_SDK_DISABLED", "true")]), Ok(None));
        assert_eq!(config(&[on, ("OTEL_TRACES_EXPORTER", "none")]), Ok(None));
        assert!(
            config(&[on, ("OTEL_TRACES_EXPORTER", "otlp")])
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn endpoints_and_protocols_follow_the_specification() {
        let http = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]);
        assert_eq!(
            http,
            Ok(Some(OtlpConfig::new(
                "http://c:4318/v1/traces",
                Protocol::HttpProtobuf
            )))
        );
        let grpc = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "filter"),
        ]);
        assert_eq!(
            grpc,
            Ok(Some(
                OtlpConfig::new("http://c:4317", Protocol::Grpc).service_name("filter")
            ))
        );
        let specific = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9999/traces"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ]);
        assert_eq!(
            specific,
            Ok(Some(OtlpConfig::new(
                "http://t:9999/traces",
                Protocol::HttpProtobuf
            )))
        );
        let json = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]);
        assert!(json.unwrap_err().to_string().contains("http/json"));
    }

    #[test]
    fn the_grpc_exporter_needs_a_runtime() {
        let err = Otel::init(OtlpConfig::new("http://127.0.0.1:1", Protocol::Grpc)).unwrap_err();
        assert!(err.to_string().contains("Tokio runtime"));
    }

    #[test]
    fn traceparent_round_trips_through_headers() {
        let mut headers = HeaderMap::new();
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", HeaderValue::from_static(traceparent));
        let cx = extract(&headers);
        let span_context = cx.span().span_context().clone();
        assert_eq!(
            span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(span_context.is_remote() && span_context.is_sampled());
        let mut out = HeaderMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut out));
        assert_eq!(out["traceparent"], traceparent);
        assert!(
            extract(&HeaderMap::new()).span().span_context().trace_id()
                == opentelemetry::trace::TraceId::INVALID
        );
    }

    #[tokio::test]
    async fn the_client_layer_injects_the_current_span_but_keeps_explicit_headers() {
        use tower::{ServiceExt, service_fn};
        use tracing_subscriber::prelude::*;

        let provider = SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        let client =
            InjectTraceContextLayer::new().layer(service_fn(|req: Request<()>| async move {
                Ok::<_, std::convert::Infallible>(req.headers().get("traceparent").cloned())
            }));

        let span = tracing::info_span!("outgoing");
        let trace_id = span.context().span().span_context().trace_id();
        let sent = {
            let _entered = span.enter();
            client.clone().oneshot(Request::new(())).await.unwrap()
        };
        let sent = sent.expect("traceparent injected");
        assert!(sent.to_str().unwrap().contains(&trace_id.to_string()));

        let explicit = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut request = Request::new(());
        request
            .headers_mut()
            .insert("traceparent", HeaderValue::from_static(explicit));
        let _entered = span.enter();
        let sent = client.oneshot(request).await.unwrap();
        assert_eq!(sent.unwrap(), explicit);
    }
}
