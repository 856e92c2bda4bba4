//! The HTTP surface: `POST /v1/filter`, `/healthz`, `/readyz`, `/metrics`, and JSON errors for
//! everything else.

use crate::{App, filter_reply::FilterReply};
use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, Request, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use espresso_common::{Rejection, RequestId, grpc::Code};
use espresso_filter_core::FilterRequest;
use http_body_util::LengthLimitError;
use serde::{Deserialize, Deserializer, de::IgnoredAny};

/// `POST /v1/filter`; the caller adds the state.
pub(crate) fn filter_routes(max_body_bytes: usize) -> Router<App> {
    Router::new()
        .route(
            "/v1/filter",
            post(move |State(app): State<App>, request| filter(app, request, max_body_bytes)),
        )
        .method_not_allowed_fallback(method_not_allowed)
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
pub(crate) const ERROR_CODES: [&str; 10] = [
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

async fn filter(app: App, request: Request<Body>, max_body_bytes: usize) -> Response {
    let id = request.extensions().get::<RequestId>().cloned();
    match filter_content(request, max_body_bytes).await {
        Ok(content) => {
            let request = FilterRequest {
                content,
                request_id: id.as_ref().map(|id| id.as_str().to_owned()),
            };
            let checked = app.check(request).await;
            FilterReply::new(id.as_ref(), &checked).into_response()
        }
        Err(error) => error.into_response_for(&app, id.as_ref()),
    }
}

/// Checks the content type, reads the body (at most `max_body_bytes`) and returns the content.
async fn filter_content(request: Request<Body>, max_body_bytes: usize) -> Result<String, ApiError> {
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
    if content_length(request.headers()).is_some_and(|length| length > max_body_bytes as u64) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(request.into_body(), max_body_bytes)
        .await
        .map_err(|error| {
            let error = error.into_inner();
            if error.is::<LengthLimitError>() {
                too_large()
            } else {
                let message = format!("failed to read the request body: {error}");
                ApiError::new(StatusCode::BAD_REQUEST, "bad_body", message)
            }
        })?;
    parse_filter_body(&body)
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "request body is larger than server.max_body_bytes",
    )
}

/// The `Content-Length` a request announces (hyper has refused invalid ones already).
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The body of `POST /v1/filter`: other fields are ignored.
#[derive(Deserialize)]
struct FilterBody {
    /// Any JSON value, `null` included, so that a wrong type is told apart from a missing one.
    #[serde(default, deserialize_with = "present")]
    content: Option<serde_json::Value>,
}

fn present<'de, D: Deserializer<'de>>(value: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(value).map(Some)
}

/// Reads the content out of a `POST /v1/filter` body.
fn parse_filter_body(body: &[u8]) -> Result<String, ApiError> {
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
    let invalid = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("invalid JSON: {e}"),
        )
    };
    // A struct would also be read from an array (`["..."]`): only objects are requests.
    if !text.trim_start().starts_with('{') {
        serde_json::from_str::<IgnoredAny>(text).map_err(invalid)?;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "expected a JSON object like {\"content\": \"...\"}",
        ));
    }
    let body: FilterBody = serde_json::from_str(text).map_err(invalid)?;
    match body.content {
        Some(serde_json::Value::String(content)) => Ok(content),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_content",
            "\"content\" must be a string",
        )),
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_content",
            "\"content\" is required",
        )),
    }
}

/// `application/json` or any `application/*+json`, parameters allowed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes) else {
        return false;
    };
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
        parse_filter_body(body).map_err(|e| e.code)
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
