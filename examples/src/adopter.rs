//! The five espresso layers as one stack, built by one function and applied alike to an axum
//! `Router` and to a tonic `Server::builder()`: no `HandleErrorLayer`, no `map_err`, no adapter.
//! The `adopter` example serves both; its test drives every layer through both.
//!
//! ```
//! use espresso_examples::adopter::{Demo, Espresso, http_routes};
//! use prometheus::Registry;
//! use tonic::transport::Server;
//!
//! let registry = Registry::new();
//! let espresso = Espresso::new(&registry).unwrap(); // every metric registered, the one way
//! let http = http_routes().layer(espresso.layers("http").unwrap());
//! let grpc = Server::builder().layer(espresso.layers("grpc").unwrap()).add_service(Demo::new());
//! # let _ = (http, grpc);
//! ```

use axum::{Router, http::StatusCode, routing::get};
use espresso_circuit_breaker::{
    CircuitBreaker, CircuitBreakerLayer, CircuitBreakerMetrics, ConfigError,
};
use espresso_common::refusal::{Fallback, Respond};
use espresso_degrade::{DegradeLayer, DegradeMetrics, DegradeSwitch, limit::Gradient2};
use espresso_rate_limit::{Quota, RateLimitLayer, RateLimitMetrics};
use espresso_request_id::RequestIdLayer;
use espresso_slow_call::{SlowCallLayer, SlowCallMetrics};
use prometheus::Registry;
use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};
use tonic::{Status, server::NamedService};
use tower::{
    Service, ServiceBuilder,
    layer::util::{Identity, Stack},
};

/// Requests slower than this are logged with their span tree.
pub const SLOW_THRESHOLD: Duration = Duration::from_millis(100);
/// How long the `/slow` route and the `Slow` method take: over [`SLOW_THRESHOLD`].
pub const SLOW_HANDLER: Duration = Duration::from_millis(250);
/// Requests a client may send at once before it is limited; it regains [`REFILL_PER_SECOND`].
pub const BURST: u32 = 5;
/// Requests per second a client regains after its burst.
pub const REFILL_PER_SECOND: u32 = 2;
/// Failures the breaker needs before it judges the failure rate (50% opens it).
pub const BREAKER_MINIMUM_CALLS: u32 = 2;
/// How long an open breaker refuses before it lets probes through.
pub const BREAKER_WAIT: Duration = Duration::from_secs(10);

/// The stack every app gets, outermost first: request ids, slow-call logs, a per-client rate
/// limit, a circuit breaker, overload shedding. `P` is what degrade does with a shed request:
/// [`Respond`] by default, or a [`Fallback`] service.
///
/// Degrade sits next to the app so that its adaptive limit samples the app's own latency. A
/// fallback works on any layer: it answers with its own body type (a `FallbackBody`), so the
/// same `Router` or tonic service serves there as on a layer outside the others.
pub type Layers<P = Respond> = ServiceBuilder<
    Stack<
        DegradeLayer<P>,
        Stack<
            CircuitBreakerLayer,
            Stack<RateLimitLayer, Stack<SlowCallLayer, Stack<RequestIdLayer, Identity>>>,
        >,
    >,
>;

/// The metrics of all five layers, registered once, and the switch that forces degradation:
/// everything the stacks of one program share.
#[derive(Clone, Debug)]
pub struct Espresso {
    slow_call: SlowCallMetrics,
    rate_limit: RateLimitMetrics,
    degrade: DegradeMetrics,
    breaker: CircuitBreakerMetrics,
    switch: DegradeSwitch,
}

impl Espresso {
    /// Registers every layer's metrics in `registry`: `FooMetrics::register(&registry)?`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(Self {
            slow_call: SlowCallMetrics::register(registry)?,
            rate_limit: RateLimitMetrics::register(registry)?,
            degrade: DegradeMetrics::register(registry)?,
            breaker: CircuitBreakerMetrics::register(registry)?,
            switch: DegradeSwitch::new(),
        })
    }

    /// The manual switch: on, every app sheds every request (e.g. from an admin endpoint).
    pub fn switch(&self) -> &DegradeSwitch {
        &self.switch
    }

    /// The stack for one app, its limiter and breaker labelled `name`; a shed request is
    /// answered with a rejection (HTTP 503, gRPC `RESOURCE_EXHAUSTED`).
    pub fn layers(&self, name: &str) -> Result<Layers, ConfigError> {
        self.stack(name, self.degrade_layer(name))
    }

    /// [`Espresso::layers`], but `fallback` answers shed requests.
    pub fn layers_with_fallback<S>(
        &self,
        name: &str,
        fallback: S,
    ) -> Result<Layers<Fallback<S>>, ConfigError> {
        self.stack(name, self.degrade_layer(name).fallback(fallback))
    }

    fn degrade_layer(&self, name: &str) -> DegradeLayer {
        DegradeLayer::new(Gradient2::new())
            .name(name)
            .switch(self.switch.clone())
            .metrics(self.degrade.clone())
    }

    fn stack<P>(&self, name: &str, degrade: DegradeLayer<P>) -> Result<Layers<P>, ConfigError> {
        let breaker = CircuitBreaker::builder(name)
            .minimum_number_of_calls(BREAKER_MINIMUM_CALLS)
            .wait_in_open(BREAKER_WAIT)
            .metrics(self.breaker.clone())
            .build()?;
        Ok(ServiceBuilder::new()
            .layer(RequestIdLayer::new())
            .layer(
                SlowCallLayer::new(SLOW_THRESHOLD)
                    .route("/hello")
                    .route("/slow")
                    .route("/fail")
                    .route(&format!("/{}", Demo::NAME))
                    .metrics(self.slow_call.clone()),
            )
            .layer(
                RateLimitLayer::new(Quota::per_second(REFILL_PER_SECOND).burst(BURST))
                    .name(name)
                    .metrics(self.rate_limit.clone()),
            )
            .layer(CircuitBreakerLayer::new(breaker))
            .layer(degrade))
    }
}

/// The axum app before espresso: `/hello`, `/slow` (takes [`SLOW_HANDLER`]) and `/fail` (a 502,
/// as from a failing upstream).
pub fn http_routes() -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/slow", get(slow))
        .route("/fail", get(|| async { StatusCode::BAD_GATEWAY }))
}

/// What answers shed HTTP requests when degrade has a fallback: a cheaper answer, marked.
pub fn http_fallback() -> Router {
    Router::new().fallback(|| async { ([("x-degraded", "true")], "hello from the fallback\n") })
}

async fn hello() -> String {
    // The request id is reachable anywhere inside the request, without the request.
    let id = espresso_request_id::current().map(|id| id.to_string());
    format!("hello, request {}\n", id.unwrap_or_default())
}

#[tracing::instrument]
async fn slow() -> &'static str {
    tokio::time::sleep(SLOW_HANDLER).await;
    "finally\n"
}

/// A gRPC service, `espresso.example.Demo`, written without generated code: its methods take and
/// return the empty message. `Hello` answers at once, `Slow` after [`SLOW_HANDLER`], `Fail` with
/// `UNAVAILABLE` (a failing upstream); other methods are `UNIMPLEMENTED`.
#[derive(Clone, Debug, Default)]
pub struct Demo {
    degraded: bool,
}

impl Demo {
    /// The service.
    pub fn new() -> Self {
        Self::default()
    }

    /// The service as a fallback: its answers carry `x-degraded: true`.
    pub fn degraded() -> Self {
        Self { degraded: true }
    }
}

impl NamedService for Demo {
    const NAME: &'static str = "espresso.example.Demo";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<http::Request<tonic::body::Body>> for Demo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let method = match request.uri().path().rsplit('/').next() {
            Some("Hello") => DemoMethod::Hello,
            Some("Slow") => DemoMethod::Slow,
            Some("Fail") => DemoMethod::Fail,
            _ => {
                return Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) });
            }
        };
        let degraded = self.degraded;
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<(), ()>::default());
            Ok(grpc.unary(Handler { method, degraded }, request).await)
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum DemoMethod {
    Hello,
    Slow,
    Fail,
}

struct Handler {
    method: DemoMethod,
    degraded: bool,
}

impl tonic::server::UnaryService<()> for Handler {
    type Response = ();
    type Future = BoxFuture<Result<tonic::Response<()>, Status>>;

    fn call(&mut self, _: tonic::Request<()>) -> Self::Future {
        let (method, degraded) = (self.method, self.degraded);
        Box::pin(async move {
            match method {
                DemoMethod::Hello => {}
                DemoMethod::Slow => slow_method().await,
                DemoMethod::Fail => return Err(Status::unavailable("upstream down")),
            }
            let mut response = tonic::Response::new(());
            if degraded {
                response.metadata_mut().insert(
                    "x-degraded",
                    tonic::metadata::MetadataValue::from_static("true"),
                );
            }
            Ok(response)
        })
    }
}

/// `espresso.example.Demo`'s descriptor (its methods take and return `espresso.example.Empty`),
/// for gRPC reflection: with it, grpcurl and other reflection clients call the service by name.
pub fn demo_descriptor() -> prost_types::FileDescriptorSet {
    use prost_types::{
        DescriptorProto, FileDescriptorProto, MethodDescriptorProto, ServiceDescriptorProto,
    };
    let method = |name: &str| MethodDescriptorProto {
        name: Some(name.into()),
        input_type: Some(".espresso.example.Empty".into()),
        output_type: Some(".espresso.example.Empty".into()),
        ..Default::default()
    };
    prost_types::FileDescriptorSet {
        file: vec![FileDescriptorProto {
            name: Some("espresso/example/demo.proto".into()),
            package: Some("espresso.example".into()),
            message_type: vec![DescriptorProto {
                name: Some("Empty".into()),
                ..Default::default()
            }],
            service: vec![ServiceDescriptorProto {
                name: Some("Demo".into()),
                method: vec![method("Hello"), method("Slow"), method("Fail")],
                ..Default::default()
            }],
            syntax: Some("proto3".into()),
            ..Default::default()
        }],
    }
}

#[tracing::instrument]
async fn slow_method() {
    tokio::time::sleep(SLOW_HANDLER).await;
}
