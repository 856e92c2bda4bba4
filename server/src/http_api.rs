//! The HTTP surface: `POST /v1/filter`, `/healthz`, `/readyz`, `/metrics`, and JSON errors for
//! everything else.

use crate::{App, filter_reply::FilterReply};
use axum::{
    Router,
    body::{Body, HttpBody as _},
    extract::State,
    http::{HeaderMap, HeaderValue, Request, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use bytes::{Bytes, BytesMut};
use espresso_common::{Rejection, RequestId, grpc::Code};
use espresso_filter_core::FilterRequest;
use http_body_util::BodyExt as _;
use serde::{Deserialize, Deserializer, de::IgnoredAny};

/// The route every client calls: in [`filter_routes`], and answered ahead of the router by
/// [`FilterRoute`].
const FILTER_PATH: &str = "/v1/filter";

/// `POST /v1/filter` and `POST /v1/filter:batch`; the caller adds the state.
pub(crate) fn filter_routes(max_body_bytes: usize) -> Router<App> {
    Router::new()
        .route(
            FILTER_PATH,
            post(move |State(app): State<App>, request| filter(app, request, max_body_bytes)),
        )
        .route(
            "/v1/filter:batch",
            post(move |State(app): State<App>, request| batch(app, request, max_body_bytes)),
        )
        .method_not_allowed_fallback(method_not_allowed)
}

/// `POST /v1/filter` answered in place, every other request passed to `routes` (the router that
/// also holds `/v1/filter`, for its other methods). The route every client calls skips the
/// router's path lookup, its two boxed futures and its URL-parameter extension.
#[derive(Clone)]
pub(crate) struct FilterRoute<S> {
    app: App,
    max_body_bytes: usize,
    routes: S,
}

impl<S> FilterRoute<S> {
    pub(crate) fn new(app: App, max_body_bytes: usize, routes: S) -> Self {
        Self {
            app,
            max_body_bytes,
            routes,
        }
    }
}

/// The answer to `POST /v1/filter`, boxed once (an `async fn`'s future has no name).
type FilterFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
>;

impl<S> tower::Service<Request<Body>> for FilterRoute<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = std::convert::Infallible>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    // The router's future boxed too: unboxed, it would widen every layer's future above.
    type Future = futures_util::future::Either<FilterFuture, std::pin::Pin<Box<S::Future>>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.routes.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if request.method() == http::Method::POST && request.uri().path() == FILTER_PATH {
            let (app, max_body_bytes) = (self.app.clone(), self.max_body_bytes);
            // `map`, not an `async` block around the call: the block would keep its own copy of
            // the request next to the call's (256 bytes more to allocate and copy).
            let answer = futures_util::FutureExt::map(filter(app, request, max_body_bytes), Ok);
            futures_util::future::Either::Left(Box::pin(answer))
        } else {
            futures_util::future::Either::Right(Box::pin(self.routes.call(request)))
        }
    }
}

/// Health, readiness and metrics; the caller adds the state.
pub(crate) fn probe_routes() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
}

/// Every error code an [`ApiError`] carries: `espresso_http_errors_total{code}` exports each at
/// 0 from the start.
pub(crate) const ERROR_CODES: [&str; 23] = [
    "invalid_host",
    "unsupported_media_type",
    "payload_too_large",
    "bad_body",
    "invalid_utf8",
    "invalid_json",
    "missing_content",
    "invalid_content",
    "not_found",
    "method_not_allowed",
    "invalid_lists",
    "unknown_list",
    "invalid_items",
    "admin_disabled",
    "unauthorized",
    "forbidden",
    "list_not_found",
    "invalid_list",
    "invalid_words",
    "invalid_query",
    "read_only_list",
    "store_failed",
    "store_unavailable",
];

/// A request the API refuses, shaped as the error JSON of `docs/http-api.md`.
pub(crate) struct ApiError {
    status: StatusCode,
    grpc: Code,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(
            ERROR_CODES.contains(&code),
            "{code} missing from ERROR_CODES"
        );
        let grpc = match status {
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Code::Unimplemented,
            StatusCode::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
            StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
            s if s.is_server_error() => Code::Internal,
            _ => Code::InvalidArgument,
        };
        Self {
            status,
            grpc,
            code,
            message: message.into(),
        }
    }

    /// What went wrong, in words.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The same error about `items[i]` of a batch.
    pub(crate) fn at_item(mut self, i: usize) -> Self {
        self.message = format!("items[{i}]: {}", self.message);
        self
    }

    fn rejection(&self) -> Rejection {
        Rejection::new(self.status, self.grpc)
            .code(self.code)
            .message(self.message.clone())
    }

    /// The JSON error response (HTTP) for a request with this id.
    pub(crate) fn into_response_for(self, app: &App, id: Option<&RequestId>) -> Response {
        app.metrics.errors.with_label_values(&[self.code]).inc();
        self.rejection().http_response::<Body>(id).map(Body::new)
    }

    /// The error as the client of `request` understands it: JSON, or a gRPC status.
    pub(crate) fn into_response_to<B>(self, app: &App, request: &Request<B>) -> Response {
        app.metrics.errors.with_label_values(&[self.code]).inc();
        self.rejection()
            .to_response::<B, Body>(request)
            .map(Body::new)
    }
}

/// `POST /v1/filter`. The head is read before the future is made, so that the future (boxed
/// and moved once per request) holds the body alone, not the whole request.
fn filter(
    app: App,
    request: Request<Body>,
    max_body_bytes: usize,
) -> impl Future<Output = Response> + Send {
    let id = request.extensions().get::<RequestId>().cloned();
    let body = json_request(request, max_body_bytes);
    async move {
        let input = match body {
            Ok(body) => read_body(body, max_body_bytes)
                .await
                .and_then(|body| parse_filter_body(&body))
                .and_then(|input| input.known_to(&app)),
            Err(error) => Err(error),
        };
        match input {
            Ok(input) => {
                // Read once: each reading checks the id's bytes again.
                let id_text = id.as_ref().map(RequestId::as_str);
                let request = FilterRequest {
                    content: input.content,
                    request_id: id_text.map(str::to_owned),
                    lists: input.lists,
                };
                let checked = app.check(request).await;
                FilterReply::new(id_text.unwrap_or_default(), &checked).into_response()
            }
            Err(error) => error.into_response_for(&app, id.as_ref()),
        }
    }
}

/// Items one `POST /v1/filter:batch` holds at most.
pub(crate) const MAX_BATCH_ITEMS: usize = 100;

/// `POST /v1/filter:batch`: `{"items": [{"content", "lists"?}, ...]}` → `{"request_id",
/// "results": [...]}`, each result shaped like the answer of `POST /v1/filter`, in order.
async fn batch(app: App, request: Request<Body>, max_body_bytes: usize) -> Response {
    let id = request.extensions().get::<RequestId>().cloned();
    let items = match json_body(request, max_body_bytes).await {
        Ok(body) => parse_batch_body(&body).and_then(|items| {
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| item.known_to(&app).map_err(|e| e.at_item(i)))
                .collect::<Result<Vec<_>, _>>()
        }),
        Err(error) => Err(error),
    };
    let items = match items {
        Ok(items) => items,
        Err(error) => return error.into_response_for(&app, id.as_ref()),
    };
    let id_text = id.as_ref().map(RequestId::as_str);
    let request_id = id_text.map(str::to_owned);
    let checks = items.into_iter().map(|input| {
        app.check(FilterRequest {
            content: input.content,
            request_id: request_id.clone(),
            lists: input.lists,
        })
    });
    let mut checked = futures_util::future::join_all(checks).await;
    app.share_max_hits(&mut checked);
    let results: Vec<FilterReply<'_>> = checked
        .iter()
        .map(|checked| FilterReply::new(id_text.unwrap_or_default(), checked))
        .collect();
    let body = serde_json::json!({
        "request_id": id_text.unwrap_or_default(),
        "results": results,
    });
    axum::Json(body).into_response()
}

/// Checks the content type and reads the body (at most `max_body_bytes`).
pub(crate) async fn json_body(
    request: Request<Body>,
    max_body_bytes: usize,
) -> Result<Bytes, ApiError> {
    read_body(json_request(request, max_body_bytes)?, max_body_bytes).await
}

/// The body of a request that says it is JSON and not larger than `max_body_bytes`, unread.
fn json_request(request: Request<Body>, max_body_bytes: usize) -> Result<Body, ApiError> {
    // The headers in place rather than a `HeaderMap` extractor, which would copy them all.
    if !is_json(request.headers()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a JSON body (content-type: application/json)",
        ));
    }
    // A body announced too large is refused before a byte of it is read: no `100 Continue`,
    // no wait for a body that may never come.
    // The body's lower size bound is its `Content-Length` (hyper parsed it already), 0 if none.
    if request.body().size_hint().lower() > max_body_bytes as u64 {
        return Err(too_large(max_body_bytes));
    }
    Ok(request.into_body())
}

/// Reads `body` whole, refusing it once it passes `limit` bytes. A body that arrives in one
/// frame, as small ones do, is kept as it came: `axum::body::to_bytes` would queue it in a
/// list (an allocation) and take it out again.
async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut whole = Bytes::new();
    // Only once a second frame arrives.
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            let message = format!("failed to read the request body: {error}");
            ApiError::new(StatusCode::BAD_REQUEST, "bad_body", message)
        })?;
        // Trailers carry no part of the JSON.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let read = joined.as_ref().map_or(whole.len(), BytesMut::len);
        if read + data.len() > limit {
            return Err(too_large(limit));
        }
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&data),
            None if whole.is_empty() => whole = data,
            None => {
                let mut both = BytesMut::with_capacity(whole.len() + data.len());
                both.extend_from_slice(&whole);
                both.extend_from_slice(&data);
                joined = Some(both);
            }
        }
    }
    Ok(joined.map_or(whole, BytesMut::freeze))
}

/// The limit is named by its size: the filter routes' is `server.max_body_bytes`, the lists
/// API's its own.
fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request body is larger than this route's limit of {limit} bytes"),
    )
}

/// The body of `POST /v1/filter` (and an item of a batch): other fields are ignored.
#[derive(Deserialize)]
struct FilterBody {
    /// Any JSON value, `null` included, so that a wrong type is told apart from a missing one.
    #[serde(default, deserialize_with = "present")]
    content: Option<serde_json::Value>,
    /// The lists to check against, by name; absent: the default lists.
    #[serde(default, deserialize_with = "present")]
    lists: Option<serde_json::Value>,
}

/// A request to check one text, read from JSON.
#[derive(Debug, PartialEq)]
pub(crate) struct FilterInput {
    pub(crate) content: String,
    pub(crate) lists: Option<Vec<String>>,
}

impl FilterInput {
    /// Refuses names of lists the running dictionary does not have.
    pub(crate) fn known_to(self, app: &App) -> Result<Self, ApiError> {
        if let Some(lists) = &self.lists {
            let dictionary = app.filter.dictionary();
            if let Some(unknown) = lists.iter().find(|name| !dictionary.has_list(name)) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unknown_list",
                    format!(
                        "unknown list {} (GET /v1/lists or Lists/ListLists shows the lists)",
                        crate::quoted(unknown)
                    ),
                ));
            }
        }
        Ok(self)
    }
}

impl FilterBody {
    fn into_input(self) -> Result<FilterInput, ApiError> {
        let content = match self.content {
            Some(serde_json::Value::String(content)) => content,
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_content",
                    "\"content\" must be a string",
                ));
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "missing_content",
                    "\"content\" is required",
                ));
            }
        };
        let invalid = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_lists",
                "\"lists\" must be a non-empty array of list names",
            )
        };
        let lists = match self.lists {
            None => None,
            Some(serde_json::Value::Array(names)) if !names.is_empty() => Some(
                names
                    .into_iter()
                    .map(|name| match name {
                        serde_json::Value::String(name) => Ok(name),
                        _ => Err(invalid()),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(invalid()),
        };
        Ok(FilterInput { content, lists })
    }
}

/// The body of `POST /v1/filter:batch`.
#[derive(Deserialize)]
struct BatchBody {
    #[serde(default)]
    items: Option<Vec<serde_json::Value>>,
}

fn present<'de, D: Deserializer<'de>>(value: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(value).map(Some)
}

/// Reads a `POST /v1/filter` body.
fn parse_filter_body(body: &[u8]) -> Result<FilterInput, ApiError> {
    let text = json_object_text(body, "{\"content\": \"...\"}")?;
    let body: FilterBody = serde_json::from_str(text).map_err(invalid_json)?;
    body.into_input()
}

/// Reads a `POST /v1/filter:batch` body.
fn parse_batch_body(body: &[u8]) -> Result<Vec<FilterInput>, ApiError> {
    let text = json_object_text(body, "{\"items\": [{\"content\": \"...\"}]}")?;
    let body: BatchBody = serde_json::from_str(text).map_err(|e| {
        // text that is not JSON at all is the single route's `invalid_json`
        if e.is_data() {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_items",
                "\"items\" must be an array of objects like {\"content\": \"...\"}",
            )
        } else {
            invalid_json(e)
        }
    })?;
    let items = body.items.unwrap_or_default();
    if items.is_empty() || items.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_items",
            format!(
                "\"items\" must hold 1 to {MAX_BATCH_ITEMS} entries (it holds {})",
                items.len()
            ),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            if !item.is_object() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_items",
                    format!("items[{i}]: expected an object like {{\"content\": \"...\"}}"),
                ));
            }
            serde_json::from_value::<FilterBody>(item)
                .map_err(invalid_json)
                .and_then(FilterBody::into_input)
                .map_err(|e| e.at_item(i))
        })
        .collect()
}

fn invalid_json(e: serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_json",
        format!("invalid JSON: {e}"),
    )
}

/// The body as UTF-8 text holding a JSON object (`example` shows one in the error).
pub(crate) fn json_object_text<'a>(body: &'a [u8], example: &str) -> Result<&'a str, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_utf8",
            format!(
                "request body is not valid UTF-8 (at byte {})",
                e.valid_up_to()
            ),
        )
    })?;
    // A struct would also be read from an array (`["..."]`): only objects are requests.
    if !text.trim_start().starts_with('{') {
        serde_json::from_str::<IgnoredAny>(text).map_err(invalid_json)?;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("expected a JSON object like {example}"),
        ));
    }
    Ok(text)
}

/// `application/json` or any `application/*+json`, parameters allowed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes) else {
        return false;
    };
    // What nearly every client sends, compared whole before the general reading.
    if ct == b"application/json" {
        return true;
    }
    let essence = ct
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let Some(subtype) = essence
        .split_at_checked(b"application/".len())
        .filter(|(kind, _)| kind.eq_ignore_ascii_case(b"application/"))
        .map(|(_, subtype)| subtype)
    else {
        return false;
    };
    subtype.eq_ignore_ascii_case(b"json")
        || subtype.len() >= 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json")
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(app): State<App>) -> Response {
    if app.is_ready() {
        axum::Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        let body = serde_json::json!({"status": "not_ready"});
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

async fn metrics(State(app): State<App>) -> Response {
    (
        [(CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        app.metrics.render(),
    )
        .into_response()
}

/// Unknown routes: 404 JSON, or gRPC UNIMPLEMENTED for gRPC requests.
pub(crate) async fn not_found(State(app): State<App>, request: Request<Body>) -> Response {
    let message = format!("no route for {} {}", request.method(), request.uri().path());
    ApiError::new(StatusCode::NOT_FOUND, "not_found", message).into_response_to(&app, &request)
}

/// Known routes with the wrong method: 405 JSON.
pub(crate) async fn method_not_allowed(State(app): State<App>, request: Request<Body>) -> Response {
    let message = format!(
        "{} is not allowed on {}",
        request.method(),
        request.uri().path()
    );
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        message,
    )
    .into_response_to(&app, &request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &'static [u8]) -> Result<String, &'static str> {
        parse_filter_body(body)
            .map(|input| input.content)
            .map_err(|e| e.code)
    }

    #[test]
    fn lists_are_read_as_names() {
        let input = parse_filter_body(br#"{"content": "hi", "lists": ["a", "b"]}"#).ok();
        assert_eq!(
            input.and_then(|input| input.lists),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        for body in [
            &br#"{"content": "hi", "lists": []}"#[..],
            br#"{"content": "hi", "lists": "a"}"#,
            br#"{"content": "hi", "lists": [1]}"#,
            br#"{"content": "hi", "lists": null}"#,
        ] {
            let code = parse_filter_body(body).err().map(|e| e.code);
            assert_eq!(
                code,
                Some("invalid_lists"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn batch_bodies_hold_1_to_100_items_each_checked_like_a_single_body() {
        let code = |body: &str| {
            parse_batch_body(body.as_bytes())
                .err()
                .map(|e| (e.code, e.message))
        };
        assert_eq!(code(r#"{"items": []}"#).unwrap().0, "invalid_items");
        assert_eq!(code(r#"{}"#).unwrap().0, "invalid_items");
        assert_eq!(code(r#"{"items": 5}"#).unwrap().0, "invalid_items");
        let many = format!(
            r#"{{"items": [{}]}}"#,
            vec![r#"{"content": "x"}"#; 101].join(",")
        );
        assert_eq!(code(&many).unwrap().0, "invalid_items");
        let (code_, message) = code(r#"{"items": [{"content": "a"}, {"text": "b"}]}"#).unwrap();
        assert_eq!(
            (code_, message.as_str()),
            ("missing_content", "items[1]: \"content\" is required")
        );
        assert_eq!(code(r#"{"items": ["a"]}"#).unwrap().0, "invalid_items");
        // text that is not JSON is the single route's error
        for broken in [
            r#"{"items": ["#,
            r#"{"items": [{"content": "a"}"#,
            "{items}",
        ] {
            assert_eq!(code(broken).unwrap().0, "invalid_json", "{broken}");
        }
        let items =
            parse_batch_body(br#"{"items": [{"content": "a"}, {"content": "b", "lists": ["x"]}]}"#)
                .ok()
                .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].lists, Some(vec!["x".to_owned()]));
    }

    #[test]
    fn content_is_extracted_and_extra_fields_allowed() {
        assert_eq!(
            parse(br#"{"content": "hi", "lang": "en"}"#),
            Ok("hi".into())
        );
        assert_eq!(parse(br#"{"content": ""}"#), Ok("".into()));
    }

    #[test]
    fn bad_bodies_get_distinct_codes() {
        assert_eq!(parse(b"{"), Err("invalid_json"));
        assert_eq!(parse(b"[1]"), Err("invalid_json"));
        assert_eq!(parse(br#"["x"]"#), Err("invalid_json"));
        assert_eq!(parse(b" [1"), Err("invalid_json"));
        assert_eq!(parse(br#"{"content": null}"#), Err("invalid_content"));
        assert_eq!(parse(br#"{"content": {"a": 1}}"#), Err("invalid_content"));
        assert_eq!(parse(br#"{"text": "x"}"#), Err("missing_content"));
        assert_eq!(parse(br#"{"content": 5}"#), Err("invalid_content"));
        assert_eq!(parse(b"{\"content\": \"\xff\"}"), Err("invalid_utf8"));
    }

    fn frames(frames: Vec<Result<hyper::body::Frame<Bytes>, std::io::Error>>) -> Body {
        Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )))
    }

    fn data(text: &'static str) -> Result<hyper::body::Frame<Bytes>, std::io::Error> {
        Ok(hyper::body::Frame::data(Bytes::from_static(
            text.as_bytes(),
        )))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_from_any_number_of_frames_up_to_its_limit() {
        let read = read_body(frames(vec![data(r#"{"content": "hi"}"#)]), 100).await;
        assert_eq!(read.ok().as_deref(), Some(&br#"{"content": "hi"}"#[..]));
        let trailers = hyper::body::Frame::trailers(HeaderMap::new());
        let split = vec![
            data(""),
            data(r#"{"con"#),
            data(r#"tent": "#),
            Ok(trailers),
            data(r#""hi"}"#),
        ];
        let read = read_body(frames(split), 17).await;
        assert_eq!(read.ok().as_deref(), Some(&br#"{"content": "hi"}"#[..]));
        let read = read_body(frames(vec![data(r#"{"con"#), data(r#"tent": "hi"}"#)]), 16).await;
        assert_eq!(read.err().map(|e| e.code), Some("payload_too_large"));
        let read = read_body(frames(vec![data(r#"{"content": "hi"}"#)]), 16).await;
        assert_eq!(read.err().map(|e| e.code), Some("payload_too_large"));
        let broken = vec![data("{"), Err(std::io::Error::other("connection reset"))];
        let error = read_body(frames(broken), 100).await.err().unwrap();
        assert_eq!(error.code, "bad_body");
        assert!(
            error.message.contains("connection reset"),
            "{}",
            error.message
        );
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
            ("application/+json", true),
            ("application/ld+JSON", true),
            ("application", false),
            ("text/x+json", false),
        ] {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }
}
