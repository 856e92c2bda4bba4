//! The little of gRPC that HTTP-level layers need: recognising a gRPC request and the status codes.

use http::{HeaderMap, HeaderName, HeaderValue, header::CONTENT_TYPE};

/// The `grpc-status` header or trailer, named once: a `HeaderMap` lookup by `&str` parses the name
/// on every call.
pub(crate) const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// `true` when the request's content type is `application/grpc` or `application/grpc+<codec>`.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|ct| is_grpc_type(ct.as_bytes()))
}

/// `true` for `application/grpc` and `application/grpc+<codec>`, parameters allowed, in any
/// case (a media type's name is case-insensitive).
pub(crate) fn is_grpc_type(content_type: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    content_type.len() >= GRPC.len()
        && content_type[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(content_type.get(GRPC.len()), None | Some(b'+' | b';'))
}

/// gRPC status codes, as numbered by the gRPC specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)] // the names are the specification's
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// The code carried by a `grpc-status` header value, if it is a known one.
    pub fn from_header(value: &HeaderValue) -> Option<Self> {
        let n: u8 = value.to_str().ok()?.parse().ok()?;
        Self::from_u8(n)
    }

    /// The code numbered `n`, if there is one.
    pub fn from_u8(n: u8) -> Option<Self> {
        use Code::*;
        const ALL: [Code; 17] = [
            Ok,
            Cancelled,
            Unknown,
            InvalidArgument,
            DeadlineExceeded,
            NotFound,
            AlreadyExists,
            PermissionDenied,
            ResourceExhausted,
            FailedPrecondition,
            Aborted,
            OutOfRange,
            Unimplemented,
            Internal,
            Unavailable,
            DataLoss,
            Unauthenticated,
        ];
        ALL.get(n as usize).copied()
    }

    /// The code a gRPC client reads from an answer with HTTP `status` other than 200 and no
    /// `grpc-status` (a proxy's or a load balancer's), per gRPC's HTTP to gRPC status mapping:
    /// 400 `Internal`, 401 `Unauthenticated`, 403 `PermissionDenied`, 404 `Unimplemented`,
    /// 429, 502, 503 and 504 `Unavailable`, any other `Unknown`.
    ///
    /// ```
    /// use espresso_common::grpc::Code;
    /// use http::StatusCode;
    ///
    /// assert_eq!(Code::from_http(StatusCode::SERVICE_UNAVAILABLE), Code::Unavailable);
    /// assert_eq!(Code::from_http(StatusCode::IM_A_TEAPOT), Code::Unknown);
    /// ```
    pub fn from_http(status: http::StatusCode) -> Self {
        match status.as_u16() {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    /// The `grpc-status` header value for this code.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from(self as u16)
    }
}

/// Percent-encodes a `grpc-message` as the gRPC HTTP/2 protocol asks: every byte outside
/// printable ASCII, and `%` itself.
pub fn encode_message(message: &str) -> HeaderValue {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::try_from(out).expect("percent-encoded text is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_grpc_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_grpc(&h));
        for (ct, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/GRPC", true),
            ("Application/gRPC+proto; charset=utf-8", true),
            ("application/grpc-web", false),
            ("application/json", false),
            ("application/grpcx", false),
        ] {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_grpc(&h), grpc, "{ct}");
        }
    }

    #[test]
    fn codes_round_trip_through_headers() {
        for n in 0..=16u8 {
            let code = Code::from_u8(n).unwrap();
            assert_eq!(Code::from_header(&code.header_value()), Some(code));
        }
        assert_eq!(Code::from_u8(17), None);
        assert_eq!(Code::from_header(&HeaderValue::from_static("x")), None);
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(encode_message("rate limited"), "rate limited");
        assert_eq!(encode_message("100% 限"), "100%25 %E9%99%90");
        assert_eq!(encode_message("a\r\nb"), "a%0D%0Ab");
    }
}
