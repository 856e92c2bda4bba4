//! [`RuleClassifier`]: a small TextClassifier server with keyword rules, for demos and tests.
//!
//! Behind the `test-support` feature: tests, examples and benches enable it; a deployment talks
//! to a real classifier.
//!
//! ```
//! use espresso_filter_stages::classifier::rules::RuleClassifier;
//! use espresso_filter_stages::ClassifierLayer;
//! use espresso_filter_core::{Engine, FilterRequest, FilterService, Verdict};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let endpoint = format!("http://{}", listener.local_addr()?);
//! let rules = RuleClassifier::default();
//! tokio::spawn(rules.clone().serve(listener));
//!
//! let layer = ClassifierLayer::lazy(&endpoint)?.timeout(std::time::Duration::from_secs(2));
//! let service = layer.layer(FilterService::new(Engine::builtin()));
//! let response = service.oneshot(FilterRequest::new("Click here for a DISCOUNT")).await?;
//! assert_eq!(response.verdict, Verdict::Review); // ADVERTISEMENT
//! assert!(!response.degraded);
//! assert_eq!(rules.calls(), 1);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::proto::analyse_reply::ContentType;
use crate::proto::text_classifier_server::{TextClassifier, TextClassifierServer};
use crate::proto::{AnalyseReply, AnalyseRequest};

/// A TextClassifier answering by keyword rules: the first rule with a keyword contained in the
/// text (compared in lower case) gives the content type, whose name is also the label; no match
/// is `NORMAL`.
///
/// Clones share their knobs ([`set_delay`](Self::set_delay),
/// [`set_failing`](Self::set_failing)) and counters, so a test keeps a clone of the classifier
/// it serves and turns the knobs while it runs.
#[derive(Clone, Debug)]
pub struct RuleClassifier {
    rules: Arc<Vec<(ContentType, Vec<String>)>>,
    knobs: Arc<Knobs>,
}

#[derive(Debug, Default)]
struct Knobs {
    delay_micros: AtomicU64,
    failing: AtomicBool,
    calls: AtomicU64,
    last: Mutex<Option<SeenRequest>>,
}

/// The request ids of a request as the classifier received them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeenRequest {
    /// The `requestId` field.
    pub request_id: String,
    /// The `x-request-id` metadata, if any.
    pub metadata_request_id: Option<String>,
    /// The `traceparent` metadata (W3C trace context), if any.
    pub traceparent: Option<String>,
}

impl Default for RuleClassifier {
    /// Rules for `PORN` (`porn`, `xxx`, `nsfw`), `ABUSIVE` (`idiot`, `moron`, `loser`) and
    /// `ADVERTISEMENT` (`buy now`, `discount`, `click here`, `free money`), in that order.
    fn default() -> Self {
        RuleClassifier::new()
            .rule(ContentType::Porn, ["porn", "xxx", "nsfw"])
            .rule(ContentType::Abusive, ["idiot", "moron", "loser"])
            .rule(
                ContentType::Advertisement,
                ["buy now", "discount", "click here", "free money"],
            )
    }
}

impl RuleClassifier {
    /// A classifier without rules: everything is `NORMAL`.
    pub fn new() -> Self {
        RuleClassifier {
            rules: Arc::new(Vec::new()),
            knobs: Arc::new(Knobs::default()),
        }
    }

    /// Adds a rule: texts containing one of `keywords` are `content_type`.
    pub fn rule<I>(mut self, content_type: ContentType, keywords: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let keywords = keywords
            .into_iter()
            .map(|k| k.as_ref().to_lowercase())
            .filter(|k| !k.is_empty())
            .collect();
        Arc::make_mut(&mut self.rules).push((content_type, keywords));
        self
    }

    /// Waits `delay` before answering (for timeout tests).
    pub fn set_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.knobs.delay_micros.store(micros, Ordering::Relaxed);
    }

    /// Answers `INTERNAL` instead of classifying while `failing` is true.
    pub fn set_failing(&self, failing: bool) {
        self.knobs.failing.store(failing, Ordering::Relaxed);
    }

    /// How many requests arrived (including failed and delayed ones).
    pub fn calls(&self) -> u64 {
        self.knobs.calls.load(Ordering::Relaxed)
    }

    /// The request ids of the last request.
    pub fn last_request(&self) -> Option<SeenRequest> {
        self.knobs
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The content type of `content` by the rules.
    pub fn classify(&self, content: &str) -> ContentType {
        let text = content.to_lowercase();
        self.rules
            .iter()
            .find(|(_, keywords)| keywords.iter().any(|k| text.contains(k.as_str())))
            .map_or(ContentType::Normal, |(t, _)| *t)
    }

    /// The tonic service, to add to a `Server` of your own.
    pub fn into_server(self) -> TextClassifierServer<Self> {
        TextClassifierServer::new(self)
    }

    /// Serves on `listener` until the future is dropped.
    pub async fn serve(self, listener: TcpListener) -> Result<(), tonic::transport::Error> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), tonic::transport::Error> {
        Server::builder()
            .add_service(self.into_server())
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
            .await
    }
}

#[tonic::async_trait]
impl TextClassifier for RuleClassifier {
    async fn analyse(
        &self,
        request: Request<AnalyseRequest>,
    ) -> Result<Response<AnalyseReply>, Status> {
        self.knobs.calls.fetch_add(1, Ordering::Relaxed);
        let metadata = |key: &str| {
            request
                .metadata()
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let metadata_request_id = metadata("x-request-id");
        let traceparent = metadata("traceparent");
        let request = request.into_inner();
        *self.knobs.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(SeenRequest {
            request_id: request.request_id.clone(),
            metadata_request_id,
            traceparent,
        });
        let delay = Duration::from_micros(self.knobs.delay_micros.load(Ordering::Relaxed));
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.knobs.failing.load(Ordering::Relaxed) {
            return Err(Status::internal("injected failure"));
        }
        let content_type = self.classify(&request.content);
        Ok(Response::new(AnalyseReply {
            label: content_type.as_str_name().to_owned(),
            r#type: content_type as i32,
            request_id: request.request_id,
        }))
    }
}
