//! The layer end to end, on tokio's paused clock.
//!
//! Every test runs with `start_paused = true`: time only moves when a test calls
//! `tokio::time::advance`, so "burst, then one request every 100 ms" is checked exactly, with
//! no sleeps and no flakiness. The limiter reads `tokio::time::Instant`, which is what makes
//! this possible.

use espresso_common::{BoxError, RejectBody};
use espresso_rate_limit::{
    ConfigKey, Global, Header, HeaderMode, KeyNotFound, MemoryBackend, MissingKey, PeerIp, Quota,
    Quotas, RateLimit, RateLimitLayer, RateLimitMetrics, RateLimited, clock::TokioClock,
};
use http::{HeaderName, Request, Response, StatusCode, request::Parts};
use http_body_util::BodyExt;
use std::{convert::Infallible, net::SocketAddr, time::Duration};
use tower::{Layer, Service, ServiceExt, service_fn};

type Body = http_body_util::Full<bytes::Bytes>;

type Ok = std::future::Ready<Result<Response<Body>, Infallible>>;
type Inner = tower::util::ServiceFn<fn(Request<()>) -> Ok>;

fn ok(_: Request<()>) -> Ok {
    std::future::ready(Ok(Response::new(Body::from("ok"))))
}

fn svc<K: espresso_rate_limit::KeyExtractor>(layer: &RateLimitLayer<K>) -> RateLimit<Inner, K> {
    layer.layer(service_fn(ok as fn(Request<()>) -> Ok))
}

async fn send<S>(s: &mut S, request: Request<()>) -> Response<RejectBody<Body>>
where
    S: Service<Request<()>, Response = Response<RejectBody<Body>>, Error = Infallible>,
{
    s.ready().await.unwrap().call(request).await.unwrap()
}

async fn status<S>(s: &mut S) -> StatusCode
where
    S: Service<Request<()>, Response = Response<RejectBody<Body>>, Error = Infallible>,
{
    send(s, Request::new(())).await.status()
}

fn from(header: &str, value: &str) -> Request<()> {
    Request::builder().header(header, value).body(()).unwrap()
}

fn from_peer(peer: &str, xff: Option<&str>) -> Request<()> {
    let mut b = Request::builder();
    if let Some(xff) = xff {
        b = b.header("x-forwarded-for", xff);
    }
    let mut r = b.body(()).unwrap();
    r.extensions_mut()
        .insert(peer.parse::<SocketAddr>().unwrap());
    r
}

#[tokio::test(start_paused = true)]
async fn burst_then_steady_rate() {
    let layer = RateLimitLayer::new(Quota::per_second(10).burst(5)).key(Global::new());
    let mut s = svc(&layer);
    for _ in 0..5 {
        assert_eq!(status(&mut s).await, StatusCode::OK);
    }
    assert_eq!(status(&mut s).await, StatusCode::TOO_MANY_REQUESTS);
    // Then exactly one request per 100 ms.
    for _ in 0..20 {
        tokio::time::advance(Duration::from_millis(99)).await;
        assert_eq!(status(&mut s).await, StatusCode::TOO_MANY_REQUESTS);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(status(&mut s).await, StatusCode::OK);
        assert_eq!(status(&mut s).await, StatusCode::TOO_MANY_REQUESTS);
    }
    // After 500 ms of silence the full burst is back, and no more.
    tokio::time::advance(Duration::from_secs(5)).await;
    for _ in 0..5 {
        assert_eq!(status(&mut s).await, StatusCode::OK);
    }
    assert_eq!(status(&mut s).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(start_paused = true)]
async fn retry_after_counts_down_in_whole_seconds() {
    let layer = RateLimitLayer::new(Quota::per_minute(1)).key(Global::new());
    let mut s = svc(&layer);
    assert_eq!(status(&mut s).await, StatusCode::OK);
    let r = send(&mut s, Request::new(())).await;
    assert_eq!(r.headers()["retry-after"], "60");
    tokio::time::advance(Duration::from_millis(30_500)).await;
    let r = send(&mut s, Request::new(())).await;
    assert_eq!(r.headers()["retry-after"], "30"); // 29.5 s, rounded up
    tokio::time::advance(Duration::from_millis(29_500)).await;
    assert_eq!(status(&mut s).await, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn refusals_carry_json_and_ietf_headers() {
    let layer = RateLimitLayer::new(Quota::per_second(100))
        .key(Global::new())
        .headers(HeaderMode::Always);
    let mut s = svc(&layer);
    let first = send(&mut s, Request::new(())).await;
    assert_eq!(first.headers()["ratelimit-policy"], "\"default\";q=100;w=1");
    assert_eq!(first.headers()["ratelimit"], "\"default\";r=99;t=1");
    for _ in 0..99 {
        assert_eq!(status(&mut s).await, StatusCode::OK);
    }
    let refused = send(&mut s, Request::new(())).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["ratelimit"], "\"default\";r=0;t=1");
    assert_eq!(
        refused.headers()["ratelimit-policy"],
        "\"default\";q=100;w=1"
    );
    assert_eq!(refused.headers()["content-type"], "application/json");
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "rate_limited");
    assert_eq!(json["error"]["message"], "too many requests");
}

#[tokio::test(start_paused = true)]
async fn headers_only_on_refusals_by_default_and_never_when_asked() {
    let mut s = svc(&RateLimitLayer::new(Quota::per_second(1)).key(Global::new()));
    let ok = send(&mut s, Request::new(())).await;
    assert!(ok.headers().get("ratelimit").is_none());
    let refused = send(&mut s, Request::new(())).await;
    assert!(refused.headers().get("ratelimit").is_some());

    let mut s = svc(&RateLimitLayer::new(Quota::per_second(1))
        .key(Global::new())
        .headers(HeaderMode::Never));
    send(&mut s, Request::new(())).await;
    let refused = send(&mut s, Request::new(())).await;
    assert!(refused.headers().get("ratelimit").is_none());
    assert_eq!(refused.headers()["retry-after"], "1");
}

#[tokio::test(start_paused = true)]
async fn several_quotas_report_the_tightest() {
    let layer = RateLimitLayer::new([
        Quota::per_second(10).named("burst"),
        Quota::per_minute(12).burst(12).named("minute"),
    ])
    .key(Global::new())
    .headers(HeaderMode::Always);
    let mut s = svc(&layer);
    let r = send(&mut s, Request::new(())).await;
    assert_eq!(
        r.headers()["ratelimit-policy"],
        "\"burst\";q=10;w=1, \"minute\";q=12;w=60"
    );
    assert_eq!(r.headers()["ratelimit"], "\"burst\";r=9;t=1");
    for _ in 0..9 {
        send(&mut s, Request::new(())).await;
    }
    tokio::time::advance(Duration::from_secs(1)).await;
    // 10 spent of the minute's 12: the minute quota is now the tighter one.
    let r = send(&mut s, Request::new(())).await;
    assert_eq!(r.headers()["ratelimit"], "\"minute\";r=1;t=54");
    assert_eq!(status(&mut s).await, StatusCode::OK);
    let r = send(&mut s, Request::new(())).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"minute\";r=0")
    );
}

#[tokio::test(start_paused = true)]
async fn keys_are_isolated() {
    let layer = RateLimitLayer::new(Quota::per_second(1))
        .key(Header::new(HeaderName::from_static("x-user")));
    let mut s = svc(&layer);
    assert_eq!(
        send(&mut s, from("x-user", "alice")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&mut s, from("x-user", "alice")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&mut s, from("x-user", "bob")).await.status(),
        StatusCode::OK
    );
    // Clones of the service share the limiter.
    let mut clone = s.clone();
    assert_eq!(
        send(&mut clone, from("x-user", "bob")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// A log sink for one test: every line the limiter logs while `_guard` lives.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_without_a_key_is_refused_loudly_counted_and_logged_once() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let registry = prometheus::Registry::new();
    let layer = RateLimitLayer::new(Quota::per_second(100))
        .name("api")
        .metrics(RateLimitMetrics::register(&registry).unwrap());
    // Two services of one layer, as axum makes per route: one WARN line between them.
    let (mut first, mut second) = (svc(&layer), svc(&layer));
    for which in [1, 2, 1] {
        let s = if which == 1 { &mut first } else { &mut second };
        // No peer address: what `axum::serve(listener, app)` without connect info gives.
        let response = send(s, Request::new(())).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_key_missing");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("no peer address"), "{message}");
        assert!(
            message.contains("into_make_service_with_connect_info"),
            "{message}"
        );
    }
    // A request with a key is limited as usual.
    let response = send(&mut first, from_peer("192.0.2.1:5000", None)).await;
    assert_eq!(response.status(), StatusCode::OK);

    let text = logs.text();
    assert_eq!(text.matches("WARN").count(), 1, "{text}");
    assert!(text.contains("limiter=api"), "{text}");
    assert!(text.contains("MissingKey::SharedBucket"), "{text}");
    let metrics = gather(&registry);
    for line in [
        r#"espresso_rate_limit_missing_key_total{action="refused",limiter="api"} 3"#,
        r#"espresso_rate_limit_missing_key_total{action="shared_bucket",limiter="api"} 0"#,
        r#"espresso_rate_limit_requests_total{decision="allowed",limiter="api"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_header_key_names_the_missing_header_and_return_error_gives_key_not_found() {
    let header = Header::new(HeaderName::from_static("x-user"));
    let response = send(
        &mut svc(&RateLimitLayer::new(Quota::per_second(1)).key(header.clone())),
        Request::new(()),
    )
    .await;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        body.contains("the request has no `x-user` header"),
        "{body}"
    );

    let mut s = RateLimitLayer::new(Quota::per_second(1))
        .key(header)
        .name("users")
        .return_error()
        .layer(service_fn(ok as fn(Request<()>) -> Ok));
    let error: BoxError = s
        .ready()
        .await
        .unwrap()
        .call(Request::new(()))
        .await
        .unwrap_err();
    let error = error.downcast_ref::<KeyNotFound>().expect("a KeyNotFound");
    assert_eq!(error.limiter(), "users");
    assert!(error.cause().contains("x-user"));
}

#[tokio::test(start_paused = true)]
async fn keyless_requests_share_a_bucket_or_pass_only_when_asked() {
    let header = || Header::new(HeaderName::from_static("x-user"));
    let registry = prometheus::Registry::new();
    let metrics = RateLimitMetrics::register(&registry).unwrap();
    let mut shared = svc(&RateLimitLayer::new(Quota::per_second(1))
        .key(header())
        .name("shared")
        .metrics(metrics.clone())
        .on_missing_key(MissingKey::SharedBucket));
    assert_eq!(status(&mut shared).await, StatusCode::OK);
    assert_eq!(status(&mut shared).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        send(&mut shared, from("x-user", "a")).await.status(),
        StatusCode::OK
    );

    let mut pass = svc(&RateLimitLayer::new(Quota::per_second(1))
        .key(header())
        .name("pass")
        .metrics(metrics)
        .on_missing_key(MissingKey::Allow));
    for _ in 0..10 {
        assert_eq!(status(&mut pass).await, StatusCode::OK);
    }
    let text = gather(&registry);
    for line in [
        r#"espresso_rate_limit_missing_key_total{action="shared_bucket",limiter="shared"} 2"#,
        r#"espresso_rate_limit_missing_key_total{action="allowed",limiter="pass"} 10"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[test]
fn a_named_quota_that_changes_place_is_warned_of() {
    // Keys keep their history by place: `slow` moved to the front would go on from `fast`'s.
    let logs = Logs::default();
    let _guard = logs.capture();
    let layer = RateLimitLayer::new([
        Quota::per_second(100).named("fast"),
        Quota::per_minute(5).named("slow"),
    ]);
    let handle = layer.quota_handle();
    // the same places, or one more at the end: nothing to say
    handle.set([
        Quota::per_second(50).named("fast"),
        Quota::per_minute(5).named("slow"),
        Quota::per_hour(100).named("hourly"),
    ]);
    assert_eq!(logs.text(), "");
    handle.set(Quota::per_minute(5).named("slow"));
    let text = logs.text();
    assert!(
        text.contains("WARN") && text.contains("quota=\"slow\" from=1 to=0"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[tokio::test(start_paused = true)]
async fn per_key_overrides_by_map_and_closure() {
    let vip_quota: Quotas = Quota::per_second(3).into();
    let layer = RateLimitLayer::new(Quota::per_second(1)).key(|p: &Parts| {
        p.headers
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let quotas = layer.quota_handle();
    quotas.set_override("banned".to_owned(), Quota::per_second(0));
    quotas.set_resolver(move |user: &String| user.starts_with("vip-").then(|| vip_quota.clone()));
    let s = svc(&layer);
    let mut direct = s.clone();
    let count_ok = |user: &'static str| {
        let mut s = s.clone();
        async move {
            let mut n = 0;
            for _ in 0..10 {
                if send(&mut s, from("x-user", user)).await.status() == StatusCode::OK {
                    n += 1;
                }
            }
            n
        }
    };
    assert_eq!(count_ok("plain").await, 1);
    assert_eq!(count_ok("vip-anna").await, 3);
    assert_eq!(count_ok("banned").await, 0);
    let r = send(&mut direct, from("x-user", "banned")).await;
    assert_eq!(r.headers()["retry-after"], "1");
    // The map wins over the closure.
    layer
        .quota_handle()
        .set_override("vip-bert".to_owned(), Quota::per_second(2));
    assert_eq!(count_ok("vip-bert").await, 2);
}

#[tokio::test(start_paused = true)]
async fn builder_methods_never_change_a_clone_nor_orphan_a_quota_handle() {
    let base = RateLimitLayer::new(Quota::per_second(1)).key(Global::new());
    let quotas = base.quota_handle();
    let limiter = base.limiter();
    // Setters on a clone leave `base` as it was: still refusing, not in shadow mode.
    let shadow = base.clone().shadow(true).headers(HeaderMode::Always);
    let mut plain = svc(&base);
    let mut shadowed = svc(&shadow);
    assert_eq!(status(&mut plain).await, StatusCode::OK);
    assert_eq!(status(&mut plain).await, StatusCode::TOO_MANY_REQUESTS);
    // Policy setters keep the buckets: the shadow layer sees the same spent key.
    assert_eq!(status(&mut shadowed).await, StatusCode::OK);
    assert!(!limiter.check(&()).await.is_allowed());

    // Naming a layer gives it buckets of its own, while the handle taken before still rules it.
    let named = base.clone().name("other");
    let mut other = svc(&named);
    assert_eq!(status(&mut other).await, StatusCode::OK);
    assert_eq!(status(&mut other).await, StatusCode::TOO_MANY_REQUESTS);
    quotas.set(Quota::per_second(1).burst(3));
    assert_eq!(
        named.quota_handle().quotas(),
        Quota::per_second(1).burst(3).into()
    );
    assert_eq!(status(&mut other).await, StatusCode::OK);
    assert_eq!(status(&mut plain).await, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn quotas_change_at_runtime_and_keep_state() {
    let layer = RateLimitLayer::new(Quota::per_second(10)).key(Global::new());
    let handle = layer.quota_handle();
    let mut s = svc(&layer);
    for _ in 0..10 {
        assert_eq!(status(&mut s).await, StatusCode::OK);
    }
    assert_eq!(status(&mut s).await, StatusCode::TOO_MANY_REQUESTS);
    // A bigger burst: the 10 already spent still count, 10 more fit now.
    handle.set(Quota::per_second(10).burst(20));
    for _ in 0..10 {
        assert_eq!(status(&mut s).await, StatusCode::OK);
    }
    assert_eq!(status(&mut s).await, StatusCode::TOO_MANY_REQUESTS);
    // A slower rate applies to the existing backlog, which ends 2 s from now: under 1/s with
    // a burst of 1, the next request fits exactly then.
    handle.set(Quota::per_second(1));
    tokio::time::advance(Duration::from_millis(1500)).await;
    assert_eq!(status(&mut s).await, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(status(&mut s).await, StatusCode::OK);
    assert_eq!(status(&mut s).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_random_keys_stays_bounded() {
    let layer = RateLimitLayer::new(Quota::per_minute(10))
        .key(|p: &Parts| p.headers.get("x-id").cloned())
        .backend(MemoryBackend::new().max_keys(1024).shards(16));
    let limiter = layer.limiter();
    let mut s = svc(&layer);
    for i in 0..20_000u32 {
        let r = send(
            &mut s,
            from("x-id", &format!("{:08x}", i.wrapping_mul(2_654_435_761))),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert!(limiter.tracked_keys() <= 1024, "{}", limiter.tracked_keys());
    assert_eq!(limiter.max_tracked_keys(), 1024);
    // Idle keys disappear by themselves once replenished: each shard's inline sweep also
    // sweeps another shard in turn, so traffic on any key drains them all.
    tokio::time::advance(Duration::from_secs(60)).await;
    for _ in 0..17 * 1024 {
        limiter.check(&http::HeaderValue::from_static("one")).await;
    }
    assert!(limiter.tracked_keys() < 100, "{}", limiter.tracked_keys());
}

#[tokio::test(start_paused = true)]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let layer = RateLimitLayer::new(Quota::per_second(1))
        .key(PeerIp::new().trust("10.0.0.0/8".parse().unwrap()));
    let mut s = svc(&layer);
    // A direct client rotating X-Forwarded-For still has one bucket.
    assert_eq!(
        send(&mut s, from_peer("203.0.113.1:1000", Some("1.1.1.1")))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&mut s, from_peer("203.0.113.1:1001", Some("2.2.2.2")))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Through the trusted proxy, clients are told apart by the header.
    assert_eq!(
        send(&mut s, from_peer("10.0.0.1:80", Some("198.51.100.1")))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(
            &mut s,
            from_peer("10.0.0.1:80", Some("198.51.100.2, 10.0.0.2"))
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&mut s, from_peer("10.0.0.1:80", Some("198.51.100.2")))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A spoofed address behind the proxy names the client's real address, not the spoof.
    assert_eq!(
        send(
            &mut s,
            from_peer("10.0.0.1:80", Some("9.9.9.9, 198.51.100.2"))
        )
        .await
        .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(start_paused = true)]
async fn config_key_strings_build_the_server_layer() {
    let layer = RateLimitLayer::new(Quota::per_second(1000).burst(2))
        .key("ip".parse::<ConfigKey>().unwrap());
    let mut s = svc(&layer);
    for expected in [
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        assert_eq!(
            send(&mut s, from_peer("192.0.2.1:1", None)).await.status(),
            expected
        );
    }
    assert_eq!(
        send(&mut s, from_peer("192.0.2.2:1", None)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn grpc_requests_get_resource_exhausted() {
    let mut s = svc(&RateLimitLayer::new(Quota::per_second(1)).key(Global::new()));
    let grpc = || {
        Request::builder()
            .header("content-type", "application/grpc")
            .body(())
            .unwrap()
    };
    assert_eq!(
        send(&mut s, grpc()).await.headers().get("grpc-status"),
        None
    );
    let r = send(&mut s, grpc()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["grpc-status"], "8");
    assert_eq!(r.headers()["grpc-message"], "too many requests");
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r.headers().get("ratelimit").is_some());
}

#[tokio::test(start_paused = true)]
async fn shadow_mode_counts_but_passes() {
    let registry = prometheus::Registry::new();
    let metrics = RateLimitMetrics::register(&registry).unwrap();
    let layer = RateLimitLayer::new(Quota::per_second(2))
        .key(Global::new())
        .name("shadowed")
        .metrics(metrics.clone())
        .shadow(true);
    let mut s = svc(&layer);
    for _ in 0..5 {
        assert_eq!(status(&mut s).await, StatusCode::OK);
    }
    let text = gather(&registry);
    assert!(
        text.contains(
            r#"espresso_rate_limit_requests_total{decision="allowed",limiter="shadowed"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"espresso_rate_limit_requests_total{decision="shadow_limited",limiter="shadowed"} 3"#
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn shadow_mode_never_holds_requests() {
    let s = svc(&RateLimitLayer::new(Quota::per_second(1))
        .key(Global::new())
        .wait_up_to(Duration::from_secs(10))
        .shadow(true));
    let start = tokio::time::Instant::now();
    for _ in 0..3 {
        let mut s = s.clone();
        assert_eq!(status(&mut s).await, StatusCode::OK);
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
}

fn gather(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test(start_paused = true)]
async fn metrics_count_decisions_and_evictions_per_limiter() {
    let registry = prometheus::Registry::new();
    let metrics = RateLimitMetrics::register(&registry).unwrap();
    let a = RateLimitLayer::new(Quota::per_second(1))
        .key(Global::new())
        .name("a")
        .metrics(metrics.clone());
    let b = RateLimitLayer::new(Quota::per_second(1))
        .key(|p: &Parts| p.headers.get("x-id").cloned())
        .backend(MemoryBackend::new().max_keys(8).shards(1))
        .name("b")
        .metrics(metrics.clone());
    let mut sa = svc(&a);
    status(&mut sa).await;
    status(&mut sa).await;
    let mut sb = svc(&b);
    for i in 0..9 {
        send(&mut sb, from("x-id", &i.to_string())).await;
    }
    let text = gather(&registry);
    for line in [
        r#"espresso_rate_limit_requests_total{decision="allowed",limiter="a"} 1"#,
        r#"espresso_rate_limit_requests_total{decision="limited",limiter="a"} 1"#,
        r#"espresso_rate_limit_requests_total{decision="allowed",limiter="b"} 9"#,
        r#"espresso_rate_limit_evicted_keys_total{limiter="b",reason="capacity"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[test]
fn a_mounted_layer_exports_its_series_at_0_under_its_final_name_only() {
    let registry = prometheus::Registry::new();
    let layer = RateLimitLayer::new(Quota::per_second(1))
        .metrics(RateLimitMetrics::register(&registry).unwrap())
        .name("api");
    assert!(!gather(&registry).contains("espresso_rate_limit"));
    let _service = svc(&layer);
    let text = gather(&registry);
    for decision in ["allowed", "delayed", "limited", "shadow_limited"] {
        let line = format!(
            r#"espresso_rate_limit_requests_total{{decision="{decision}",limiter="api"}} 0"#
        );
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
    assert!(text.contains(r#"espresso_rate_limit_backend_local{limiter="api"} 0"#));
    assert!(!text.contains(r#"limiter="default""#), "{text}");
}

#[tokio::test(start_paused = true)]
async fn return_error_fails_with_rate_limited() {
    let layer = RateLimitLayer::new(Quota::per_second(2).burst(1))
        .key(Global::new())
        .return_error();
    let mut s = layer.layer(service_fn(ok as fn(Request<()>) -> Ok));
    let r = s
        .ready()
        .await
        .unwrap()
        .call(Request::new(()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let err: BoxError = s
        .ready()
        .await
        .unwrap()
        .call(Request::new(()))
        .await
        .unwrap_err();
    let limited = err.downcast_ref::<RateLimited>().unwrap();
    assert_eq!(limited.retry_after(), Duration::from_millis(500));
    assert_eq!(limited.limiter(), "default");
    assert_eq!(limited.headers()["ratelimit"], "\"default\";r=0;t=1");
    assert_eq!(
        limited.to_string(),
        "rate limited by `default`; retry after 500ms"
    );
}

#[tokio::test(start_paused = true)]
async fn fallback_answers_refused_and_keyless_requests_with_the_refusal_in_hand() {
    let fallback = service_fn(|request: Request<()>| async move {
        let why = match (
            request.extensions().get::<RateLimited>(),
            request.extensions().get::<KeyNotFound>(),
        ) {
            (Some(limited), None) => format!("limited by {}", limited.limiter()),
            (None, Some(missing)) => format!("no key for {}", missing.limiter()),
            other => panic!("one refusal expected, got {other:?}"),
        };
        Ok::<_, Infallible>(Response::new(Body::from(why)))
    });
    let mut s = RateLimitLayer::new(Quota::per_second(1))
        .key(Header::new(HeaderName::from_static("x-user")))
        .name("users")
        .fallback(fallback)
        .layer(service_fn(ok as fn(Request<()>) -> Ok));
    let mut body = async |request| {
        let response = s.ready().await.unwrap().call(request).await.unwrap();
        response.into_body().collect().await.unwrap().to_bytes()
    };
    assert_eq!(body(from("x-user", "a")).await, "ok");
    assert_eq!(body(from("x-user", "a")).await, "limited by users");
    assert_eq!(body(Request::new(())).await, "no key for users");
}

#[tokio::test(start_paused = true)]
async fn respond_with_shapes_refusals_and_keeps_the_limiter_headers() {
    let layer = RateLimitLayer::new(Quota::per_second(1))
        .key(Global::new())
        .respond_with(
            espresso_common::Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                espresso_common::grpc::Code::Unavailable,
            )
            .code("busy"),
        );
    let mut s = svc(&layer);
    assert_eq!(status(&mut s).await, StatusCode::OK);
    let refused = send(&mut s, Request::new(())).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert!(refused.headers().contains_key("ratelimit"));
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "busy");
}

#[tokio::test(start_paused = true)]
async fn waiting_instead_of_refusing() {
    let registry = prometheus::Registry::new();
    let metrics = RateLimitMetrics::register(&registry).unwrap();
    let layer = RateLimitLayer::new(Quota::per_second(10).burst(1))
        .key(Global::new())
        .wait_up_to(Duration::from_millis(250))
        .metrics(metrics.clone());
    let s = svc(&layer);
    let start = tokio::time::Instant::now();
    let mut handles = Vec::new();
    for _ in 0..4 {
        let mut s = s.clone();
        let ready = s.ready().await.unwrap().call(Request::new(()));
        handles.push(tokio::spawn(async move {
            let r = ready.await.unwrap();
            (r.status(), start.elapsed())
        }));
    }
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap());
    }
    assert_eq!(results[0], (StatusCode::OK, Duration::ZERO));
    assert_eq!(results[1], (StatusCode::OK, Duration::from_millis(100)));
    assert_eq!(results[2], (StatusCode::OK, Duration::from_millis(200)));
    assert_eq!(results[3].0, StatusCode::TOO_MANY_REQUESTS);
    assert!(gather(&registry).contains(r#"decision="delayed",limiter="default"} 2"#));
}

/// A held request keeps what its decision said: it goes on after its wait, with the headers of
/// the moment it was admitted.
#[tokio::test(start_paused = true)]
async fn a_held_request_goes_on_after_its_wait_with_its_headers() {
    let layer = RateLimitLayer::new(Quota::per_second(10).burst(1))
        .key(Global::new())
        .wait_up_to(Duration::from_millis(250))
        .headers(HeaderMode::Always);
    let mut s = svc(&layer);
    let first = send(&mut s, Request::new(())).await;
    assert_eq!(first.headers()["ratelimit"], "\"default\";r=0;t=1");
    let start = tokio::time::Instant::now();
    let held = send(&mut s, Request::new(())).await;
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_eq!(held.status(), StatusCode::OK);
    assert!(held.headers().contains_key("ratelimit-policy"));
    assert_eq!(held.into_body().collect().await.unwrap().to_bytes(), "ok");
}

/// A held request given up before its slot came (its future dropped: a caller's timeout, a
/// client gone) gives the slot back, and the next request takes it; one that went on keeps it.
#[tokio::test(start_paused = true)]
async fn a_held_request_given_up_gives_its_slot_back() {
    let layer = RateLimitLayer::new(Quota::per_second(10).burst(1))
        .key(Global::new())
        .wait_up_to(Duration::from_millis(250));
    let limiter = layer.limiter();
    let mut s = svc(&layer);
    assert_eq!(status(&mut s).await, StatusCode::OK);
    let held = s.ready().await.unwrap().call(Request::new(()));
    let later = s.ready().await.unwrap().call(Request::new(()));
    // Two held: slots at 100 and 200 ms. Giving up the first frees one 100 ms slot.
    tokio::time::advance(Duration::from_millis(50)).await;
    drop(held);
    let start = tokio::time::Instant::now();
    let next = send(&mut s, Request::new(())).await;
    assert_eq!(next.status(), StatusCode::OK);
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(150),
        "the freed slot, at 200 ms"
    );
    assert_eq!(later.await.unwrap().status(), StatusCode::OK);
    // Both went on: the next free slot is at 300 ms (the check itself is refused, not held).
    let refused = limiter.check(&()).await;
    assert_eq!(refused.retry_after(), Some(Duration::from_millis(100)));
}

/// A held request that went on, or that is refused, gives nothing back.
#[tokio::test(start_paused = true)]
async fn a_request_that_went_on_keeps_its_slot() {
    let layer = RateLimitLayer::new(Quota::per_second(10).burst(1))
        .key(Global::new())
        .wait_up_to(Duration::from_millis(150));
    let limiter = layer.limiter();
    let mut s = svc(&layer);
    assert_eq!(status(&mut s).await, StatusCode::OK);
    let held = s.ready().await.unwrap().call(Request::new(()));
    // Over the bound: refused, and dropped once answered.
    assert_eq!(status(&mut s).await, StatusCode::TOO_MANY_REQUESTS);
    let response = held.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    assert_eq!(
        limiter.check(&()).await.retry_after(),
        Some(Duration::from_millis(100)),
        "the slot at 100 ms was spent, the refusal took none"
    );
}

/// The limiter decides exactly as governor does for the same quota, on the same clock.
#[tokio::test(start_paused = true)]
async fn same_decisions_as_governor() {
    use std::num::NonZeroU32;
    for (per, burst) in [(10u32, 1u32), (10, 5), (100, 200), (3, 7)] {
        let period = Duration::from_secs(1) / per;
        let theirs = governor::RateLimiter::direct_with_clock(
            governor::Quota::with_period(period)
                .unwrap()
                .allow_burst(NonZeroU32::new(burst).unwrap()),
            TokioClock,
        );
        let ours = RateLimitLayer::new(Quota::per_second(per).burst(burst))
            .key(Global::new())
            .limiter();
        // A deterministic, bursty arrival pattern.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let gap = if x.is_multiple_of(4) { x % 400 } else { 0 };
            tokio::time::advance(Duration::from_millis(gap)).await;
            let expected = theirs.check();
            let got = ours.check(&()).await;
            assert_eq!(got.is_allowed(), expected.is_ok(), "{per}/s burst {burst}");
            if let Err(not_until) = expected {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(&TokioClock));
                assert_eq!(got.retry_after(), Some(wait));
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_second_limiter_of_one_name_in_one_set_of_metrics_is_warned_of_and_clones_are_not() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let metrics = RateLimitMetrics::register(&prometheus::Registry::new()).unwrap();
    let first = RateLimitLayer::new(Quota::per_second(1)).metrics(metrics.clone());
    // clones of one layer share its limiter: one name, one limiter
    let (_a, _b) = (svc(&first), svc(&first.clone()));
    assert!(!logs.text().contains("WARN"), "{}", logs.text());
    // a layer of its own, left at the default name too
    let _c = svc(&RateLimitLayer::new(Quota::per_second(5)).metrics(metrics.clone()));
    let text = logs.text();
    assert_eq!(text.matches("WARN").count(), 1, "{text}");
    assert!(text.contains("two rate limiters named `default`"), "{text}");
    // a name of its own is quiet
    let _d = svc(&RateLimitLayer::new(Quota::per_second(5))
        .name("search")
        .metrics(metrics));
    assert_eq!(logs.text().matches("WARN").count(), 1);
}
