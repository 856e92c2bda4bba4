//! The classifier stage: a remote TextClassifier asked about texts the word lists let through.
//!
//! [`ClassifierLayer`] wraps any `Service<FilterRequest, Response = FilterResponse>` (usually
//! [`FilterService`](espresso_filter_core::FilterService), possibly behind other stages) and produces
//! [`Classifier`]:
//!
//! - The local verdict comes first. A text already [`Block`](Verdict::Block)ed is not sent out.
//! - Otherwise the text goes to the classifier with the request id (in the `requestId` field and
//!   in `x-request-id` metadata) and a `grpc-timeout`; the reply's label maps to a verdict
//!   through a [`LabelMap`] and can only raise the local verdict.
//! - The call runs under a timeout and an espresso [`CircuitBreaker`], optionally with a bound
//!   on calls in flight ([`ClassifierLayer::max_in_flight`]). On a timeout, an error
//!   status, a connection failure, an open breaker or a full bound, the answer is the local verdict with
//!   `degraded: true`, within the timeout: the stage never fails a request. A breaker that
//!   opens stops the calls (no pile-up on a sick classifier) until its wait ends and probes
//!   succeed.
//! - The connection is lazy ([`Endpoint::connect_lazy`]): a classifier that is down at
//!   start-up only degrades responses until it comes up.
//!
//! ```
//! use espresso_filter_stages::ClassifierLayer;
//! use espresso_filter_core::{Engine, FilterRequest, FilterService, Verdict};
//! use std::time::Duration;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // nothing listens on port 9: the stage degrades instead of failing
//! let classifier = ClassifierLayer::lazy("http://127.0.0.1:9")?.timeout(Duration::from_millis(200));
//! let service = ServiceBuilder::new()
//!     .layer(classifier)
//!     .service(FilterService::new(Engine::builtin()));
//!
//! let response = service.clone().oneshot(FilterRequest::new("hello there")).await?;
//! assert_eq!(response.verdict, Verdict::Pass);
//! assert!(response.degraded);
//!
//! // a text the word lists block never leaves the process
//! let response = service.oneshot(FilterRequest::new("fuck")).await?;
//! assert_eq!(response.verdict, Verdict::Block);
//! assert!(!response.degraded);
//! # Ok(())
//! # }
//! ```

mod labels;
// a demo server, not part of the stage: only for tests, examples and benches
#[cfg(feature = "test-support")]
pub mod rules;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tracing::Instrument;

use espresso_circuit_breaker::{
    CircuitBreaker, CircuitBreakerBuilder, CircuitOpen, Outcome, SlidingWindow,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tower_layer::Layer;
use tower_service::Service;

pub use labels::LabelMap;

use espresso_filter_core::{FilterRequest, FilterResponse, Verdict};

use crate::health::Health;
use crate::metrics::ClassifierMetrics;
use crate::proto::AnalyseRequest;
use crate::proto::text_classifier_client::TextClassifierClient;

/// The default stage timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// The longest text sent to the classifier by default: 4 MiB, a gRPC server's usual limit on a
/// message (tonic's), less 64 KiB for the rest of the message.
pub const DEFAULT_MAX_TEXT_BYTES: usize = (4 << 20) - (64 << 10);

/// Why the classifier's opinion is missing from a response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClassifierError {
    /// The endpoint is not a valid URI.
    #[error("invalid classifier endpoint {endpoint:?}: {message}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        message: String,
    },
    /// No answer within the stage timeout.
    #[error("classifier: no answer within {0:?}")]
    Timeout(Duration),
    /// The classifier answered with an error status (or could not be reached).
    #[error("classifier: {0}")]
    Status(#[from] tonic::Status),
    /// The classifier's circuit breaker is open.
    #[error("classifier: {0}")]
    Open(#[from] CircuitOpen),
    /// The text is longer than [`ClassifierLayer::max_text_bytes`]: not sent.
    #[error("classifier: a text of {bytes} bytes is over the {max}-byte limit, not sent")]
    TooLarge {
        /// The text's length in bytes.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// As many calls as [`ClassifierLayer::max_in_flight`] allows are already waiting.
    #[error("classifier: {0} calls already in flight")]
    Overloaded(usize),
}

// === impl ClassifierClient ===

/// The client the stage uses: the tonic client, the timeout, the label map, the breaker and the
/// metrics. Cheap to clone; clones share the connection and the breaker.
#[derive(Clone)]
pub struct ClassifierClient {
    shared: Arc<ClientShared>,
}

#[derive(Clone)]
struct ClientShared {
    client: TextClassifierClient<Channel>,
    timeout: Duration,
    labels: LabelMap,
    breaker: CircuitBreaker,
    metrics: Option<ClassifierMetrics>,
    in_flight: Option<(Arc<Semaphore>, usize)>,
    max_text_bytes: usize,
    /// Whether the classifier is failing, as the log says: what logs once an outage.
    health: Arc<Health>,
}

impl fmt::Debug for ClassifierClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifierClient")
            .field("timeout", &self.shared.timeout)
            .field("labels", &self.shared.labels)
            .field("breaker", &self.shared.breaker)
            .finish_non_exhaustive()
    }
}

/// The settings of the breaker a [`ClassifierLayer`] uses unless given one: a window of the
/// last second (4 buckets), opening at 50 % failures once 20 calls are in, a 5 s wait, 3
/// half-open probes. A window of time rather than of calls: at thousands of requests a second
/// a window of the last 20 calls is a few milliseconds, and one scheduling stall would open it.
/// Add [`metrics`](espresso_circuit_breaker::CircuitBreakerBuilder::metrics) or change a
/// setting, then `build()` and pass it to [`ClassifierLayer::breaker`].
pub fn default_breaker(name: &str) -> CircuitBreakerBuilder {
    CircuitBreaker::builder(name)
        .sliding_window(SlidingWindow::time_buckets(Duration::from_secs(1), 4))
        .minimum_number_of_calls(20)
        .failure_rate_threshold(50.0)
        .wait_in_open(Duration::from_secs(5))
        .permitted_calls_in_half_open(3)
}

impl ClassifierClient {
    /// Asks the classifier about `content` and maps its answer to a verdict.
    ///
    /// Returns within the timeout (plus scheduling); the breaker records a success, or a
    /// failure for an error status, a transport error or a timeout. A call dropped before it
    /// finishes counts as ignored.
    pub async fn classify(
        &self,
        content: String,
        request_id: Option<&str>,
    ) -> Result<Verdict, ClassifierError> {
        let shared = &*self.shared;
        if content.len() > shared.max_text_bytes {
            if let Some(m) = &shared.metrics {
                m.outcome("too_large");
            }
            return Err(ClassifierError::TooLarge {
                bytes: content.len(),
                max: shared.max_text_bytes,
            });
        }
        let _slot = match &shared.in_flight {
            Some((slots, max)) => match slots.try_acquire() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    if let Some(m) = &shared.metrics {
                        m.outcome("shed");
                    }
                    return Err(ClassifierError::Overloaded(*max));
                }
            },
            None => None,
        };
        let permit = match shared.breaker.try_acquire() {
            Ok(permit) => permit,
            Err(open) => {
                if let Some(m) = &shared.metrics {
                    m.outcome("open");
                }
                return Err(ClassifierError::Open(open));
            }
        };
        let started = Instant::now();
        let mut request = tonic::Request::new(AnalyseRequest {
            content,
            request_id: request_id.unwrap_or_default().to_owned(),
        });
        request.set_timeout(shared.timeout);
        if let Some(id) = request_id
            && let Ok(value) = MetadataValue::try_from(id)
        {
            request.metadata_mut().insert("x-request-id", value);
        }
        #[cfg(feature = "otel")]
        {
            let mut headers = std::mem::take(request.metadata_mut()).into_headers();
            espresso_slow_call::otel::inject(&mut headers);
            *request.metadata_mut() = tonic::metadata::MetadataMap::from_headers(headers);
        }
        let mut client = shared.client.clone();
        let result = tokio::time::timeout(shared.timeout, client.analyse(request)).await;
        let elapsed = started.elapsed();
        let (outcome, result) = match result {
            Ok(Ok(reply)) => (Outcome::Success, Ok(shared.labels.verdict(reply.get_ref()))),
            // the server saw the `grpc-timeout` run out first: DEADLINE_EXCEEDED, or
            // CANCELLED ("Timeout expired") from a tonic server
            Ok(Err(status))
                if matches!(
                    status.code(),
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
                ) =>
            {
                (
                    Outcome::Failure,
                    Err(ClassifierError::Timeout(shared.timeout)),
                )
            }
            Ok(Err(status)) => (Outcome::Failure, Err(ClassifierError::Status(status))),
            Err(_) => (
                Outcome::Failure,
                Err(ClassifierError::Timeout(shared.timeout)),
            ),
        };
        permit.record(outcome, elapsed);
        match &result {
            Ok(_) => {
                if shared.health.succeeded() {
                    tracing::info!("classifier answers again");
                }
            }
            Err(error) => {
                if shared.health.failed(Instant::now()) {
                    tracing::warn!(%error, "classifier call failed, answering with the local verdict (degraded) until it answers again");
                } else {
                    tracing::debug!(%error, "classifier call failed");
                }
            }
        }
        if let Some(m) = &shared.metrics {
            m.observe(elapsed);
            m.outcome(match &result {
                Ok(_) => "ok",
                Err(ClassifierError::Timeout(_)) => "timeout",
                Err(_) => "error",
            });
        }
        result
    }

    /// The stage timeout.
    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// The breaker around the calls.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.shared.breaker
    }

    /// The label map.
    pub fn labels(&self) -> &LabelMap {
        &self.shared.labels
    }
}

// === impl ClassifierLayer ===

/// Applies the classifier stage ([`Classifier`]) to a filter service. See the
/// [module docs](self).
#[derive(Clone, Debug)]
pub struct ClassifierLayer {
    client: ClassifierClient,
}

impl ClassifierLayer {
    /// A stage over an existing channel, with the [`DEFAULT_TIMEOUT`], the default
    /// [`LabelMap`] and a breaker named `classifier` with the [`default_breaker`] settings.
    pub fn new(channel: Channel) -> Self {
        ClassifierLayer {
            client: ClassifierClient {
                shared: Arc::new(ClientShared {
                    client: TextClassifierClient::new(channel),
                    timeout: DEFAULT_TIMEOUT,
                    labels: LabelMap::default(),
                    breaker: default_breaker("classifier")
                        .build()
                        .expect("the default classifier breaker configuration is valid"),
                    metrics: None,
                    in_flight: None,
                    max_text_bytes: DEFAULT_MAX_TEXT_BYTES,
                    health: Arc::default(),
                }),
            },
        }
    }

    /// A stage that connects to `endpoint` (`http://host:port`) on first use and reconnects
    /// as needed; a classifier that is down only degrades responses. An endpoint
    /// [`check_endpoint`](Self::check_endpoint) refuses is an
    /// [`InvalidEndpoint`](ClassifierError::InvalidEndpoint) error.
    ///
    /// Must be called inside a Tokio runtime.
    pub fn lazy(endpoint: &str) -> Result<Self, ClassifierError> {
        let invalid = |message: String| ClassifierError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            message,
        };
        Self::check_endpoint(endpoint).map_err(invalid)?;
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(ClassifierLayer::new(channel))
    }

    /// Checks an endpoint as [`lazy`](Self::lazy) does, for a config file to refuse it where
    /// it is written: `http://host` or `http://host:port`, nothing after. The stage speaks
    /// gRPC over plain HTTP/2: an `https://` endpoint is refused rather than sent the texts
    /// unencrypted, and one without a scheme (`host:port`) rather than failing every call.
    ///
    /// ```
    /// use espresso_filter_stages::ClassifierLayer;
    ///
    /// assert!(ClassifierLayer::check_endpoint("http://127.0.0.1:50051").is_ok());
    /// let why = ClassifierLayer::check_endpoint("https://classifier:443").unwrap_err();
    /// assert!(why.contains("TLS"), "{why}");
    /// assert!(ClassifierLayer::check_endpoint("127.0.0.1:50051").is_err());
    /// ```
    pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
        let uri: tonic::codegen::http::Uri = endpoint
            .parse()
            .map_err(|e| format!("not a URI ({e}); expected http://host:port"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(
                    "TLS is not supported: the classifier is called over plain HTTP/2 \
                            (http://host:port); put the TLS hop in a proxy beside this process"
                        .into(),
                );
            }
            Some(other) => return Err(format!("scheme {other:?}; expected http://host:port")),
            None => return Err("no scheme; expected http://host:port".into()),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err("no host; expected http://host:port".into());
        }
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err("a path; expected http://host:port and nothing after".into());
        }
        Ok(())
    }

    /// The stage timeout: the longest the classifier can add to a request.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with(|s| s.timeout = timeout)
    }

    /// How labels map to verdicts.
    pub fn labels(self, labels: LabelMap) -> Self {
        self.with(|s| s.labels = labels)
    }

    /// The breaker around the calls (instead of [`default_breaker`]).
    pub fn breaker(self, breaker: CircuitBreaker) -> Self {
        self.with(|s| s.breaker = breaker)
    }

    /// At most `max` calls to the classifier at once (across every service of this layer);
    /// a request beyond that does not wait but gets the local verdict, `degraded`. Keeps a
    /// slow classifier from holding more than `max` requests at a time (Little's law: `max` /
    /// timeout is the most calls per second the stage can keep waiting). Unlimited by default.
    pub fn max_in_flight(self, max: usize) -> Self {
        self.with(|s| s.in_flight = Some((Arc::new(Semaphore::new(max)), max)))
    }

    /// Texts longer than `max` bytes are not sent: they get the local verdict, `degraded`
    /// ([`ClassifierError::TooLarge`], counted as `outcome="too_large"`), and the breaker does
    /// not hear of them. A classifier refuses a message over its own limit with an error, which
    /// the breaker would count: a few clients' huge texts would switch the classifier off for
    /// everyone. Default [`DEFAULT_MAX_TEXT_BYTES`]; set it to what the classifier takes.
    pub fn max_text_bytes(self, max: usize) -> Self {
        self.with(|s| s.max_text_bytes = max)
    }

    /// Records the calls in `metrics`.
    pub fn metrics(self, metrics: ClassifierMetrics) -> Self {
        self.with(|s| s.metrics = Some(metrics))
    }

    /// The client the services of this layer share.
    pub fn client(&self) -> &ClassifierClient {
        &self.client
    }

    fn with(self, change: impl FnOnce(&mut ClientShared)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.client.shared);
        change(&mut shared);
        ClassifierLayer {
            client: ClassifierClient {
                shared: Arc::new(shared),
            },
        }
    }
}

impl<S> Layer<S> for ClassifierLayer {
    type Service = Classifier<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Classifier {
            inner,
            client: self.client.clone(),
        }
    }
}

// === impl Classifier ===

/// The classifier stage over `S`; made by [`ClassifierLayer`].
#[derive(Clone, Debug)]
pub struct Classifier<S> {
    inner: S,
    client: ClassifierClient,
}

impl<S> Classifier<S> {
    /// The stage over `inner`, asking `client`.
    pub fn new(inner: S, client: ClassifierClient) -> Self {
        Classifier { inner, client }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The client this stage asks.
    pub fn client(&self) -> &ClassifierClient {
        &self.client
    }
}

/// The response future of [`Classifier`] and [`Cache`](crate::Cache).
pub type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl<S> Service<FilterRequest> for Classifier<S>
where
    S: Service<FilterRequest, Response = FilterResponse>,
    S::Future: Send + 'static,
{
    type Response = FilterResponse;
    type Error = S::Error;
    type Future = BoxFuture<FilterResponse, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: FilterRequest) -> Self::Future {
        let content = request.content.clone();
        let local = self.inner.call(request);
        let client = self.client.clone();
        Box::pin(async move {
            let mut response = local.await?;
            if response.verdict == Verdict::Block {
                if let Some(m) = &client.shared.metrics {
                    m.outcome("skipped");
                }
                return Ok(response);
            }
            match client
                .classify(content, response.request_id.as_deref())
                .instrument(tracing::info_span!("classifier"))
                .await
            {
                Ok(verdict) => response.escalate(verdict),
                Err(error) => {
                    tracing::debug!(%error, "classifier skipped, local verdict only");
                    response.mark_degraded();
                }
            }
            Ok(response)
        })
    }
}
