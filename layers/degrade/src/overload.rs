//! What tells the limit that the primary service is overloaded.

use espresso_common::{classify::ServerErrorsAsFailures, grpc::Code};
use http::StatusCode;

/// The degrade layer's default classifier: what tells a limit that the service is overloaded (an
/// error, HTTP 429, 503 or 504, gRPC `RESOURCE_EXHAUSTED`, `UNAVAILABLE` or `DEADLINE_EXCEEDED`,
/// from the head or the trailers). Any other [`Classify`](espresso_common::classify::Classify)
/// policy can take its place with [`DegradeLayer::classify`](crate::DegradeLayer::classify).
///
/// ```
/// use espresso_common::grpc::Code;
/// use http::StatusCode;
///
/// let signals = espresso_degrade::overload_signals();
/// assert!(signals.is_failure_status(StatusCode::TOO_MANY_REQUESTS));
/// assert!(!signals.is_failure_status(StatusCode::INTERNAL_SERVER_ERROR));
/// assert!(signals.is_failure_code(Code::ResourceExhausted));
/// assert!(!signals.is_failure_code(Code::Internal));
/// ```
pub fn overload_signals() -> ServerErrorsAsFailures {
    ServerErrorsAsFailures::new()
        .grpc_failures([
            Code::ResourceExhausted,
            Code::Unavailable,
            Code::DeadlineExceeded,
        ])
        .http_failures(|status| {
            matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            )
        })
}
