//! A real tonic service whose streamed answer fails in its trailers.

use std::future::Future;
use tonic::{
    Request, Response, Status,
    codegen::tokio_stream::{self, Iter},
    transport::{Channel, Endpoint, server::TcpIncoming},
};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_client::HealthClient, health_server::Health,
};

/// Serves a tonic server on a free port of 127.0.0.1 in a task of its own and returns a health
/// client connected to it. `serve` gets the listener, e.g.
/// `|incoming| Server::builder().layer(layer).add_service(HealthServer::new(FailsInTrailers))
/// .serve_with_incoming(incoming)`, so the layer under test sits inside a real tonic server.
pub async fn health_client_of<F, Fut>(serve: F) -> HealthClient<Channel>
where
    F: FnOnce(TcpIncoming) -> Fut,
    Fut: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on 127.0.0.1");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let server = serve(TcpIncoming::from(listener));
    tokio::spawn(async move { server.await.expect("the gRPC server runs") });
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect()
        .await
        .expect("the gRPC server accepts connections");
    HealthClient::new(channel)
}

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
