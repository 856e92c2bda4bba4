//! The espresso demo server: a content-filter service over HTTP and gRPC on one port.
//!
//! It composes every espresso piece the way a production service would:
//!
//! ```text
//! request id → slow call → rate limit → catch panic → timeout → routes
//!                                                               ├─ POST /v1/filter, /v1/filter:batch (JSON)
//!                                                               ├─ espresso.filter.v1.Filter/Check, CheckBatch (gRPC)
//!                                                               ├─ /v1/lists…, espresso.filter.v1.Lists (admin token)
//!                                                               ├─ grpc.health.v1, reflection v1 + v1alpha
//!                                                               └─ /healthz /readyz /metrics
//! ```
//!
//! Probes and `/metrics` skip the rate limit; the two filter routes sit behind the degrade layer.
//!
//! Run it with `cargo run --release -p espresso-server` (no other service needed) or with
//! `--config espresso.toml` (see `server/espresso.toml`); the binary's `--help` lists the flags.
#![forbid(unsafe_code)]
// With every feature of the workspace on, proving the lists API's handler futures `Send` nests
// deeper than rustc's default limit of 128 (as the binary's `run` future does).
#![recursion_limit = "256"]

mod by_path;
mod check_config;
pub mod config;
mod degrade;
mod filter_reply;
mod grpc;
mod host;
mod http_api;
mod lane;
mod limits;
mod lists;
mod metrics;
pub mod ops;
mod pipeline;
mod rate_limit;
mod reload;
mod serve;
mod timeout;

use axum::{Router, body::Body, response::Response};
use by_path::ByPath;
use config::Config;
use espresso_common::{RejectBody, Rejection, grpc::Code};
use espresso_filter_core::{Engine, FilterRequest, FilterResponse, FilterService};
use espresso_request_id::RequestIdLayer;
use espresso_slow_call::{SlowCallBody, SlowCallLayer, SlowCallMetrics};
use http::{HeaderName, StatusCode};
use http_body_util::Either;
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;

pub use check_config::check_config;
pub use grpc::pb;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the command line chose.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--config FILE`: the TOML config; absent: every default.
    pub config: Option<PathBuf>,
    /// `--listen ADDR`: overrides `server.listen`.
    pub listen: Option<SocketAddr>,
}

/// State shared by every handler: the filter pipeline, metrics and readiness.
#[derive(Clone)]
pub(crate) struct App(Arc<AppState>);

/// What [`App`] shares; one allocation, so handlers clone it cheaply per request.
pub(crate) struct AppState {
    filter: Engine,
    service: pipeline::Pipeline,
    metrics: metrics::Metrics,
    ready: Arc<AtomicBool>,
    /// The slow-call threshold in milliseconds; reload changes it.
    slow_call_threshold_ms: Arc<AtomicU64>,
    /// Forces every filter request onto the local-only path (`[degrade] force`); reload flips it.
    degrade_switch: espresso_degrade::DegradeSwitch,
    /// Changes the rate limit's quota on reload; `None` when rate limiting is off.
    rate_limit_quota:
        Option<espresso_rate_limit::QuotaHandle<espresso_rate_limit::key::ConfigKeyValue>>,
    /// `filter.max_hits`: hits an answer lists at most.
    max_hits: usize,
    /// Where large texts wait for a turn (`filter.large_content_bytes`).
    large: lane::LargeLane,
    /// The lists made through the API, next to the config's, in `filter`.
    lists: Arc<lists::Lists>,
    /// The admin token of the lists API; `None`: the lists API is off.
    admin_token: Option<String>,
}

/// A filter answer with its hit list cut to `filter.max_hits`.
pub(crate) struct Checked {
    pub(crate) response: FilterResponse,
    /// Hits left out of `response.hits`.
    pub(crate) hits_truncated: usize,
}

impl std::ops::Deref for App {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0
    }
}

impl App {
    /// The app, and the rate-limit layer (built here because its quota handle is part of the
    /// app's reloadable state).
    async fn new(config: &Config) -> Result<(Self, Option<rate_limit::Layer>), BoxError> {
        let metrics = metrics::Metrics::new();
        let (lists, filter) = lists::Lists::load(
            reload::filter_sources(config),
            lists::Store::from_config(&config.lists)?,
            reload::filter_options(config)?,
            &metrics.registry,
        )
        .await?;
        metrics.dictionary_loaded(&filter);
        reload::warn_lists(&filter.dictionary());
        let rate_limit = rate_limit::layer(&config.rate_limit, &metrics.registry)?;
        let rate_limit_quota = rate_limit.as_ref().map(|limit| limit.quota.clone());
        let state = AppState {
            service: pipeline::build(config, &filter, &metrics.registry)?,
            filter,
            metrics,
            ready: Arc::new(AtomicBool::new(true)),
            slow_call_threshold_ms: Arc::new(AtomicU64::new(config.slow_call.threshold_ms)),
            degrade_switch: {
                let switch = espresso_degrade::DegradeSwitch::new();
                switch.set(config.degrade.force);
                switch
            },
            rate_limit_quota,
            max_hits: config.filter.max_hits,
            large: lane::LargeLane::new(&config.filter),
            lists: Arc::new(lists),
            admin_token: admin_token(&config.admin)?,
        };
        Ok((Self(Arc::new(state)), rate_limit.map(|limit| limit.layer)))
    }

    /// Runs one request through the filter pipeline, counts the answer, and keeps the first
    /// `filter.max_hits` hits (the verdict and the masked text account for all of them).
    ///
    /// No span of its own: the word lists take microseconds; the remote stages (`cache`,
    /// `classifier`) open spans for the slow-call tree.
    pub(crate) async fn check(&self, request: FilterRequest) -> Checked {
        let turn = self.large.enter(request.content.len()).await;
        let response = self.service.check(request).await;
        drop(turn);
        self.metrics
            .verdict(response.verdict, response.degraded)
            .inc();
        // Hits of one category come in runs: one counter update per run, not per hit (a text
        // of 64 KB can hold 16,000 hits).
        let mut runs = response
            .hits
            .chunk_by(|a, b| a.level == b.level && a.category == b.category);
        for run in &mut runs {
            self.metrics
                .count_hits(run[0].level.as_str(), &run[0].category, run.len() as u64);
        }
        let mut checked = Checked {
            response,
            hits_truncated: 0,
        };
        self.keep_hits(&mut checked, self.max_hits);
        checked
    }

    /// Keeps the first `keep` hits of `checked`, counting the others in its `hits_truncated`
    /// and in the metric.
    fn keep_hits(&self, checked: &mut Checked, keep: usize) {
        let hits = &mut checked.response.hits;
        let cut = hits.len().saturating_sub(keep);
        if cut > 0 {
            hits.truncate(keep);
            checked.hits_truncated += cut;
            self.metrics.hits_truncated.inc_by(cut as u64);
        }
    }

    /// Cuts a batch's answers to one `filter.max_hits` in all, the first items' hits first, so
    /// that a batch's answer is bounded as a single one is (each item's verdict and masked
    /// text still account for all of its hits).
    pub(crate) fn share_max_hits(&self, batch: &mut [Checked]) {
        let mut left = self.max_hits;
        for checked in batch {
            self.keep_hits(checked, left);
            left -= checked.response.hits.len();
        }
    }

    /// The same app answering from the word lists alone, marked degraded: what shed requests get.
    fn degraded(&self) -> Self {
        let local = FilterService::new(self.filter.clone()).map_response(|mut response| {
            response.mark_degraded();
            response
        });
        Self(Arc::new(AppState {
            filter: self.filter.clone(),
            service: pipeline::Pipeline::Staged(tower::util::BoxCloneSyncService::new(local)),
            metrics: self.metrics.clone(),
            ready: self.ready.clone(),
            slow_call_threshold_ms: self.slow_call_threshold_ms.clone(),
            degrade_switch: self.degrade_switch.clone(),
            rate_limit_quota: self.rate_limit_quota.clone(),
            max_hits: self.max_hits,
            large: self.large.clone(),
            lists: self.lists.clone(),
            admin_token: self.admin_token.clone(),
        }))
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// The token of `[admin]`: `token`, else the trimmed contents of `token_file`, else none.
pub(crate) fn admin_token(admin: &config::AdminConfig) -> Result<Option<String>, BoxError> {
    if !admin.token.is_empty() {
        return Ok(Some(admin.token.clone()));
    }
    if admin.token_file.as_os_str().is_empty() {
        return Ok(None);
    }
    let path = &admin.token_file;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("admin.token_file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("admin.token_file {}: the file is empty", path.display()).into());
    }
    Ok(Some(token.to_owned()))
}

/// The gRPC health service's stream of status changes.
const HEALTH_WATCH: &str = "/grpc.health.v1.Health/Watch";

/// `text` quoted for an error message, at most 64 characters of it: a message repeats what the
/// client sent, and must stay small whatever that was (a gRPC status travels in a header).
pub(crate) fn quoted(text: &str) -> String {
    const SHOWN: usize = 64;
    match text.char_indices().nth(SHOWN) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} characters)", &text[..cut], text.chars().count()),
    }
}

/// Asks the rate limiter's and the verdict cache's Redis for a PING once at start, and logs a
/// WARN naming the keys for each that does not answer. Both connect lazily, at the first
/// request that needs them: without this, an instance started against a dead Redis would say
/// nothing until traffic came (and then fall back to local decisions, as documented).
async fn warn_if_redis_is_down(config: Config) {
    use espresso_common::redis::RedisConnection;
    let rate_limit = (config.rate_limit.enabled
        && config.rate_limit.backend == config::RateLimitBackend::Redis)
        .then(|| ("rate_limit", config.rate_limit.redis_target()));
    let cache = config
        .cache
        .enabled
        .then(|| config.cache.redis_target().map(|t| ("cache", t)))
        .flatten();
    for (section, target) in rate_limit.into_iter().chain(cache) {
        // the first connection takes a handshake, and a cluster a look at its slots
        let answer = match RedisConnection::new(&target, Duration::from_secs(2)) {
            Ok(redis) => redis.query::<String>(&redis::cmd("PING")).await,
            Err(e) => Err(e),
        };
        if let Err(error) = answer {
            tracing::warn!(
                %error,
                "{section}: its Redis does not answer at start: it is used when it answers (until \
                 then {}); check [{section}] redis_url / redis_cluster / redis_sentinel",
                if section == "rate_limit" {
                    "each instance limits on its own share"
                } else {
                    "verdicts are cached in this process only"
                }
            );
        }
    }
}

/// The body of a caught-panic-safe answer: `CatchPanic` boxes every answer under it once.
type PanicSafeBody = tower_http::body::UnsyncBoxBody<axum::body::Bytes, BoxError>;

/// The body of the main listener's answers, as the layers above `CatchPanic` wrap it: the
/// rate limit's refusal or the answer, then the Host check's refusal or that, timed by the
/// slow-call layer. Each choice is an `Either`, so no answer is boxed again.
type StackBody = SlowCallBody<Either<Either<RejectBody<PanicSafeBody>, PanicSafeBody>, Body>>;

/// Every route and layer of the server, ready to serve, outermost first:
/// request id → slow call → Host check → rate limit (probes and metrics exempt) → catch panic
/// → timeout → degrade (filter routes only) → routes. With `server.ops_listen` the probes,
/// `/metrics` and `/debug/*` are not here but in [`ops_stack`].
async fn stack(
    app: &App,
    config: &Config,
    rate_limit: Option<rate_limit::Layer>,
) -> Result<impl serve::Stack<StackBody>, BoxError> {
    let separate_ops = config.server.ops_listen.addr().is_some();
    let max_body = config.server.max_body_bytes;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<pb::filter_server::FilterServer<grpc::FilterGrpc>>()
        .await;
    // the lists API serves only with an admin token (UNIMPLEMENTED otherwise)
    if app.admin_token.is_some() {
        health
            .set_serving::<pb::lists_server::ListsServer<grpc::ListsGrpc>>()
            .await;
    }
    let (reflection_v1, reflection_v1alpha) = grpc::reflection()?;
    let grpc_services = grpc::route(app, health_service)
        .merge(grpc::route(app, reflection_v1))
        .merge(grpc::route(app, reflection_v1alpha));

    let grpc_services = grpc_services
        .merge(lists::routes())
        .merge(grpc::lists_routes(app));
    let routes = if separate_ops {
        base_routes(app, grpc_services, false).merge(filter_routes(app, max_body))
    } else {
        base_routes(app, grpc_services, true)
            .merge(filter_routes(app, max_body))
            .merge(ops::router(&app.metrics.registry, config))
    };
    let routes = http_api::FilterRoute::new(app.clone(), max_body, routes);
    // Overload protection guards the filter only: probes, metrics and the dashboard must keep
    // answering when the filter sheds. Shed requests get the word lists alone, marked degraded.
    let degrade = degrade::layer(
        &config.degrade,
        app.degrade_switch.clone(),
        filter_routes(&app.degraded(), max_body),
        &app.metrics.registry,
    )?;
    let guarded = ByPath::new(
        is_filter_route,
        degrade.map(|degrade| ServiceBuilder::new().layer(degrade).service(routes.clone())),
        routes,
    );
    // Each layer wraps the whole router once, as one service, unboxed: `Router::layer` would
    // box every route again, and a boxed service is cloned and its future allocated on every
    // request. Catching panics boxes the answer's body once; no other layer boxes it again.
    let timeout = Duration::from_millis(config.server.request_timeout_ms);
    let routes = ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(internal_error))
        .layer(timeout::TimeoutLayer::new(timeout))
        .service(guarded);
    let limited = ByPath::new(
        rate_limit::is_limited,
        rate_limit.map(|layer| ServiceBuilder::new().layer(layer).service(routes.clone())),
        routes,
    );
    let threshold = app.slow_call_threshold_ms.clone();
    let filter = pb::filter_server::FilterServer::<grpc::FilterGrpc>::NAME;
    let lists = pb::lists_server::ListsServer::<grpc::ListsGrpc>::NAME;
    let slow_call = SlowCallLayer::new(Duration::from_millis(config.slow_call.threshold_ms))
        .threshold_fn(move |_, path| {
            // a health watch lasts as long as its client keeps it: never a slow call
            Some(if path == HEALTH_WATCH {
                Duration::MAX
            } else {
                Duration::from_millis(threshold.load(Ordering::Relaxed))
            })
        })
        .route("/v1/filter")
        .route("/v1/filter:batch")
        .route(&format!("/{filter}/Check"))
        .route(&format!("/{filter}/CheckBatch"))
        .route("/v1/lists")
        .route(&format!("/{lists}"))
        .route("/healthz")
        .route("/readyz")
        .route("/metrics")
        .metrics(slow_call_metrics(app, config)?);
    let header = HeaderName::try_from(config.request_id.header.as_str())?;
    let stack = ServiceBuilder::new()
        // The slow-call root span already carries `request_id`: no second span per request.
        .layer(RequestIdLayer::new().header(header).without_span())
        .layer(slow_call)
        .layer(host::HostCheckLayer::new(app.clone()))
        .service(limited);
    Ok(stack)
}

/// The operator listener's routes (`server.ops_listen`): probes, `/metrics` and `/debug/*`,
/// with request ids, the Host check, panic catching and the request timeout; no rate limit.
fn ops_stack(
    app: &App,
    config: &Config,
) -> Result<impl serve::Stack<Either<PanicSafeBody, Body>>, BoxError> {
    let routes =
        base_routes(app, Router::new(), true).merge(ops::router(&app.metrics.registry, config));
    let header = HeaderName::try_from(config.request_id.header.as_str())?;
    let timeout = Duration::from_millis(config.server.request_timeout_ms);
    Ok(ServiceBuilder::new()
        .layer(RequestIdLayer::new().header(header).without_span())
        .layer(host::HostCheckLayer::new(app.clone()))
        .layer(CatchPanicLayer::custom(internal_error))
        .layer(timeout::TimeoutLayer::new(timeout))
        .service(routes))
}

/// The request metrics, with the series of every route's success exported at 0 so that a fresh
/// server's `/metrics` already shows the latency family the dashboards query.
fn slow_call_metrics(app: &App, config: &Config) -> Result<SlowCallMetrics, prometheus::Error> {
    let metrics = SlowCallMetrics::register_with_buckets(
        &app.metrics.registry,
        config.slow_call.latency_buckets_seconds.clone(),
    )?;
    for route in ["/v1/filter", "/v1/filter:batch"] {
        metrics.expect(&http::Method::POST, route, "200");
    }
    let filter = pb::filter_server::FilterServer::<grpc::FilterGrpc>::NAME;
    for method in ["Check", "CheckBatch"] {
        metrics.expect(&http::Method::POST, &format!("/{filter}/{method}"), "OK");
    }
    for probe in ["/healthz", "/readyz", "/metrics"] {
        metrics.expect(&http::Method::GET, probe, "200");
    }
    Ok(metrics)
}

/// Whether `path` is one of [`filter_routes`].
fn is_filter_route(path: &str) -> bool {
    path == "/v1/filter"
        || path == "/v1/filter:batch"
        || path
            .strip_prefix('/')
            .and_then(|path| {
                path.strip_prefix(pb::filter_server::FilterServer::<grpc::FilterGrpc>::NAME)
            })
            .is_some_and(|method| method.starts_with('/'))
}

/// `POST /v1/filter` and `Filter/Check`, served by `app`'s pipeline.
fn filter_routes(app: &App, max_body: usize) -> Router {
    let grpc = pb::filter_server::FilterServer::new(grpc::FilterGrpc::new(app.clone()))
        .max_decoding_message_size(max_body);
    http_api::filter_routes(max_body)
        .merge(grpc::route(app, grpc))
        .with_state(app.clone())
}

/// The `grpc` services (health and reflection), with `probes` the HTTP probes and `/metrics`,
/// and the JSON (or gRPC) answers for unknown routes.
fn base_routes(app: &App, grpc: Router<App>, probes: bool) -> Router {
    let routes = if probes {
        http_api::probe_routes().merge(grpc)
    } else {
        grpc
    };
    routes.fallback(http_api::not_found).with_state(app.clone())
}

/// A panicking handler answers 500 with the error JSON instead of dropping the connection.
pub(crate) fn internal_error(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The panicking request is gone with the unwinding, so its id is not at hand here; the
    // request-id layer outside still puts it on the response header.
    Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal)
        .code("internal")
        .message("internal server error")
        .http_response::<Body>(None)
        .map(Body::new)
}

/// Loads the config, binds, serves until SIGTERM/SIGINT, then drains.
pub async fn run(options: Options) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let shutdown = serve::ShutdownSignal::install()
        .map_err(|e| format!("cannot catch SIGTERM/SIGINT: {e}"))?;
    let (from_file, fingerprint) = match &options.config {
        Some(path) => reload::load(path).await?,
        None => (Config::default(), 0),
    };
    let mut config = from_file.clone();
    if let Some(listen) = options.listen {
        config.server.listen = listen;
    }
    let max_connections = limits::max_connections(&config.server);
    let (app, rate_limit) = App::new(&config)
        .await
        .map_err(|error| match &options.config {
            Some(file) => lists::NameClash::in_config(error, file),
            None => error,
        })?;
    tokio::spawn(app.lists.clone().follow());
    tokio::spawn(warn_if_redis_is_down(config.clone()));
    let stack = stack(&app, &config, rate_limit).await?;
    let listen = config.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("server.listen {listen}: cannot listen: {e}"))?;
    let addr = listener.local_addr()?;
    let ops = match config.server.ops_listen.addr() {
        Some(ops_addr) => {
            let listener = TcpListener::bind(ops_addr)
                .await
                .map_err(|e| format!("server.ops_listen {ops_addr}: cannot listen: {e}"))?;
            Some((listener, ops_stack(&app, &config)?))
        }
        None => None,
    };
    tracing::info!(%addr, "espresso-server listening");
    println!("espresso-server listening on {addr}");
    if let Some((listener, _)) = &ops {
        let ops_addr = listener.local_addr()?;
        tracing::info!(%ops_addr, "operator endpoints listening (/metrics, /debug/*, /healthz, /readyz)");
        println!("espresso-server operator endpoints on {ops_addr}");
    }

    if let Some(path) = options.config.clone() {
        // Reload compares file with file: a command-line override is no change to warn about.
        tokio::spawn(reload::watch(path, from_file, fingerprint, app.clone()));
    }

    let limits = serve::ConnLimits::new(&config.server, max_connections);
    let ready = app.ready.clone();
    let closing = Arc::new(AtomicBool::new(false));
    let delay = Duration::from_millis(config.server.shutdown_delay_ms);
    // Both listeners stop accepting together, when the shutdown sequence says so.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop_accepting = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let ops = ops.map(|(listener, ops_stack)| {
        // The operator port answers probes and scrapes, a handful of clients.
        let limits = serve::ConnLimits {
            max_connections: OPS_MAX_CONNECTIONS,
            ..limits
        };
        tokio::spawn(serve::serve(
            listener,
            ops_stack,
            limits,
            app.metrics.connections.listener("ops"),
            Arc::new(AtomicBool::new(false)),
            stop_accepting(),
        ))
    });
    let public = serve::serve(
        listener,
        stack,
        limits,
        app.metrics.connections.listener("public"),
        closing.clone(),
        stop_accepting(),
    );
    let sequence = async move {
        shutdown.recv().await;
        ready.store(false, Ordering::Relaxed);
        if !delay.is_zero() {
            tracing::info!(
                ?delay,
                "shutting down: not ready, closing keep-alive connections"
            );
            closing.store(true, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
        tracing::info!("shutting down: no new connections, draining in-flight requests");
        let _ = stop.send(true);
        // Keep the sender until both listeners saw it.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = public => {}
        () = sequence => {}
    }
    if let Some(ops) = ops {
        let _ = ops.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Connections the operator listener keeps open at most.
const OPS_MAX_CONNECTIONS: usize = 64;

#[cfg(test)]
mod tests {
    use super::{is_filter_route, quoted};

    #[test]
    fn a_quoted_input_shows_at_most_64_characters() {
        assert_eq!(quoted("nope"), "\"nope\"");
        let long = "é".repeat(1_000_000);
        let shown = quoted(&long);
        assert_eq!(shown, format!("{:?}… (1000000 characters)", "é".repeat(64)));
    }

    #[test]
    fn degrade_guards_the_filter_routes_only() {
        for path in [
            "/v1/filter",
            "/v1/filter:batch",
            "/espresso.filter.v1.Filter/Check",
            "/espresso.filter.v1.Filter/CheckBatch",
        ] {
            assert!(is_filter_route(path), "{path}");
        }
        for path in [
            "/v1/filter/x",
            "/v1/filterx",
            "/espresso.filter.v1.FilterX/Check",
            "/healthz",
            "/grpc.health.v1.Health/Check",
        ] {
            assert!(!is_filter_route(path), "{path}");
        }
    }
}
