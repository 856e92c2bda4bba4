//! A real tonic service whose streamed answer fails in its trailers.

use tonic::{
    Request, Response, Status,
    codegen::tokio_stream::{self, Iter},
};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_server::Health,
};

/// A gRPC health service (`grpc.health.v1.Health`, serve it with
/// `tonic_health::pb::health_server::HealthServer::new(FailsInTrailers)`) whose `Check` answers
/// SERVING with OK in the trailers, and whose `Watch` stream sends two SERVING messages and then
/// ends with `UNAVAILABLE`: the status travels in the trailers, after the messages, so the
/// response head looks healthy.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailsInTrailers;

/// The message `Watch` ends with.
pub const TRAILERS_MESSAGE: &str = "the store went away mid-stream";

/// The stream of [`FailsInTrailers`]'s `Watch`.
pub type WatchStream = Iter<std::vec::IntoIter<Result<HealthCheckResponse, Status>>>;

/// The message both methods send: SERVING.
pub fn serving() -> HealthCheckResponse {
    HealthCheckResponse {
        status: ServingStatus::Serving as i32,
    }
}

/// A request for the server as a whole (the empty service name).
pub fn health_request() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

#[tonic::async_trait]
impl Health for FailsInTrailers {
    async fn check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(serving()))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<WatchStream>, Status> {
        Ok(Response::new(tokio_stream::iter(vec![
            Ok(serving()),
            Ok(serving()),
            Err(Status::unavailable(TRAILERS_MESSAGE)),
        ])))
    }
}
