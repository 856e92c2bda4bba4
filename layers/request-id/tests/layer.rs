//! The layer's behaviour on one request at a time, driven through `tower::ServiceExt::oneshot`
//! with `service_fn` inner services that report what they saw.

use espresso_request_id::{
    AllowedChars, ClientRequestId, PrefixCounter, RejectReason, RequestId, RequestIdLayer,
    RequestIdService, UuidV7, current,
};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, request::Parts};
use std::convert::Infallible;
use tower::{Layer, Service, ServiceExt, service_fn};

/// What the inner service saw of the request.
#[derive(Debug, Clone)]
struct Seen {
    headers: Vec<HeaderValue>,
    extension: Option<RequestId>,
    client: Option<ClientRequestId>,
    current: Option<RequestId>,
}

type Echo = Response<Seen>;

/// Answers with a body describing what reached it, under `header`.
fn echo(
    header: &'static str,
) -> impl Service<Request<()>, Response = Echo, Error = Infallible> + Clone {
    service_fn(move |request: Request<()>| async move {
        let seen = Seen {
            headers: request.headers().get_all(header).iter().cloned().collect(),
            extension: request.extensions().get::<RequestId>().cloned(),
            client: request.extensions().get::<ClientRequestId>().cloned(),
            current: current(),
        };
        Ok::<_, Infallible>(Response::new(seen))
    })
}

fn request(ids: &[HeaderValue]) -> Request<()> {
    let mut request = Request::new(());
    for id in ids {
        request.headers_mut().append("x-request-id", id.clone());
    }
    request
}

async fn run(
    layer: RequestIdLayer<impl espresso_request_id::MakeRequestId + Clone>,
    ids: &[HeaderValue],
) -> Echo {
    layer
        .layer(echo("x-request-id"))
        .oneshot(request(ids))
        .await
        .unwrap()
}

/// Checks that request header, extension, task-local and response header all hold one id, and
/// returns it.
fn consistent(response: &Echo) -> RequestId {
    let seen = response.body();
    let id = seen
        .extension
        .clone()
        .expect("the request carries a RequestId");
    assert_eq!(seen.headers, [id.header_value().clone()], "request header");
    assert_eq!(seen.current.as_ref(), Some(&id), "current()");
    assert_eq!(
        response.headers()["x-request-id"],
        id.header_value(),
        "response header"
    );
    assert_eq!(
        response.extensions().get::<RequestId>(),
        None,
        "no response extension unless asked for"
    );
    id
}

fn is_uuid_v4(id: &RequestId) -> bool {
    let s = id.header_value().as_bytes();
    s.len() == 36
        && s[14] == b'4'
        && s.iter().enumerate().all(|(i, b)| {
            if [8, 13, 18, 23].contains(&i) {
                *b == b'-'
            } else {
                b.is_ascii_hexdigit() && !b.is_ascii_uppercase()
            }
        })
}

#[tokio::test]
async fn generates_a_uuid_v4_when_none_is_sent() {
    let first = run(RequestIdLayer::new(), &[]).await;
    let second = run(RequestIdLayer::new(), &[]).await;
    let (a, b) = (consistent(&first), consistent(&second));
    assert!(is_uuid_v4(&a), "{a}");
    assert_ne!(a, b);
    assert!(first.body().client.is_none());
}

#[tokio::test]
async fn keeps_a_valid_incoming_id() {
    for id in [
        "abc",
        "order-42",
        "a.b_c:d-e",
        "0123456789ABCDEFabcdef",
        &"x".repeat(128),
    ] {
        let response = run(RequestIdLayer::new(), &[HeaderValue::from_str(id).unwrap()]).await;
        assert_eq!(consistent(&response).as_str(), id);
    }
}

#[tokio::test]
async fn replaces_invalid_incoming_ids() {
    let cases: Vec<(&str, Vec<HeaderValue>, RejectReason)> = vec![
        (
            "too long",
            vec![HeaderValue::from_str(&"x".repeat(129)).unwrap()],
            RejectReason::TooLong,
        ),
        (
            "empty",
            vec![HeaderValue::from_static("")],
            RejectReason::Empty,
        ),
        (
            "non-ASCII",
            vec![HeaderValue::from_bytes("café-1".as_bytes()).unwrap()],
            RejectReason::DisallowedChar,
        ),
        (
            "obs-text byte",
            vec![HeaderValue::from_bytes(b"id\xff").unwrap()],
            RejectReason::DisallowedChar,
        ),
        (
            "tab",
            vec![HeaderValue::from_bytes(b"a\tb").unwrap()],
            RejectReason::DisallowedChar,
        ),
        (
            "space",
            vec![HeaderValue::from_static("a b")],
            RejectReason::DisallowedChar,
        ),
        (
            "escaped CR/LF",
            vec![HeaderValue::from_static("a%0D%0Ab")],
            RejectReason::DisallowedChar,
        ),
        (
            "markup",
            vec![HeaderValue::from_static("<script>")],
            RejectReason::DisallowedChar,
        ),
        (
            "path",
            vec![HeaderValue::from_static("../../etc")],
            RejectReason::DisallowedChar,
        ),
        (
            "repeated",
            vec![
                HeaderValue::from_static("one"),
                HeaderValue::from_static("two"),
            ],
            RejectReason::Multiple,
        ),
    ];
    for (case, ids, reason) in cases {
        let response = run(RequestIdLayer::new().keep_client_id(true), &ids).await;
        let id = consistent(&response);
        assert!(is_uuid_v4(&id), "{case}: {id}");
        let client = response.body().client.clone().expect(case);
        assert_eq!(client.reason(), reason, "{case}");
        assert!(
            client.as_str().bytes().all(|b| b.is_ascii_graphic()),
            "{case}: {client}"
        );
    }
}

#[tokio::test]
async fn rejected_ids_are_dropped_unless_asked_for() {
    let response = run(RequestIdLayer::new(), &[HeaderValue::from_static("a b")]).await;
    consistent(&response);
    assert!(response.body().client.is_none());
}

#[tokio::test]
async fn kept_client_ids_are_percent_encoded_and_bounded() {
    let raw = HeaderValue::from_bytes(b"evil\tid\xc3\xa9%").unwrap();
    let response = run(RequestIdLayer::new().keep_client_id(true), &[raw]).await;
    let client = response.body().client.clone().unwrap();
    assert_eq!(client.as_str(), "evil%09id%C3%A9%25");
    assert!(!client.is_truncated());

    let long = HeaderValue::from_str(&"y".repeat(1000)).unwrap();
    let response = run(
        RequestIdLayer::new().keep_client_id(true).max_len(16),
        &[long],
    )
    .await;
    let client = response.body().client.clone().unwrap();
    assert_eq!(client.as_str(), "y".repeat(16));
    assert!(client.is_truncated());
}

#[tokio::test]
async fn length_and_charset_are_configurable() {
    let layer = RequestIdLayer::new()
        .max_len(8)
        .allowed_chars(AllowedChars::DEFAULT.with("/="));
    let response = run(layer.clone(), &[HeaderValue::from_static("ab/c=")]).await;
    assert_eq!(consistent(&response).as_str(), "ab/c=");
    let response = run(layer, &[HeaderValue::from_static("abcdefghi")]).await;
    assert_ne!(consistent(&response).as_str(), "abcdefghi");

    let digits_only = RequestIdLayer::new().allowed_chars(AllowedChars::none().with("0123456789"));
    let response = run(digits_only, &[HeaderValue::from_static("12a")]).await;
    assert_ne!(consistent(&response).as_str(), "12a");
}

#[tokio::test]
async fn always_generate_ignores_valid_ids_at_a_trust_boundary() {
    let layer = RequestIdLayer::new()
        .always_generate(true)
        .keep_client_id(true);
    let response = run(layer.clone(), &[HeaderValue::from_static("client-chosen")]).await;
    let id = consistent(&response);
    assert_ne!(id.as_str(), "client-chosen");
    let client = response.body().client.clone().unwrap();
    assert_eq!(
        (client.as_str(), client.reason()),
        ("client-chosen", RejectReason::Untrusted)
    );

    let response = run(layer, &[]).await;
    consistent(&response);
    assert!(response.body().client.is_none());
}

#[tokio::test]
async fn generators_are_pluggable() {
    let counter = PrefixCounter::with_prefix("api").unwrap();
    let layer = RequestIdLayer::new().generator(counter);
    assert_eq!(
        consistent(&run(layer.clone(), &[]).await).as_str(),
        "api-000001"
    );
    assert_eq!(consistent(&run(layer, &[]).await).as_str(), "api-000002");

    let v7 = consistent(&run(RequestIdLayer::new().generator(UuidV7), &[]).await);
    assert_eq!(v7.as_str().as_bytes()[14], b'7');

    let from_method = RequestIdLayer::new().generator(|parts: &Parts| {
        RequestId::new(HeaderValue::from_str(&format!("{}-1", parts.method)).unwrap()).unwrap()
    });
    assert_eq!(consistent(&run(from_method, &[]).await).as_str(), "GET-1");
}

#[tokio::test]
async fn a_closure_generator_reads_the_whole_head_and_the_service_gets_it_back() {
    // The closure sees the request as the client sent it, invalid id included.
    let layer = RequestIdLayer::new().generator(|parts: &Parts| {
        let sent = parts.headers["x-request-id"].to_str().unwrap();
        let id = format!("{}{}-{}", parts.method, parts.uri.path(), sent.len());
        RequestId::new(HeaderValue::from_str(&id).unwrap()).unwrap()
    });
    let inner = service_fn(|request: Request<()>| async move {
        let seen = (
            request.method().clone(),
            request.uri().clone(),
            request.version(),
            request.headers()["x-tenant"].clone(),
            request.extensions().get::<u32>().copied(),
        );
        Ok::<_, Infallible>(Response::new(seen))
    });
    let mut request = Request::post("/v1/filter?x=1")
        .version(http::Version::HTTP_2)
        .header("x-tenant", "t1")
        .header("x-request-id", "not valid")
        .body(())
        .unwrap();
    request.extensions_mut().insert(7u32);
    let response = layer.layer(inner).oneshot(request).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "POST/v1/filter-9");
    let (method, uri, version, tenant, extension) = response.into_body();
    assert_eq!(method, http::Method::POST);
    assert_eq!(uri, "/v1/filter?x=1");
    assert_eq!(version, http::Version::HTTP_2);
    assert_eq!(tenant, "t1");
    assert_eq!(extension, Some(7));
}

#[tokio::test]
async fn the_header_name_is_configurable() {
    let name = HeaderName::from_static("x-correlation-id");
    let layer = RequestIdLayer::new().header(name.clone());
    assert_eq!(layer.header_name(), &name);
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert(&name, HeaderValue::from_static("corr-1"));
    request
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_static("ignored"));
    let response = layer
        .layer(echo("x-correlation-id"))
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.body().headers, ["corr-1"]);
    assert_eq!(response.headers()["x-correlation-id"], "corr-1");
    assert!(response.headers().get("x-request-id").is_none());
}

#[tokio::test]
async fn error_responses_carry_the_id() {
    for status in [
        StatusCode::NOT_FOUND,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::INTERNAL_SERVER_ERROR,
    ] {
        let failing = service_fn(move |_: Request<()>| async move {
            let mut response = Response::new(());
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        });
        let response = RequestIdService::new(failing)
            .oneshot(request(&[HeaderValue::from_static("err-1")]))
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["x-request-id"], "err-1");
    }
}

#[tokio::test]
async fn grpc_trailers_only_responses_carry_the_id() {
    // A gRPC error sent as trailers-only: the status lives in the (only) HEADERS frame.
    let grpc_error = service_fn(|request: Request<()>| async move {
        let rejection = espresso_common::Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            espresso_common::grpc::Code::Unavailable,
        );
        Ok::<_, Infallible>(
            rejection.to_response::<_, http_body_util::Empty<bytes::Bytes>>(&request),
        )
    });
    let request = Request::builder()
        .header("content-type", "application/grpc")
        .header("x-request-id", "grpc-1")
        .body(())
        .unwrap();
    let response = RequestIdService::new(grpc_error)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.headers()["grpc-status"], "14");
    assert_eq!(response.headers()["x-request-id"], "grpc-1");
}

#[tokio::test]
async fn the_response_extension_is_opt_in() {
    let response = RequestIdLayer::new()
        .response_extension(true)
        .layer(echo("x-request-id"))
        .oneshot(request(&[HeaderValue::from_static("ext-1")]))
        .await
        .unwrap();
    assert_eq!(
        response.extensions().get::<RequestId>().unwrap().as_str(),
        "ext-1"
    );
}

#[tokio::test]
async fn inner_errors_pass_through() {
    let broken = service_fn(|_: Request<()>| async { Err::<Response<()>, _>("boom") });
    let result = RequestIdService::new(broken).oneshot(request(&[])).await;
    assert_eq!(result.unwrap_err(), "boom");
}

#[tokio::test]
async fn does_not_override_a_response_header_the_inner_service_set() {
    let proxy = service_fn(|_: Request<()>| async {
        let mut response = Response::new(());
        response
            .headers_mut()
            .insert("x-request-id", HeaderValue::from_static("upstream-7"));
        Ok::<_, Infallible>(response)
    });
    let response = RequestIdLayer::new()
        .response_extension(true)
        .layer(proxy)
        .oneshot(request(&[HeaderValue::from_static("mine")]))
        .await
        .unwrap();
    // The inner service's header stays; the typed id in the extension is still the request's.
    assert_eq!(response.headers()["x-request-id"], "upstream-7");
    assert_eq!(
        response.extensions().get::<RequestId>().unwrap().as_str(),
        "mine"
    );
}

#[tokio::test]
async fn current_is_set_during_the_inner_call_too() {
    // An inner service that reads the id synchronously in `call`, before any future runs.
    #[derive(Clone)]
    struct ReadsInCall;
    impl Service<Request<()>> for ReadsInCall {
        type Response = Response<Option<RequestId>>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Infallible>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<()>) -> Self::Future {
            std::future::ready(Ok(Response::new(current())))
        }
    }
    let mut service = RequestIdService::new(ReadsInCall);
    assert!(matches!(service.get_ref(), ReadsInCall));
    let _ = service.get_mut();
    let response = service
        .clone()
        .oneshot(request(&[HeaderValue::from_static("sync-1")]))
        .await
        .unwrap();
    assert_eq!(response.body().as_ref().unwrap().as_str(), "sync-1");
    assert_eq!(current(), None, "the scope ends with the call");
    let _inner: ReadsInCall = service.into_inner();
}

#[test]
fn layers_and_services_are_debug() {
    let layer = RequestIdLayer::new().generator(|_: &Parts| espresso_request_id::UuidV4.make());
    let text = format!("{layer:?}");
    assert!(
        text.contains("RequestIdLayer") && text.contains("x-request-id"),
        "{text}"
    );
    assert!(format!("{:?}", RequestIdService::<()>::layer()).contains("UuidV4"));
    let service = RequestIdService::new("inner");
    let text = format!("{service:?}");
    assert!(
        text.contains("RequestIdService") && text.contains("\"inner\""),
        "{text}"
    );
}
