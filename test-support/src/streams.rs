//! A service answering with a gRPC head and a body the test feeds by hand: a stream whose
//! messages and trailers come when the test says, for the layers that decide at its end.

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{
    BodyExt,
    channel::{Channel, Sender},
};
use std::{convert::Infallible, fmt::Debug, time::Duration};
use tokio::sync::mpsc;
use tower_service::Service;

/// The body of [`streaming_backend`]'s answers.
pub type StreamBody = Channel<Bytes, Infallible>;

/// What feeds one answer's body: messages, then trailers.
pub type StreamSender = Sender<Bytes, Infallible>;

/// A service that answers a request whose body is `"stream"` with a gRPC head
/// (`content-type: application/grpc`, no `grpc-status`: the status comes in the trailers) and
/// a body whose sender it hands to the receiver; any other request gets a plain `200` whose
/// body ends when its sender, dropped, goes away.
pub fn streaming_backend() -> (
    impl Service<Request<&'static str>, Response = Response<StreamBody>, Error = Infallible> + Clone,
    mpsc::UnboundedReceiver<StreamSender>,
) {
    let (senders, received) = mpsc::unbounded_channel();
    let service = tower::service_fn(move |request: Request<&'static str>| {
        let (sender, body) = Channel::new(4);
        let mut response = Response::new(body);
        if *request.body() == "stream" {
            // the test may have gone: then the stream just never ends
            let _ = senders.send(sender);
            response
                .headers_mut()
                .insert("content-type", "application/grpc".parse().expect("valid"));
        }
        async move { Ok(response) }
    });
    (service, received)
}

/// Opens a stream through `service`, a stack over [`streaming_backend`]: the answer, and the
/// sender that feeds its body.
pub async fn open_stream<S, B>(
    service: &S,
    senders: &mut mpsc::UnboundedReceiver<StreamSender>,
) -> (Response<B>, StreamSender)
where
    S: Service<Request<&'static str>, Response = Response<B>> + Clone,
    S::Error: Debug,
{
    let response = tower::ServiceExt::oneshot(service.clone(), Request::new("stream"))
        .await
        .expect("the stream is answered");
    let sender = senders
        .recv()
        .await
        .expect("the backend hands its sender over");
    (response, sender)
}

/// Trailers with `grpc-status: code`.
pub fn grpc_status(code: &str) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", code.parse().expect("digits"));
    trailers
}

/// Reads a stream as its caller does: `body` is read to its end on a task of its own while,
/// `after` it was opened (tokio time: paused in these tests), `sender` sends one message and
/// trailers with `grpc-status: code`, and goes.
pub async fn read_stream<B>(body: B, mut sender: StreamSender, after: Duration, code: &str)
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Debug + Send,
{
    let read = tokio::spawn(body.collect());
    tokio::time::advance(after).await;
    sender
        .send_data(Bytes::from_static(b"msg"))
        .await
        .expect("the body is read");
    sender
        .send_trailers(grpc_status(code))
        .await
        .expect("the body is read");
    drop(sender);
    read.await
        .expect("the read ends")
        .expect("the body ends well");
}
