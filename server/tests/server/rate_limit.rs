//! `[rate_limit]`: 429 with the documented headers, trusted proxies, gRPC, hot quota changes.

use crate::harness::{Server, write_atomically};
use bytes::Bytes;
use espresso_server::pb::{CheckRequest, filter_client::FilterClient};
use http::{Request, StatusCode};
use http_body_util::Full;

fn filter_request(server: &Server, forwarded_for: Option<&str>) -> Request<Full<Bytes>> {
    let mut request =
        Request::post(server.url("/v1/filter")).header("content-type", "application/json");
    if let Some(xff) = forwarded_for {
        request = request.header("x-forwarded-for", xff);
    }
    request
        .body(Full::new(Bytes::from_static(br#"{"content": "hi"}"#)))
        .unwrap()
}

#[tokio::test]
async fn over_the_limit_is_429_with_retry_after_and_ratelimit_headers() {
    let server = Server::start("[rate_limit]\nper_second = 1\nburst = 2\nkey = \"global\"\n").await;
    assert_eq!(server.filter("a").await.status, StatusCode::OK);
    assert_eq!(server.filter("b").await.status, StatusCode::OK);
    let reply = server.filter("c").await;
    assert_eq!(
        reply.error_code(StatusCode::TOO_MANY_REQUESTS),
        "rate_limited"
    );
    let retry_after: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let policy = reply.headers["ratelimit-policy"].to_str().unwrap();
    assert_eq!(policy, "\"default\";q=1;w=1");
    let state = reply.headers["ratelimit"].to_str().unwrap();
    assert!(state.contains("r=0"), "{state}");
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_untrusted_peers() {
    let server = Server::start("[rate_limit]\nper_second = 1\nburst = 1\nkey = \"ip\"\n").await;
    let first = server.send(filter_request(&server, None)).await;
    assert_eq!(first.status, StatusCode::OK);
    // Claiming to be someone else does not buy a fresh bucket.
    let spoofed = server
        .send(filter_request(&server, Some("203.0.113.9")))
        .await;
    assert_eq!(spoofed.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn forwarded_for_is_honoured_from_trusted_proxies() {
    let server = Server::start(
        "[rate_limit]\nper_second = 1\nburst = 1\nkey = \"ip\"\ntrusted_proxies = [\"127.0.0.0/8\"]\n",
    )
    .await;
    let a = server
        .send(filter_request(&server, Some("203.0.113.1")))
        .await;
    let b = server
        .send(filter_request(&server, Some("203.0.113.2")))
        .await;
    let a_again = server
        .send(filter_request(&server, Some("203.0.113.1")))
        .await;
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a_again.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_forwarded_header_is_read_when_the_config_names_it() {
    let server = Server::start(
        "[rate_limit]\nper_second = 1\nburst = 1\ntrusted_proxies = [\"127.0.0.0/8\"]\n\
         forwarded_header = \"forwarded\"\n",
    )
    .await;
    let from = |client: &str| {
        Request::post(server.url("/v1/filter"))
            .header("content-type", "application/json")
            .header("forwarded", format!("for={client};proto=http"))
            // the other header is not read
            .header("x-forwarded-for", "198.51.100.7")
            .body(Full::new(Bytes::from_static(br#"{"content": "hi"}"#)))
            .unwrap()
    };
    let a = server.send(from("203.0.113.1")).await;
    let b = server.send(from("\"[2001:db8::1]:4711\"")).await;
    let a_again = server.send(from("203.0.113.1")).await;
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a_again.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn grpc_clients_get_resource_exhausted() {
    let server = Server::start("[rate_limit]\nper_second = 1\nburst = 1\nkey = \"global\"\n").await;
    let channel = tonic::transport::Channel::from_shared(server.url(""))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FilterClient::new(channel);
    let check = || CheckRequest {
        content: "hi".into(),
        ..Default::default()
    };
    client.check(check()).await.expect("first call admitted");
    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
}

#[tokio::test]
async fn a_request_without_the_key_header_is_refused_500_and_counted() {
    let server = Server::start("[rate_limit]\nper_second = 100\nkey = \"header:x-client\"\n").await;
    // Counted from the start, at 0, before any request.
    let missing = r#"espresso_rate_limit_missing_key_total{action="refused",limiter="default"}"#;
    assert_eq!(server.metric(missing).await, Some(0.0));
    let reply = server.filter("hi").await;
    assert_eq!(
        reply.error_code(StatusCode::INTERNAL_SERVER_ERROR),
        "rate_limit_key_missing"
    );
    let body = String::from_utf8(reply.body.to_vec()).unwrap();
    assert!(body.contains("`x-client`"), "{body}");

    let channel = tonic::transport::Channel::from_shared(server.url(""))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = FilterClient::new(channel)
        .check(CheckRequest {
            content: "hi".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
    assert_eq!(server.metric(missing).await, Some(2.0));
    // One WARN, naming the setting an operator changes (not a library call).
    let warned: Vec<String> = server
        .logs()
        .into_iter()
        .filter(|l| l.contains("rate limiter found no key"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(
        warned[0].contains("WARN")
            && warned[0].contains("set rate_limit.missing_key = \"shared-bucket\" or \"allow\"")
            && !warned[0].contains("on_missing_key"),
        "{warned:#?}"
    );
    // The probes are never limited, so never refused for a missing key either.
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn missing_key_shared_bucket_limits_keyless_requests_together() {
    let server = Server::start(
        "[rate_limit]\nper_second = 1\nburst = 1\nkey = \"header:x-client\"\n\
         missing_key = \"shared-bucket\"\n",
    )
    .await;
    assert_eq!(server.filter("a").await.status, StatusCode::OK);
    let second = server.filter("b").await;
    assert_eq!(
        second.error_code(StatusCode::TOO_MANY_REQUESTS),
        "rate_limited"
    );
    let shared =
        r#"espresso_rate_limit_missing_key_total{action="shared_bucket",limiter="default"}"#;
    assert_eq!(server.metric(shared).await, Some(2.0));
}

#[tokio::test]
async fn quota_changes_apply_on_reload() {
    let limited = "[rate_limit]\nper_second = 1\nburst = 1\nkey = \"global\"\n";
    let server = Server::start(limited).await;
    assert_eq!(server.filter("a").await.status, StatusCode::OK);
    assert_eq!(
        server.filter("b").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let config = server.path("espresso.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    write_atomically(&config, text.replace("burst = 1", "burst = 1000"));
    let applied = r#"espresso_config_reloads_total{result="applied"}"#;
    for _ in 0..100 {
        if server.metric(applied).await == Some(1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(server.filter("c").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_flood_of_distinct_clients_stays_within_max_keys() {
    // Each request comes from a new client (a trusted proxy's X-Forwarded-For): 4,000 keys
    // against a cap of 500. The long version with a million keys is benches/keyflood.sh.
    let server = std::sync::Arc::new(
        Server::start(
            "[rate_limit]\nper_second = 1\nburst = 1\nkey = \"ip\"\n\
             trusted_proxies = [\"127.0.0.0/8\"]\nmax_keys = 500\n",
        )
        .await,
    );
    let clients = 4_000u32;
    let workers: Vec<_> = (0..16)
        .map(|worker| {
            let server = server.clone();
            tokio::spawn(async move {
                for n in (worker..clients).step_by(16) {
                    let client = std::net::Ipv4Addr::from(0x0A00_0000 | (n + 1)).to_string();
                    let reply = server.send(filter_request(&server, Some(&client))).await;
                    assert_eq!(
                        reply.status,
                        StatusCode::OK,
                        "a new client is never limited"
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let mut evicted = 0.0;
    for reason in ["capacity", "idle"] {
        let sample = format!(
            r#"espresso_rate_limit_evicted_keys_total{{limiter="default",reason="{reason}"}}"#
        );
        evicted += server.metric(&sample).await.unwrap_or(0.0);
    }
    // Every key past the cap was dropped (within one eviction batch of slack): pushed out by a
    // newer one, or swept as idle first when the machine is slow enough that a key's second
    // passes before the cap is reached (each test server shares the cores with the others).
    assert!(
        evicted >= f64::from(clients - 500) - 100.0,
        "{evicted} keys evicted"
    );
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_redis_that_does_not_answer_at_start_is_named_in_a_warn_before_any_request() {
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let server = Server::start(&format!(
        "[rate_limit]\nbackend = \"redis\"\nredis_url = \"{url}\"\n[cache]\nredis_url = \"{url}\"\n"
    ))
    .await;
    for section in ["rate_limit", "cache"] {
        let warn = format!("{section}: its Redis does not answer at start");
        espresso_test_support::eventually(|| async {
            server
                .logs()
                .iter()
                .any(|l| l.contains("WARN") && l.contains(&warn))
        })
        .await;
    }
    // and it serves meanwhile, deciding locally
    assert_eq!(server.filter("hello").await.status, StatusCode::OK);
}
