//! The remote stages against real backends: the example `RuleClassifier` served by tonic on a
//! free port of 127.0.0.1, and a `redis-server` of each Redis test's own (`espresso-test-support`:
//! skipped with one line where none is installed).
//!
//! Time is real here, not paused: a paused Tokio clock advances by itself whenever the runtime
//! waits for I/O, so every timeout around a real socket would fire at once. The timeouts are
//! therefore small real ones, and the latency bounds asserted are loose (a stage timeout of
//! 250 ms against a bound of 1 s): they catch a stage that waits for a slow backend, not a slow
//! machine. The breaker's own timing is tested with paused time in its crate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use espresso_circuit_breaker::{CircuitBreaker, SlidingWindow, State};
use espresso_filter_core::{
    Engine, FilterRequest, FilterResponse, FilterService, Level, ListSource, Sources, Verdict,
};
use espresso_filter_stages::classifier::rules::RuleClassifier;
use espresso_filter_stages::{
    Cache, CacheLayer, CacheMetrics, Classifier, ClassifierError, ClassifierLayer,
    ClassifierMetrics, LabelMap, RedisCache, RedisTarget, default_breaker,
};
use espresso_test_support::{RedisCluster, RedisSentinel, RedisServer};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

/// The stage timeout used throughout, and the bound a response must come within.
const TIMEOUT: Duration = Duration::from_millis(250);
const BOUND: Duration = Duration::from_secs(1);
/// The classifier timeout of tests where the classifier is healthy: long enough that a busy
/// machine does not turn an answer into a timeout.
const HEALTHY: Duration = Duration::from_millis(500);

// === helpers ===

/// Serves `rules` on a free port; answers the endpoint. The server stops with the runtime.
async fn serve(rules: &RuleClassifier) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(rules.clone().serve(listener));
    endpoint
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A breaker that opens after 4 calls with half of them failed, waits `wait`, then lets one
/// probe through.
fn small_breaker(name: &str, wait: Duration) -> CircuitBreaker {
    CircuitBreaker::builder(name)
        .sliding_window(SlidingWindow::count(4))
        .minimum_number_of_calls(4)
        .failure_rate_threshold(50.0)
        .wait_in_open(wait)
        .permitted_calls_in_half_open(1)
        .build()
        .unwrap()
}

/// Sends one request and checks it is answered within the bound.
async fn check<S>(service: &mut S, request: FilterRequest) -> FilterResponse
where
    S: Service<FilterRequest, Response = FilterResponse>,
    S::Error: std::fmt::Debug,
{
    let started = Instant::now();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < BOUND, "answered after {elapsed:?}");
    response
}

/// The value of the counter `name` with the label `label = value` (0 if never incremented).
fn counter(registry: &Registry, name: &str, label: &str, value: &str) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|family| family.name() == name)
        .flat_map(|family| family.get_metric())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == label && l.value() == value)
        })
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

/// Waits (at most 5 s) until `condition` holds; for state that changes in the background.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A key prefix of its own for each test, so runs and tests never see each other's entries.
fn unique_prefix(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "espresso-test:{test}:{}:{}:{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

// === classifier ===

#[tokio::test]
async fn labels_map_to_verdicts_and_request_ids_are_forwarded() {
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let mut service = ServiceBuilder::new()
        .layer(ClassifierLayer::lazy(&endpoint).unwrap().timeout(HEALTHY))
        .service(FilterService::new(Engine::builtin()));

    let cases = [
        ("some nsfw pictures", Verdict::Block),    // PORN
        ("you absolute moron", Verdict::Block),    // ABUSIVE
        ("CLICK HERE for deals", Verdict::Review), // ADVERTISEMENT
        ("a quiet afternoon", Verdict::Pass),      // NORMAL
    ];
    for (text, verdict) in cases {
        let r = check(
            &mut service,
            FilterRequest::new(text).with_request_id("id-1"),
        )
        .await;
        assert_eq!(r.verdict, verdict, "{text}");
        assert!(!r.degraded);
        assert_eq!(r.request_id.as_deref(), Some("id-1"));
    }
    assert_eq!(rules.calls(), 4);
    let seen = rules.last_request().unwrap();
    assert_eq!(seen.request_id, "id-1");
    assert_eq!(seen.metadata_request_id.as_deref(), Some("id-1"));

    // the classifier only raises a verdict: a normal-level word stays review on a NORMAL reply
    let r = check(&mut service, FilterRequest::new("what a load of bullshit")).await;
    assert_eq!(r.verdict, Verdict::Review);
    assert_eq!(rules.calls(), 5);
    assert_eq!(rules.last_request().unwrap().metadata_request_id, None);

    // a text the word lists block is not sent
    let r = check(&mut service, FilterRequest::new("fuck that")).await;
    assert_eq!(r.verdict, Verdict::Block);
    assert!(!r.degraded);
    assert_eq!(rules.calls(), 5);
}

#[tokio::test]
async fn label_map_is_configurable() {
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let labels: LabelMap = [("advertisement", Verdict::Block), ("porn", Verdict::Review)]
        .into_iter()
        .collect();
    let mut service = ServiceBuilder::new()
        .layer(
            ClassifierLayer::lazy(&endpoint)
                .unwrap()
                .timeout(HEALTHY)
                .labels(labels.unknown(Verdict::Pass)),
        )
        .service(FilterService::new(Engine::builtin()));

    let r = check(&mut service, FilterRequest::new("buy now, pay later")).await;
    assert_eq!(r.verdict, Verdict::Block);
    let r = check(&mut service, FilterRequest::new("xxx")).await;
    assert_eq!(r.verdict, Verdict::Review);
    // ABUSIVE is not listed in this map: unknown → pass
    let r = check(&mut service, FilterRequest::new("loser")).await;
    assert_eq!(r.verdict, Verdict::Pass);
    assert!(!r.degraded);
}

#[tokio::test]
async fn slow_classifier_times_out_with_the_local_verdict_degraded() {
    let rules = RuleClassifier::default();
    rules.set_delay(Duration::from_secs(10));
    let endpoint = serve(&rules).await;
    let registry = Registry::new();
    let mut service = ServiceBuilder::new()
        .layer(
            ClassifierLayer::lazy(&endpoint)
                .unwrap()
                .timeout(TIMEOUT)
                .metrics(ClassifierMetrics::register(&registry).unwrap()),
        )
        .service(FilterService::new(Engine::builtin()));

    for _ in 0..3 {
        let started = Instant::now();
        let r = check(&mut service, FilterRequest::new("xxx and bullshit")).await;
        assert!(started.elapsed() >= TIMEOUT);
        assert_eq!(r.verdict, Verdict::Review); // the word lists' verdict only
        assert!(r.degraded);
    }
    assert_eq!(
        counter(
            &registry,
            "espresso_filter_classifier_requests_total",
            "outcome",
            "timeout"
        ),
        3
    );

    // and once it is fast again, answers are whole again
    rules.set_delay(Duration::ZERO);
    let r = check(&mut service, FilterRequest::new("xxx and bullshit")).await;
    assert_eq!(r.verdict, Verdict::Block);
    assert!(!r.degraded);
}

#[tokio::test]
async fn failing_classifier_opens_the_breaker_which_later_closes() {
    let rules = RuleClassifier::default();
    rules.set_failing(true);
    let endpoint = serve(&rules).await;
    let breaker = small_breaker("classifier", Duration::from_millis(200));
    let mut service = ServiceBuilder::new()
        .layer(
            ClassifierLayer::lazy(&endpoint)
                .unwrap()
                .timeout(HEALTHY)
                .breaker(breaker.clone()),
        )
        .service(FilterService::new(Engine::builtin()));

    // four failures: degraded answers, and the breaker opens
    for _ in 0..4 {
        let r = check(&mut service, FilterRequest::new("nsfw")).await;
        assert_eq!(r.verdict, Verdict::Pass);
        assert!(r.degraded);
    }
    assert_eq!(rules.calls(), 4);
    assert_eq!(breaker.state(), State::Open);

    // open: answers keep flowing, degraded, and the classifier is left alone
    for _ in 0..10 {
        let r = check(&mut service, FilterRequest::new("nsfw")).await;
        assert!(r.degraded);
    }
    assert_eq!(rules.calls(), 4);

    // the classifier recovers; after the wait a probe goes through and closes the breaker
    rules.set_failing(false);
    eventually("half-open", || breaker.state() == State::HalfOpen).await;
    let r = check(&mut service, FilterRequest::new("nsfw")).await;
    assert_eq!(r.verdict, Verdict::Block);
    assert!(!r.degraded);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(rules.calls(), 5);
}

#[tokio::test]
async fn calls_beyond_max_in_flight_are_shed_not_queued() {
    let rules = RuleClassifier::default();
    rules.set_delay(Duration::from_millis(400));
    let endpoint = serve(&rules).await;
    let registry = Registry::new();
    let service = ServiceBuilder::new()
        .layer(
            ClassifierLayer::lazy(&endpoint)
                .unwrap()
                .timeout(Duration::from_secs(5))
                .max_in_flight(2)
                .metrics(ClassifierMetrics::register(&registry).unwrap()),
        )
        .service(FilterService::new(Engine::builtin()));

    let requests = (0..6).map(|_| service.clone().oneshot(FilterRequest::new("porn")));
    let responses: Vec<_> = spawn_all(requests).await;
    let whole = responses.iter().filter(|r| !r.degraded).count();
    assert_eq!(whole, 2);
    for r in responses.iter().filter(|r| !r.degraded) {
        assert_eq!(r.verdict, Verdict::Block);
    }
    assert_eq!(rules.calls(), 2);
    assert_eq!(
        counter(
            &registry,
            "espresso_filter_classifier_requests_total",
            "outcome",
            "shed"
        ),
        4
    );
}

/// Runs the futures concurrently, each in a task; answers their outputs in order.
async fn spawn_all<F, T, E>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: std::fmt::Debug + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn classifier_down_degrades_and_is_used_once_it_comes_up() {
    let addr = closed_port().await;
    let layer = ClassifierLayer::lazy(&format!("http://{addr}"))
        .unwrap()
        .timeout(TIMEOUT);
    let mut service = ServiceBuilder::new()
        .layer(layer)
        .service(FilterService::new(Engine::builtin()));

    for _ in 0..3 {
        let r = check(&mut service, FilterRequest::new("xxx")).await;
        assert_eq!(r.verdict, Verdict::Pass);
        assert!(r.degraded);
    }

    // the same address comes up: the lazy channel connects on a later request
    let rules = RuleClassifier::default();
    let listener = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(rules.clone().serve(listener));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = check(&mut service, FilterRequest::new("xxx")).await;
        if !r.degraded {
            assert_eq!(r.verdict, Verdict::Block);
            break;
        }
        assert!(Instant::now() < deadline, "the classifier was never used");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The level and message of every event, captured on this thread.
#[derive(Clone, Default)]
struct Messages(Arc<std::sync::Mutex<Vec<(tracing::Level, String)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Messages {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let level = *event.metadata().level();
        self.0.lock().unwrap().push((level, message.0));
    }
}

impl Messages {
    fn count(&self, level: tracing::Level, start: &str) -> usize {
        let messages = self.0.lock().unwrap();
        messages
            .iter()
            .filter(|(l, m)| *l == level && m.starts_with(start))
            .count()
    }
}

#[tokio::test]
async fn a_failing_classifier_is_one_warn_an_outage_and_one_info_when_it_answers_again() {
    use tracing_subscriber::layer::SubscriberExt;
    let messages = Messages::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(messages.clone()));
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    // A breaker that stays closed: at low traffic it never opens, and its WARN never comes.
    let breaker = default_breaker("classifier")
        .minimum_number_of_calls(1000)
        .build()
        .unwrap();
    let mut service = ServiceBuilder::new()
        .layer(
            ClassifierLayer::lazy(&endpoint)
                .unwrap()
                .timeout(HEALTHY)
                .breaker(breaker),
        )
        .service(FilterService::new(Engine::builtin()));
    rules.set_failing(true);
    for _ in 0..5 {
        assert!(
            check(&mut service, FilterRequest::new("hello"))
                .await
                .degraded
        );
    }
    let failed = "classifier call failed, answering with the local verdict";
    assert_eq!(messages.count(tracing::Level::WARN, failed), 1);
    rules.set_failing(false);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    for _ in 0..3 {
        assert!(
            !check(&mut service, FilterRequest::new("hello"))
                .await
                .degraded
        );
    }
    let back = "classifier answers again";
    assert_eq!(messages.count(tracing::Level::INFO, back), 1);
}

#[tokio::test]
async fn texts_over_the_limit_are_not_sent_and_never_open_the_breaker() {
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let registry = Registry::new();
    let breaker = small_breaker("classifier", Duration::from_secs(60));
    let mut service = ServiceBuilder::new()
        .layer(
            ClassifierLayer::lazy(&endpoint)
                .unwrap()
                .timeout(HEALTHY)
                .breaker(breaker.clone())
                .max_text_bytes(16)
                .metrics(ClassifierMetrics::register(&registry).unwrap()),
        )
        .service(FilterService::new(Engine::builtin()));
    // One client's huge texts: not sent, the local verdict degraded, the breaker untouched.
    for _ in 0..10 {
        let r = check(
            &mut service,
            FilterRequest::new("a text of more than 16 bytes"),
        )
        .await;
        assert!(r.degraded);
    }
    assert_eq!(rules.calls(), 0);
    assert_eq!(breaker.state(), State::Closed);
    let name = "espresso_filter_classifier_requests_total";
    assert_eq!(counter(&registry, name, "outcome", "too_large"), 10);
    // Everyone else's texts are still classified.
    let r = check(&mut service, FilterRequest::new("nsfw pic")).await;
    assert_eq!((r.verdict, r.degraded), (Verdict::Block, false));
    assert_eq!(rules.calls(), 1);
}

#[tokio::test]
async fn invalid_endpoint_is_a_construction_error() {
    for (endpoint, why) in [
        ("not a uri at all", "not a URI"),
        // The texts would go out unencrypted.
        ("https://127.0.0.1:50051", "TLS is not supported"),
        // Every call would fail, said only at DEBUG.
        ("127.0.0.1:50051", "no scheme"),
        ("grpc://127.0.0.1:50051", "scheme \"grpc\""),
        ("http://127.0.0.1:50051/classify", "a path"),
    ] {
        let err = ClassifierLayer::lazy(endpoint).unwrap_err();
        assert!(
            matches!(err, ClassifierError::InvalidEndpoint { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(endpoint), "{err}");
        assert!(err.to_string().contains(why), "{endpoint}: {err}");
    }
    assert!(ClassifierLayer::lazy("http://127.0.0.1:50051/").is_ok());
    assert!(ClassifierLayer::lazy("http://localhost").is_ok());
}

// === cache ===

/// Cache(Classifier(FilterService)) over `engine`, with the cache metrics in `registry`.
fn stack(
    engine: &Engine,
    endpoint: &str,
    registry: &Registry,
    redis: Option<RedisCache>,
) -> Cache<Classifier<FilterService>> {
    let mut cache = CacheLayer::new(engine.clone())
        .max_entries(1_000)
        .ttl(Duration::from_secs(60))
        .metrics(CacheMetrics::register(registry).unwrap());
    if let Some(redis) = redis {
        cache = cache.redis(redis);
    }
    ServiceBuilder::new()
        .layer(cache)
        .layer(ClassifierLayer::lazy(endpoint).unwrap().timeout(HEALTHY))
        .service(FilterService::new(engine.clone()))
}

#[tokio::test]
async fn cache_hit_skips_the_classifier_and_keeps_the_request_id() {
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let registry = Registry::new();
    let engine = Engine::builtin();
    let mut service = stack(&engine, &endpoint, &registry, None);

    let first = check(
        &mut service,
        FilterRequest::new("free money!").with_request_id("a"),
    )
    .await;
    let second = check(
        &mut service,
        FilterRequest::new("free money!").with_request_id("b"),
    )
    .await;
    let third = check(&mut service, FilterRequest::new("free money!")).await;
    assert_eq!(first.verdict, Verdict::Review);
    assert_eq!(
        (second.verdict, second.masked.as_str(), second.hits.len()),
        (first.verdict, first.masked.as_str(), first.hits.len())
    );
    assert_eq!(second.request_id.as_deref(), Some("b"));
    assert_eq!(third.request_id, None);
    assert_eq!(rules.calls(), 1);
    assert_eq!(
        counter(
            &registry,
            "espresso_filter_cache_lookups_total",
            "result",
            "miss"
        ),
        1
    );
    assert_eq!(
        counter(
            &registry,
            "espresso_filter_cache_lookups_total",
            "result",
            "local_hit"
        ),
        2
    );

    // other content is another entry; the exact text is the key
    check(&mut service, FilterRequest::new("FREE money!")).await;
    assert_eq!(rules.calls(), 2);
}

#[tokio::test]
async fn concurrent_misses_for_one_text_ask_the_classifier_once() {
    let rules = RuleClassifier::default();
    rules.set_delay(Duration::from_millis(200));
    let endpoint = serve(&rules).await;
    let registry = Registry::new();
    let engine = Engine::builtin();
    let service = stack(&engine, &endpoint, &registry, None);

    let requests = (0..8).map(|i| {
        service
            .clone()
            .oneshot(FilterRequest::new("same spam: buy now").with_request_id(i.to_string()))
    });
    let responses = spawn_all(requests).await;
    for (i, r) in responses.iter().enumerate() {
        assert_eq!(r.verdict, Verdict::Review);
        assert!(!r.degraded);
        assert_eq!(r.request_id, Some(i.to_string()));
    }
    assert_eq!(rules.calls(), 1);
    let lookups = |result| {
        counter(
            &registry,
            "espresso_filter_cache_lookups_total",
            "result",
            result,
        )
    };
    assert_eq!(lookups("miss"), 1);
    assert_eq!(lookups("coalesced") + lookups("local_hit"), 7);
}

#[tokio::test]
async fn waiters_compute_on_their_own_when_the_leader_is_cancelled() {
    let rules = RuleClassifier::default();
    rules.set_delay(Duration::from_millis(300));
    let endpoint = serve(&rules).await;
    let registry = Registry::new();
    let engine = Engine::builtin();
    let service = stack(&engine, &endpoint, &registry, None);

    let leader = tokio::spawn(service.clone().oneshot(FilterRequest::new("xxx cancel")));
    let leader_abort = leader.abort_handle();
    // the leader is calling the classifier when the waiter arrives
    eventually("the leader's call", || rules.calls() == 1).await;
    // single-threaded runtime: one yield runs the waiter up to its wait on the leader
    let waiter = tokio::spawn(service.clone().oneshot(FilterRequest::new("xxx cancel")));
    tokio::task::yield_now().await;
    leader_abort.abort();
    let r = waiter.await.unwrap().unwrap();
    assert_eq!(r.verdict, Verdict::Block);
    assert!(!r.degraded);
    assert_eq!(rules.calls(), 2); // the waiter asked again
    assert!(leader_was_cancelled(leader).await);
}

async fn leader_was_cancelled<T>(leader: tokio::task::JoinHandle<T>) -> bool {
    matches!(leader.await, Err(e) if e.is_cancelled())
}

#[tokio::test]
async fn a_verdict_checked_across_reloads_is_not_kept_even_when_the_version_comes_back() {
    let engine = Engine::builtin();
    let spam = Sources::builtin().list(ListSource::inline("spam.txt", "spam\n", Level::Danger));
    let calls = Arc::new(AtomicU64::new(0));
    // An inner service during whose check the lists go to another set and back (A → B → A):
    // the check runs on B, and the version afterwards is A's again.
    let inner = {
        let (engine, calls) = (engine.clone(), calls.clone());
        tower::service_fn(move |request: FilterRequest| {
            let (engine, spam) = (engine.clone(), spam.clone());
            let call = calls.fetch_add(1, Ordering::Relaxed);
            async move {
                if call == 0 {
                    engine.reload(&spam).unwrap();
                }
                let response = engine.check(&request.content);
                if call == 0 {
                    engine.reload(&Sources::builtin()).unwrap();
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let service = CacheLayer::new(engine.clone()).layer(inner);
    let first = service
        .clone()
        .oneshot(FilterRequest::new("the spam king"))
        .await
        .unwrap();
    assert_eq!(first.verdict, Verdict::Block, "checked on B");
    // Under A again: B's verdict was not kept under A's version.
    let second = service
        .oneshot(FilterRequest::new("the spam king"))
        .await
        .unwrap();
    assert_eq!(second.verdict, Verdict::Pass);
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_ttl_past_the_caches_limit_is_taken_as_the_limit() {
    let engine = Engine::builtin();
    for ttl in [Duration::MAX, espresso_filter_stages::cache::MAX_TTL * 2] {
        let service = CacheLayer::new(engine.clone())
            .ttl(ttl)
            .layer(FilterService::new(engine.clone()));
        let r = service.oneshot(FilterRequest::new("fine")).await.unwrap();
        assert_eq!(r.verdict, Verdict::Pass);
    }
}

#[tokio::test]
async fn a_reload_invalidates_cached_verdicts() {
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let registry = Registry::new();
    let engine = Engine::builtin();
    let mut service = stack(&engine, &endpoint, &registry, None);

    let r = check(&mut service, FilterRequest::new("the spam king")).await;
    assert_eq!(r.verdict, Verdict::Pass);
    check(&mut service, FilterRequest::new("the spam king")).await;
    assert_eq!(rules.calls(), 1);

    engine
        .reload(&Sources::builtin().list(ListSource::inline("spam.txt", "spam\n", Level::Danger)))
        .unwrap();
    let r = check(&mut service, FilterRequest::new("the spam king")).await;
    assert_eq!(r.verdict, Verdict::Block);
    assert_eq!(r.masked, "the **** king");
    let invalidations: f64 = registry
        .gather()
        .iter()
        .filter(|f| f.name() == "espresso_filter_cache_invalidations_total")
        .map(|f| f.get_metric()[0].get_counter().get_value())
        .sum();
    assert_eq!(invalidations, 1.0);
    assert_eq!(
        counter(
            &registry,
            "espresso_filter_cache_lookups_total",
            "result",
            "miss"
        ),
        2
    );

    // back to the builtin lists: a new miss again, then hits
    engine.reload(&Sources::builtin()).unwrap();
    let r = check(&mut service, FilterRequest::new("the spam king")).await;
    assert_eq!(r.verdict, Verdict::Pass);
    check(&mut service, FilterRequest::new("the spam king")).await;
    assert_eq!(
        counter(
            &registry,
            "espresso_filter_cache_lookups_total",
            "result",
            "miss"
        ),
        3
    );
}

#[tokio::test]
async fn degraded_answers_are_not_cached() {
    let rules = RuleClassifier::default();
    rules.set_failing(true);
    let endpoint = serve(&rules).await;
    let registry = Registry::new();
    let engine = Engine::builtin();
    let mut service = stack(&engine, &endpoint, &registry, None);

    let r = check(&mut service, FilterRequest::new("porn")).await;
    assert!(r.degraded);
    assert_eq!(r.verdict, Verdict::Pass);
    rules.set_failing(false);
    let r = check(&mut service, FilterRequest::new("porn")).await;
    assert!(!r.degraded);
    assert_eq!(r.verdict, Verdict::Block);
    let r = check(&mut service, FilterRequest::new("porn")).await;
    assert_eq!(r.verdict, Verdict::Block);
    assert_eq!(rules.calls(), 2);
}

#[tokio::test]
async fn local_cache_is_bounded() {
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let engine = Engine::builtin();
    let layer = CacheLayer::new(engine.clone()).max_entries(10);
    let mut service = ServiceBuilder::new()
        .layer(layer.clone())
        .layer(ClassifierLayer::lazy(&endpoint).unwrap().timeout(HEALTHY))
        .service(FilterService::new(engine));
    for i in 0..100 {
        check(&mut service, FilterRequest::new(format!("text number {i}"))).await;
    }
    // moka evicts in its maintenance, which runs lazily; run it now
    layer.run_pending_tasks().await;
    assert!(layer.local_entries() <= 10, "{}", layer.local_entries());
    assert!(layer.local_entries() > 0);
}

#[tokio::test]
async fn local_cache_can_be_bounded_by_bytes() {
    let engine = Engine::builtin();
    let layer = CacheLayer::new(engine.clone()).max_bytes(64 * 1024);
    let mut service = layer.layer(FilterService::new(engine));
    // 100 texts of 4 KiB: about 400 KiB of entries for a 64 KiB bound
    for i in 0..100 {
        let text = format!("{i:04} {}", "x".repeat(4 * 1024));
        check(&mut service, FilterRequest::new(text)).await;
    }
    layer.run_pending_tasks().await;
    let entries = layer.local_entries();
    assert!((1..=16).contains(&entries), "{entries} entries");
}

// === composition ===

/// How the demo server wires the stages from configuration: each optional, breakers with
/// Prometheus metrics, every stage's metrics in one registry.
#[tokio::test]
async fn optional_stages_compose_from_configuration() {
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let engine = Engine::builtin();
    for (cache_on, classifier_on) in [(true, true), (true, false), (false, true), (false, false)] {
        let registry = Registry::new();
        let breaker_metrics =
            espresso_circuit_breaker::CircuitBreakerMetrics::register(&registry).unwrap();
        let cache = cache_on.then(|| {
            CacheLayer::new(engine.clone())
                .max_entries(100)
                .ttl(Duration::from_secs(60))
                .metrics(CacheMetrics::register(&registry).unwrap())
        });
        let classifier = classifier_on.then(|| {
            ClassifierLayer::lazy(&endpoint)
                .unwrap()
                .timeout(HEALTHY)
                .breaker(
                    default_breaker("classifier")
                        .metrics(breaker_metrics.clone())
                        .build()
                        .unwrap(),
                )
                .metrics(ClassifierMetrics::register(&registry).unwrap())
        });
        let mut service = ServiceBuilder::new()
            .option_layer(cache)
            .option_layer(classifier)
            .service(FilterService::new(engine.clone()));

        for _ in 0..2 {
            let r = check(&mut service, FilterRequest::new("xxx")).await;
            let expected = if classifier_on {
                Verdict::Block
            } else {
                Verdict::Pass
            };
            assert_eq!(r.verdict, expected);
            assert!(!r.degraded);
        }
        let classifier_calls = counter(
            &registry,
            "espresso_circuit_breaker_calls_total",
            "name",
            "classifier",
        );
        assert_eq!(
            classifier_calls,
            match (cache_on, classifier_on) {
                (_, false) => 0,
                (true, true) => 1,
                (false, true) => 2,
            }
        );
        let lookups: u64 = ["miss", "local_hit"]
            .iter()
            .map(|r| {
                counter(
                    &registry,
                    "espresso_filter_cache_lookups_total",
                    "result",
                    r,
                )
            })
            .sum();
        assert_eq!(lookups, if cache_on { 2 } else { 0 });
    }
}

// === Redis ===

/// A cache on `own` under `prefix`, with a timeout that a loaded machine meets.
fn redis_cache(own: &RedisServer, prefix: &str) -> RedisCache {
    RedisCache::open(&own.url())
        .unwrap()
        .prefix(prefix)
        .timeout(Duration::from_millis(500))
}

#[tokio::test]
async fn redis_shares_verdicts_across_instances() {
    let Some(own) = RedisServer::start() else {
        return;
    };
    let prefix = unique_prefix("share");
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let engine = Engine::builtin();
    let redis = || redis_cache(&own, &prefix);
    let (registry_a, registry_b) = (Registry::new(), Registry::new());
    let mut a = stack(&engine, &endpoint, &registry_a, Some(redis()));
    let mut b = stack(&engine, &endpoint, &registry_b, Some(redis()));

    let r = check(&mut a, FilterRequest::new("discount shoes")).await;
    assert_eq!(r.verdict, Verdict::Review);
    assert_eq!(rules.calls(), 1);
    // the write to Redis happens in the background
    let mut keys = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while keys.is_empty() {
        assert!(Instant::now() < deadline, "nothing written to Redis");
        keys = own.keys(&format!("{prefix}*"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with(&format!("{prefix}{:016x}:", engine.version())));

    // instance b: a Redis hit, no classifier call, then a local hit
    let r = check(
        &mut b,
        FilterRequest::new("discount shoes").with_request_id("b"),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Review);
    assert_eq!(r.request_id.as_deref(), Some("b"));
    assert!(!r.degraded);
    check(&mut b, FilterRequest::new("discount shoes")).await;
    assert_eq!(rules.calls(), 1);
    assert_eq!(
        counter(
            &registry_b,
            "espresso_filter_cache_lookups_total",
            "result",
            "redis_hit"
        ),
        1
    );
    assert_eq!(
        counter(
            &registry_b,
            "espresso_filter_cache_lookups_total",
            "result",
            "local_hit"
        ),
        1
    );
}

#[tokio::test]
async fn redis_entries_the_stage_could_not_have_stored_are_ignored() {
    let Some(own) = RedisServer::start() else {
        return;
    };
    let prefix = unique_prefix("foreign");
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let engine = Engine::builtin();
    let redis = || redis_cache(&own, &prefix);
    let text = "你是傻逼";
    let mut a = stack(&engine, &endpoint, &Registry::new(), Some(redis()));
    assert_eq!(
        check(&mut a, FilterRequest::new(text)).await.verdict,
        Verdict::Block
    );
    let stored = || own.keys(&format!("{prefix}*")).pop();
    eventually("the answer stored in Redis", || stored().is_some()).await;
    let key = stored().unwrap();
    let good: String = own.query(&["GET", &key]);
    // values of another writer under the key: each is ignored, and the stack below answers
    for foreign in [
        r#"{"verdict":"pass","masked":"你是傻逼","hits":[],"degraded":true}"#,
        r#"{"verdict":"pass","masked":"你是傻逼","hits":[{"word":"傻逼","level":"danger","category":"abuse","start":6,"end":12}],"degraded":false}"#,
        r#"{"verdict":"block","masked":"你是傻逼","hits":[{"word":"傻逼","level":"danger","category":"abuse","start":7,"end":12}],"degraded":false}"#,
    ] {
        let () = own.query(&["SET", &key, foreign, "PX", "60000"]);
        let registry = Registry::new();
        let mut b = stack(&engine, &endpoint, &registry, Some(redis()));
        let r = check(&mut b, FilterRequest::new(text)).await;
        assert_eq!(
            (r.verdict, r.degraded),
            (Verdict::Block, false),
            "{foreign}"
        );
        assert_eq!((r.hits[0].start, r.hits[0].end), (6, 12), "{foreign}");
        let errors = "espresso_filter_cache_redis_errors_total";
        assert_eq!(counter(&registry, errors, "kind", "decode"), 1, "{foreign}");
        // its own answer replaces the foreign one
        eventually("the answer stored again", || {
            own.query::<String>(&["GET", &key]) == good
        })
        .await;
    }

    // a Redis hit lives in process only as long as it had left in Redis, not a whole TTL
    let () = own.query(&["PEXPIRE", &key, "300"]);
    let registry = Registry::new();
    let mut c = stack(&engine, &endpoint, &registry, Some(redis()));
    check(&mut c, FilterRequest::new(text)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    check(&mut c, FilterRequest::new(text)).await;
    let lookups = |result| {
        counter(
            &registry,
            "espresso_filter_cache_lookups_total",
            "result",
            result,
        )
    };
    assert_eq!(
        (lookups("redis_hit"), lookups("local_hit"), lookups("miss")),
        (1, 0, 1)
    );
}

#[tokio::test]
async fn redis_down_from_the_start_is_local_only_and_not_degraded() {
    let addr = closed_port().await;
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let registry = Registry::new();
    let engine = Engine::builtin();
    let redis = RedisCache::open(&format!("redis://{addr}"))
        .unwrap()
        .timeout(TIMEOUT)
        .breaker(small_breaker("redis", Duration::from_secs(60)));
    let breaker = redis.circuit_breaker().clone();
    let mut service = stack(&engine, &endpoint, &registry, Some(redis));

    for i in 0..20 {
        let r = check(&mut service, FilterRequest::new(format!("xxx {}", i % 5))).await;
        assert_eq!(r.verdict, Verdict::Block);
        assert!(!r.degraded);
    }
    assert_eq!(rules.calls(), 5); // the local level still caches
    assert_eq!(breaker.state(), State::Open);
    assert!(
        counter(
            &registry,
            "espresso_filter_cache_redis_errors_total",
            "kind",
            "open"
        ) > 0
    );
}

#[tokio::test]
async fn redis_killed_mid_test_fails_no_request() {
    let Some(mut own) = RedisServer::start() else {
        return;
    };
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let registry = Registry::new();
    let engine = Engine::builtin();
    let prefix = unique_prefix("kill");
    let url = own.url();
    let redis = || {
        RedisCache::open(&url)
            .unwrap()
            .prefix(prefix.clone())
            .timeout(TIMEOUT)
            .breaker(small_breaker("redis", Duration::from_secs(60)))
    };
    let first = redis();
    let breaker = first.circuit_breaker().clone();
    let service = stack(&engine, &endpoint, &registry, Some(first));

    // many requests in flight from several tasks while Redis dies under them
    let texts = [
        "a",
        "b idiot",
        "c xxx",
        "d discount",
        "e fuck",
        "f bullshit",
    ];
    let mut tasks = Vec::new();
    for task in 0..4 {
        let mut service = service.clone();
        tasks.push(tokio::spawn(async move {
            let mut answered = 0;
            for i in 0..60 {
                let text = texts[(i + task) % texts.len()];
                let r = check(
                    &mut service,
                    FilterRequest::new(format!("{text} {}", i % 10)),
                )
                .await;
                assert!(!r.degraded, "a Redis outage is not degradation");
                answered += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            answered
        }));
    }
    tokio::time::sleep(Duration::from_millis(40)).await;
    own.kill();
    let mut answered = 0;
    for task in tasks {
        answered += task.await.unwrap();
    }
    assert_eq!(answered, 240);

    // after the outage, a second instance on the dead Redis still answers everything
    let mut other = stack(&engine, &endpoint, &Registry::new(), Some(redis()));
    for text in texts {
        let r = check(&mut other, FilterRequest::new(text)).await;
        assert!(!r.degraded);
    }
    // the outage was seen and the first instance's breaker opened
    eventually("the Redis breaker to open", || {
        breaker.state() == State::Open
    })
    .await;
    let errors: u64 = ["timeout", "error", "open"]
        .iter()
        .map(|kind| {
            counter(
                &registry,
                "espresso_filter_cache_redis_errors_total",
                "kind",
                kind,
            )
        })
        .sum();
    assert!(errors > 0);
}

// === Redis Cluster and Sentinel ===

#[tokio::test]
async fn a_cluster_shares_verdicts_across_instances() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let prefix = unique_prefix("cluster");
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let engine = Engine::builtin();
    let redis = || {
        RedisCache::target(RedisTarget::cluster(cluster.urls()))
            .unwrap()
            .prefix(prefix.clone())
            .timeout(Duration::from_millis(500))
    };
    let (registry_a, registry_b) = (Registry::new(), Registry::new());
    let mut a = stack(&engine, &endpoint, &registry_a, Some(redis()));
    let mut b = stack(&engine, &endpoint, &registry_b, Some(redis()));
    let texts = [
        "discount shoes",
        "cheap discount",
        "a discount",
        "discount!",
    ];
    for text in texts {
        check(&mut a, FilterRequest::new(text)).await;
    }
    // The writes run in the background; the keys spread over the masters' slots.
    let written = |b: &RedisCluster| -> usize {
        b.nodes()
            .iter()
            .map(|n| n.keys(&format!("{prefix}*")).len())
            .sum()
    };
    eventually(
        "four verdicts in the cluster (masters and replicas)",
        || written(&cluster) == 8,
    )
    .await;
    for text in texts {
        assert_eq!(
            check(&mut b, FilterRequest::new(text)).await.verdict,
            Verdict::Review
        );
    }
    assert_eq!(
        rules.calls(),
        4,
        "instance b found every verdict in the cluster"
    );
    assert_eq!(
        counter(
            &registry_b,
            "espresso_filter_cache_lookups_total",
            "result",
            "redis_hit"
        ),
        4
    );
}

#[tokio::test]
async fn a_sentinel_failover_fails_no_request_and_the_cache_follows_the_new_master() {
    let Some(mut sentinel) = RedisSentinel::start() else {
        return;
    };
    let prefix = unique_prefix("sentinel");
    let rules = RuleClassifier::default();
    let endpoint = serve(&rules).await;
    let registry = Registry::new();
    let engine = Engine::builtin();
    let redis = RedisCache::target(RedisTarget::sentinel(
        [sentinel.sentinel_url()],
        RedisSentinel::MASTER,
    ))
    .unwrap()
    .prefix(prefix.clone())
    .timeout(TIMEOUT)
    .breaker(small_breaker("redis", Duration::from_millis(200)));
    let mut service = stack(&engine, &endpoint, &registry, Some(redis));
    check(&mut service, FilterRequest::new("before")).await;
    eventually("the first verdict on the master", || {
        !sentinel.master().keys(&format!("{prefix}*")).is_empty()
    })
    .await;

    sentinel.kill_master();
    for i in 0..10 {
        let r = check(&mut service, FilterRequest::new(format!("during {i}"))).await;
        assert!(!r.degraded, "a failover is not degradation");
    }
    sentinel.wait_for_failover();
    // New verdicts reach the promoted replica (which has the first one, replicated) once the
    // breaker lets a call through.
    let mut i = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while sentinel.replica().keys(&format!("{prefix}*")).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "nothing written to the new master"
        );
        i += 1;
        let r = check(&mut service, FilterRequest::new(format!("after {i}"))).await;
        assert!(!r.degraded);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_cache_keeps_answers_for_different_lists_apart() {
    use espresso_filter_core::{Level, ListSource, Options, Sources, Verdict};
    let sources = Sources::new()
        .list(ListSource::inline("base.txt", "idiot\n", Level::Danger))
        .list(ListSource::inline("game.txt", "gank\n", Level::Normal).by_default(false));
    let engine = Engine::load(&sources, Options::default()).unwrap();
    let layer = CacheLayer::new(engine.clone());
    let mut service = layer.layer(FilterService::new(engine));
    let text = "gank";
    let plain = check(&mut service, FilterRequest::new(text)).await;
    let named = check(&mut service, FilterRequest::new(text).with_lists(["game"])).await;
    let none = check(
        &mut service,
        FilterRequest::new(text).with_lists(Vec::<String>::new()),
    )
    .await;
    assert_eq!(plain.verdict, Verdict::Pass);
    assert_eq!(named.verdict, Verdict::Review);
    assert_eq!(none.verdict, Verdict::Pass);
    // asked again, each answer comes from its own entry
    let named = check(&mut service, FilterRequest::new(text).with_lists(["game"])).await;
    assert_eq!(named.verdict, Verdict::Review);
}
