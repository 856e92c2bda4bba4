use crate::{RejectBody, RequestId, grpc};
use http::{
    HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode,
    header::{CONTENT_TYPE, RETRY_AFTER},
};
use std::{borrow::Cow, time::Duration};

/// The answer a layer gives instead of calling its inner service.
///
/// One value describes the rejection for both protocols; [`Rejection::to_response`] shapes it for
/// the request at hand:
///
/// - HTTP: the status, `Retry-After` (whole seconds, rounded up), any extra headers, and a JSON
///   body `{"error": {"code": "…", "message": "…"}, "request_id": "…"}` (the id when the request
///   carries a [`RequestId`]).
/// - gRPC (content type `application/grpc*`): HTTP 200 trailers-only, with `grpc-status`,
///   a percent-encoded `grpc-message` and the same extra headers as metadata.
#[derive(Debug, Clone)]
pub struct Rejection {
    status: StatusCode,
    grpc_code: grpc::Code,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    retry_after: Option<Duration>,
    headers: HeaderMap,
}

impl Rejection {
    /// A rejection answered with `status` over HTTP and `grpc_code` over gRPC. The error code
    /// and message default to the status's reason phrase.
    pub fn new(status: StatusCode, grpc_code: grpc::Code) -> Self {
        let reason = status.canonical_reason().unwrap_or("rejected");
        Self {
            status,
            grpc_code,
            code: Cow::Owned(reason.to_ascii_lowercase().replace(' ', "_")),
            message: Cow::Borrowed(reason),
            retry_after: None,
            headers: HeaderMap::new(),
        }
    }

    /// The machine-readable error code (`"rate_limited"`).
    pub fn code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = code.into();
        self
    }

    /// The human-readable message.
    pub fn message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    /// Tells the client when to try again.
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Adds a header to the response (metadata for gRPC).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The HTTP status of this rejection.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The gRPC code of this rejection.
    pub fn grpc_code(&self) -> grpc::Code {
        self.grpc_code
    }

    /// The machine-readable error code.
    pub fn error_code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    pub fn error_message(&self) -> &str {
        &self.message
    }

    /// Shapes the rejection for `request`: a gRPC status for gRPC requests, JSON otherwise.
    pub fn to_response<ReqBody, B>(&self, request: &Request<ReqBody>) -> Response<RejectBody<B>> {
        self.response(
            grpc::is_grpc(request.headers()),
            request.extensions().get::<RequestId>(),
        )
    }

    /// Like [`to_response`](Self::to_response), from what was read off a request that is gone
    /// by the time the rejection is answered (a timeout, say): whether it was gRPC, and its id.
    pub fn response<B>(
        &self,
        grpc: bool,
        request_id: Option<&RequestId>,
    ) -> Response<RejectBody<B>> {
        if grpc {
            self.grpc_response()
        } else {
            self.http_response(request_id)
        }
    }

    /// The HTTP form: status, headers and a JSON error body.
    pub fn http_response<B>(&self, request_id: Option<&RequestId>) -> Response<RejectBody<B>> {
        let mut body = serde_json::json!({
            "error": { "code": self.code, "message": self.message },
        });
        if let Some(id) = request_id {
            body["request_id"] = id.as_str().into();
        }
        let mut response = Response::new(RejectBody::full(body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.extend_headers(headers);
        response
    }

    /// The gRPC form: a trailers-only response carrying `grpc-status` and `grpc-message`.
    pub fn grpc_response<B>(&self) -> Response<RejectBody<B>> {
        let mut response = Response::new(RejectBody::empty());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(crate::grpc::GRPC_STATUS, self.grpc_code.header_value());
        headers.insert("grpc-message", grpc::encode_message(&self.message));
        self.extend_headers(headers);
        response
    }

    fn extend_headers(&self, headers: &mut HeaderMap) {
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn rejection() -> Rejection {
        Rejection::new(StatusCode::TOO_MANY_REQUESTS, grpc::Code::ResourceExhausted)
            .code("rate_limited")
            .message("too many requests")
            .retry_after(Duration::from_millis(1500))
            .header(
                HeaderName::from_static("ratelimit"),
                HeaderValue::from_static("\"default\";r=0;t=2"),
            )
    }

    #[tokio::test]
    async fn http_requests_get_status_headers_and_json() {
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(RequestId::new(HeaderValue::from_static("id-1")).unwrap());
        let response: Response<RejectBody<http_body_util::Empty<bytes::Bytes>>> =
            rejection().to_response(&request);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "2");
        assert_eq!(response.headers()["ratelimit"], "\"default\";r=0;t=2");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "error": {"code": "rate_limited", "message": "too many requests"},
                "request_id": "id-1",
            })
        );
    }

    #[tokio::test]
    async fn grpc_requests_get_a_trailers_only_status() {
        let request = Request::builder()
            .header(CONTENT_TYPE, "application/grpc+proto")
            .body(())
            .unwrap();
        let response: Response<RejectBody<http_body_util::Empty<bytes::Bytes>>> =
            rejection().to_response(&request);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "8");
        assert_eq!(response.headers()["grpc-message"], "too many requests");
        assert_eq!(response.headers()["retry-after"], "2");
        assert!(
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .is_empty()
        );
    }

    #[test]
    fn defaults_come_from_the_status() {
        let r = Rejection::new(StatusCode::SERVICE_UNAVAILABLE, grpc::Code::Unavailable);
        assert_eq!(r.error_code(), "service_unavailable");
        assert_eq!(r.error_message(), "Service Unavailable");
    }
}
