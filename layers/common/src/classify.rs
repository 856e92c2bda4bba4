//! What counts as a failed call.
//!
//! Breakers, metrics and adaptive limits all need to decide whether a finished call succeeded.
//! That decision is a policy, [`Classify`]: [`ServerErrorsAsFailures`] is the usual one, and any
//! closure `Fn(Result<&Res, &E>) -> Outcome` is one too.

use crate::grpc::Code;
use http::Response;

/// How a finished call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The call succeeded.
    Success,
    /// The call failed and counts against the callee.
    Failure,
    /// The call says nothing about the callee's health (a client error, a cancelled call).
    Ignored,
}

/// Decides how a call's result counts.
pub trait Classify<Res, E> {
    /// Classifies one finished call.
    fn classify(&self, result: Result<&Res, &E>) -> Outcome;
}

impl<F, Res, E> Classify<Res, E> for F
where
    F: Fn(Result<&Res, &E>) -> Outcome,
{
    fn classify(&self, result: Result<&Res, &E>) -> Outcome {
        self(result)
    }
}

/// Counts an `Err`, an HTTP 5xx and a gRPC status from a chosen set as failures.
///
/// gRPC statuses are read from the response headers, where a trailers-only response carries them.
/// The default set is `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `INTERNAL`, `UNKNOWN` and `DATA_LOSS`:
/// the codes that say the server, not the request, is at fault.
#[derive(Debug, Clone)]
pub struct ServerErrorsAsFailures {
    grpc_failures: u32,
}

impl ServerErrorsAsFailures {
    /// The default failure set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts exactly these gRPC codes as failures.
    pub fn grpc_codes(codes: impl IntoIterator<Item = Code>) -> Self {
        let grpc_failures = codes.into_iter().fold(0, |set, c| set | 1 << c as u32);
        Self { grpc_failures }
    }

    /// `true` when `code` counts as a failure.
    pub fn is_failure_code(&self, code: Code) -> bool {
        self.grpc_failures & (1 << code as u32) != 0
    }
}

impl Default for ServerErrorsAsFailures {
    fn default() -> Self {
        Self::grpc_codes([
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Internal,
            Code::Unknown,
            Code::DataLoss,
        ])
    }
}

impl<B, E> Classify<Response<B>, E> for ServerErrorsAsFailures {
    fn classify(&self, result: Result<&Response<B>, &E>) -> Outcome {
        let Ok(response) = result else {
            return Outcome::Failure;
        };
        if response.status().is_server_error() {
            return Outcome::Failure;
        }
        match response
            .headers()
            .get("grpc-status")
            .and_then(Code::from_header)
        {
            Some(code) if self.is_failure_code(code) => Outcome::Failure,
            _ => Outcome::Success,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn response(status: StatusCode, grpc: Option<&'static str>) -> Response<()> {
        let mut r = Response::builder().status(status);
        if let Some(code) = grpc {
            r = r.header("grpc-status", code);
        }
        r.body(()).unwrap()
    }

    #[test]
    fn server_errors_and_grpc_failures_fail() {
        let c = ServerErrorsAsFailures::default();
        let check = |r: Result<&Response<()>, &()>| c.classify(r);
        assert_eq!(check(Err(&())), Outcome::Failure);
        assert_eq!(check(Ok(&response(StatusCode::OK, None))), Outcome::Success);
        assert_eq!(
            check(Ok(&response(StatusCode::NOT_FOUND, None))),
            Outcome::Success
        );
        assert_eq!(
            check(Ok(&response(StatusCode::BAD_GATEWAY, None))),
            Outcome::Failure
        );
        assert_eq!(
            check(Ok(&response(StatusCode::OK, Some("14")))),
            Outcome::Failure
        );
        assert_eq!(
            check(Ok(&response(StatusCode::OK, Some("3")))),
            Outcome::Success
        );
    }

    #[test]
    fn grpc_failure_set_is_configurable() {
        let c = ServerErrorsAsFailures::grpc_codes([Code::ResourceExhausted]);
        assert!(c.is_failure_code(Code::ResourceExhausted));
        assert!(!c.is_failure_code(Code::Unavailable));
    }

    #[test]
    fn closures_are_policies() {
        let only_errors = |r: Result<&Response<()>, &()>| match r {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        };
        let r = response(StatusCode::INTERNAL_SERVER_ERROR, None);
        assert_eq!(only_errors.classify(Ok(&r)), Outcome::Success);
    }
}
