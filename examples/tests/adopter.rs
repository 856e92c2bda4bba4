//! The adopter's program, driven through both of its apps: each layer's visible behaviour over
//! HTTP (axum) and over gRPC (tonic), from the stack the `adopter` example ships
//! (`espresso_examples::adopter`), with real round trips over 127.0.0.1.
//!
//! The clock: every test runs on a current-thread runtime whose tokio clock starts paused
//! (`start_paused = true`). It moves only when every task waits on a timer, when it jumps to the
//! next deadline (so a slow handler's sleep ends at once yet measures its full length), or when a
//! test calls `tokio::time::advance` (a quota refilling, an open breaker's wait). Every layer
//! reads tokio's clock, so no test waits in real time and none depends on the machine's speed.

use axum::{Router, body::Bytes, http::StatusCode};
use espresso_examples::adopter::{
    BREAKER_MINIMUM_CALLS, BREAKER_WAIT, BURST, Demo, Espresso, SLOW_HANDLER, SLOW_THRESHOLD,
    http_fallback, http_routes,
};
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use prometheus::Registry;
use std::{
    io::Write,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::net::{TcpListener, TcpStream};
use tonic::{
    Code, Status,
    codegen::http::uri::PathAndQuery,
    transport::{Channel, Server, server::TcpIncoming},
};
use tracing_subscriber::{filter::LevelFilter, fmt::MakeWriter, prelude::*};

/// The HTTP app's address and a channel to the gRPC service.
struct Apps {
    http: SocketAddr,
    grpc: Channel,
}

/// Both apps behind `espresso.layers(name)`: the example's two lines.
async fn start(espresso: &Espresso) -> Apps {
    let http = http_routes().layer(espresso.layers("http").unwrap());
    let grpc = Server::builder()
        .layer(espresso.layers("grpc").unwrap())
        .add_service(Demo::new());
    serve(http, |incoming| grpc.serve_with_incoming(incoming)).await
}

/// Both apps with a fallback answering shed requests.
async fn start_with_fallback(espresso: &Espresso) -> Apps {
    let http = http_routes().layer(
        espresso
            .layers_with_fallback("http", http_fallback())
            .unwrap(),
    );
    let grpc = Server::builder()
        .layer(
            espresso
                .layers_with_fallback("grpc", Demo::degraded())
                .unwrap(),
        )
        .add_service(Demo::new());
    serve(http, |incoming| grpc.serve_with_incoming(incoming)).await
}

/// Serves the HTTP app and, through `serve_grpc`, the gRPC one, each on a port of its own.
async fn serve<G, F>(http: Router, serve_grpc: G) -> Apps
where
    G: FnOnce(TcpIncoming) -> F,
    F: Future + Send + 'static,
    F::Output: Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = listener.local_addr().unwrap();
    tokio::spawn(serve_grpc(TcpIncoming::from(listener)));
    Apps {
        http: serve_http(http).await,
        grpc: connect(grpc_addr).await,
    }
}

async fn serve_http(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// One HTTP/1.1 GET on its own connection; the body as text.
async fn get(addr: SocketAddr, path: &str, request_id: Option<&str>) -> Response<String> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::get(path).header("host", addr.to_string());
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, String::from_utf8(body.to_vec()).unwrap())
}

/// One call to `espresso.example.Demo/{method}`: the response metadata, or the status.
async fn call(
    channel: &Channel,
    method: &str,
    request_id: Option<&str>,
) -> Result<HeaderMap, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(id) = request_id {
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().unwrap());
    }
    let path = PathAndQuery::try_from(format!("/espresso.example.Demo/{method}")).unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    grpc.unary(request, path, codec)
        .await
        .map(|response| response.metadata().clone().into_headers())
}

/// What `tracing_subscriber::fmt` wrote, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// The example's subscriber (the slow-call recorder and a fmt layer at INFO), writing to memory
/// for as long as the guard lives; the runtime has one thread, so the servers' tasks log here too.
fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry()
        .with(espresso_slow_call::SlowCallRecorder::new().filtered(LevelFilter::INFO))
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(captured.clone())
                .with_filter(LevelFilter::INFO),
        );
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

fn espresso() -> Espresso {
    Espresso::new(&Registry::new()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn every_answer_carries_a_request_id_and_a_valid_incoming_one_is_echoed() {
    let apps = start(&espresso()).await;

    let generated = get(apps.http, "/hello", None).await;
    assert_eq!(generated.status(), StatusCode::OK);
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(generated.body(), &format!("hello, request {id}\n"));
    let echoed = get(apps.http, "/hello", Some("abc-123")).await;
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    assert_eq!(echoed.body(), "hello, request abc-123\n");

    let generated = call(&apps.grpc, "Hello", None).await.unwrap();
    assert_eq!(generated["x-request-id"].len(), 36);
    let echoed = call(&apps.grpc, "Hello", Some("abc-123")).await.unwrap();
    assert_eq!(echoed["x-request-id"], "abc-123");
}

#[tokio::test(start_paused = true)]
async fn a_slow_request_logs_one_warn_line_naming_its_request_id_once() {
    let (logs, _guard) = capture_logs();
    let apps = start(&espresso()).await;

    let started = tokio::time::Instant::now();
    let fast = get(apps.http, "/hello", Some("fast-http")).await;
    assert_eq!(fast.status(), StatusCode::OK);
    let slow = get(apps.http, "/slow", Some("slow-http")).await;
    assert_eq!(slow.status(), StatusCode::OK);
    call(&apps.grpc, "Hello", Some("fast-grpc")).await.unwrap();
    call(&apps.grpc, "Slow", Some("slow-grpc")).await.unwrap();
    // The paused clock jumped over both sleeps and nothing else.
    assert_eq!(started.elapsed(), 2 * SLOW_HANDLER);
    assert!(SLOW_HANDLER > SLOW_THRESHOLD);

    let lines = logs.lines();
    let slow_lines: Vec<&String> = lines.iter().filter(|l| l.contains("slow call")).collect();
    assert_eq!(slow_lines.len(), 2, "one line per slow request: {lines:#?}");
    for (line, id, what) in [
        (slow_lines[0], "slow-http", "GET /slow"),
        (slow_lines[1], "slow-grpc", "/espresso.example.Demo/Slow"),
    ] {
        assert!(line.contains(" WARN "), "{line}");
        assert_eq!(line.matches(id).count(), 1, "the id once: {line}");
        assert!(line.contains(what), "{line}");
        assert!(
            line.contains("slow"),
            "the handler's span in the tree: {line}"
        );
    }
    assert!(!lines.iter().any(|l| l.contains("fast-")), "{lines:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_client_over_its_quota_gets_429_with_headers_over_http_and_resource_exhausted_over_grpc()
{
    let apps = start(&espresso()).await;

    for _ in 0..BURST {
        assert_eq!(
            get(apps.http, "/hello", None).await.status(),
            StatusCode::OK
        );
        call(&apps.grpc, "Hello", None).await.unwrap();
    }
    let limited = get(apps.http, "/hello", None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "1");
    let ratelimit = limited.headers()["ratelimit"].to_str().unwrap();
    assert!(ratelimit.contains("r=0"), "{ratelimit}");
    assert!(limited.headers().contains_key("ratelimit-policy"));
    let status = call(&apps.grpc, "Hello", None).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // A second later the quota has refilled enough for one more of each.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        get(apps.http, "/hello", None).await.status(),
        StatusCode::OK
    );
    call(&apps.grpc, "Hello", None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn after_failures_the_breaker_answers_503_over_http_and_unavailable_over_grpc() {
    let apps = start(&espresso()).await;

    for _ in 0..BREAKER_MINIMUM_CALLS {
        assert_eq!(
            get(apps.http, "/fail", None).await.status(),
            StatusCode::BAD_GATEWAY
        );
        let failed = call(&apps.grpc, "Fail", None).await.unwrap_err();
        assert_eq!(failed.message(), "upstream down");
    }
    // Open: the app is not called, even on a route that works.
    let open = get(apps.http, "/hello", None).await;
    assert_eq!(open.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(open.headers().contains_key("retry-after"));
    let status = call(&apps.grpc, "Hello", None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_ne!(
        status.message(),
        "upstream down",
        "the breaker answered, not the service"
    );

    // After its wait the breaker lets a probe through, and the probe's success closes it.
    tokio::time::advance(BREAKER_WAIT).await;
    assert_eq!(
        get(apps.http, "/hello", None).await.status(),
        StatusCode::OK
    );
    call(&apps.grpc, "Hello", None).await.unwrap();
    assert_eq!(
        get(apps.http, "/hello", None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn a_shedding_app_answers_503_over_http_and_resource_exhausted_over_grpc() {
    let espresso = espresso();
    let apps = start(&espresso).await;
    assert_eq!(
        get(apps.http, "/hello", None).await.status(),
        StatusCode::OK
    );

    espresso.switch().set(true);
    for _ in 0..=BREAKER_MINIMUM_CALLS {
        let shed = get(apps.http, "/hello", None).await;
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.headers()["retry-after"], "1");
        let status = call(&apps.grpc, "Hello", None).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
    }

    // Shed requests never reached the app: the breaker around degrade did not count them, so
    // the app answers as soon as the switch is off.

    espresso.switch().set(false);
    assert_eq!(
        get(apps.http, "/hello", None).await.status(),
        StatusCode::OK
    );
    call(&apps.grpc, "Hello", None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn with_a_fallback_shed_requests_get_the_fallbacks_answer() {
    let espresso = espresso();
    let apps = start_with_fallback(&espresso).await;
    let primary = call(&apps.grpc, "Hello", None).await.unwrap();
    assert!(!primary.contains_key("x-degraded"));

    espresso.switch().set(true);
    let answer = get(apps.http, "/hello", None).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["x-degraded"], "true");
    assert_eq!(answer.body(), "hello from the fallback\n");
    assert!(answer.headers().contains_key("x-request-id"));
    let answer = call(&apps.grpc, "Hello", None).await.unwrap();
    assert_eq!(answer["x-degraded"], "true");
}

#[tokio::test(start_paused = true)]
async fn one_registry_holds_every_layers_metrics_for_both_apps() {
    let registry = Registry::new();
    let apps = start(&Espresso::new(&registry).unwrap()).await;
    assert_eq!(get(apps.http, "/slow", None).await.status(), StatusCode::OK);
    call(&apps.grpc, "Slow", None).await.unwrap();

    let scrape = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    for line in [
        r#"espresso_rate_limit_requests_total{decision="allowed",limiter="http"} 1"#,
        r#"espresso_rate_limit_requests_total{decision="allowed",limiter="grpc"} 1"#,
        r#"espresso_circuit_breaker_state{name="http",state="closed"} 1"#,
        r#"espresso_circuit_breaker_state{name="grpc",state="closed"} 1"#,
        r#"espresso_degrade_inflight{name="http"} 0"#,
        r#"espresso_degrade_inflight{name="grpc"} 0"#,
        r#"espresso_slow_calls_total{route="/slow"} 1"#,
        r#"espresso_slow_calls_total{route="/espresso.example.Demo"} 1"#,
        r#"http_server_request_duration_seconds_count{method="GET",route="/slow",status="200"} 1"#,
    ] {
        assert!(scrape.lines().any(|l| l == line), "{line} in\n{scrape}");
    }
}

/// A fallback on an outer layer answers with its own body type, whatever the layers inside it
/// wrap the body in: the same `Router` and the same tonic service as on degrade, no adapter.
#[tokio::test(start_paused = true)]
async fn a_fallback_on_a_layer_outside_others_takes_the_apps_own_services() {
    use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerLayer};
    use espresso_common::refusal::Fallback;
    use espresso_degrade::{DegradeLayer, limit::Fixed};
    use espresso_rate_limit::{Global, Quota, RateLimitLayer};
    use tower::{
        ServiceBuilder,
        layer::util::{Identity, Stack},
    };

    /// A rate limit falling back to `fallback`, outside a breaker and degrade.
    type Limited<F> = ServiceBuilder<
        Stack<
            DegradeLayer,
            Stack<CircuitBreakerLayer, Stack<RateLimitLayer<Global, Fallback<F>>, Identity>>,
        >,
    >;
    fn limited<F>(name: &str, fallback: F) -> Limited<F> {
        ServiceBuilder::new()
            .layer(
                RateLimitLayer::new(Quota::per_second(1))
                    .key(Global::new())
                    .fallback(fallback),
            )
            .layer(CircuitBreakerLayer::new(
                CircuitBreaker::builder(name).build().unwrap(),
            ))
            .layer(DegradeLayer::new(Fixed::new(10)))
    }
    let http = http_routes().layer(limited("http", http_fallback()));
    let grpc = Server::builder()
        .layer(limited("grpc", Demo::degraded()))
        .add_service(Demo::new());
    let apps = serve(http, |incoming| grpc.serve_with_incoming(incoming)).await;

    let first = get(apps.http, "/hello", None).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(!first.headers().contains_key("x-degraded"));
    let limited = get(apps.http, "/hello", None).await;
    assert_eq!(limited.status(), StatusCode::OK);
    assert_eq!(limited.headers()["x-degraded"], "true");
    assert_eq!(limited.body(), "hello from the fallback\n");

    let first = call(&apps.grpc, "Hello", None).await.unwrap();
    assert!(!first.contains_key("x-degraded"));
    let limited = call(&apps.grpc, "Hello", None).await.unwrap();
    assert_eq!(limited["x-degraded"], "true");
}
