//! A gRPC failure sent in the trailers, after streamed messages, tells the limit of overload.
//!
//! The backend is a tonic `HealthServer` whose `Watch` stream sends two messages and then ends
//! with `UNAVAILABLE` (`espresso_test_support::FailsInTrailers`): the status travels in the
//! trailers, so the response head looked healthy.
//! The degrade layer sits inside the tonic `Server` and takes its sample when the body ends.
//! Everything runs on 127.0.0.1.

use espresso_degrade::{DegradeLayer, limit::Aimd};
use espresso_test_support::{
    FailsInTrailers, TRAILERS_MESSAGE, health_client_of, health_request, serving,
};
use tonic::{Code, transport::Server};
use tonic_health::pb::health_server::HealthServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_in_the_trailers_after_streamed_messages_is_an_overload_signal() {
    // AIMD multiplies its limit by 0.9 on each overload signal.
    let layer = DegradeLayer::new(Aimd::new().initial_limit(10).min_limit(1));
    let mut client = health_client_of(|incoming| {
        Server::builder()
            .layer(layer.clone())
            .add_service(HealthServer::new(FailsInTrailers))
            .serve_with_incoming(incoming)
    })
    .await;

    // A unary call ends with OK in its trailers: no overload.
    client.check(health_request()).await.unwrap();
    assert_eq!(layer.current_limit(), 10);
    assert_eq!(layer.inflight(), 0);

    let mut stream = client.watch(health_request()).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap(), Some(serving()));
    assert_eq!(stream.message().await.unwrap(), Some(serving()));
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), TRAILERS_MESSAGE);
    assert_eq!(
        layer.current_limit(),
        9,
        "the failure in the trailers was a sample"
    );
    assert_eq!(layer.inflight(), 0);
}
