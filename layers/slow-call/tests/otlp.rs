//! OTLP export end to end: the spans of a request that came in with a W3C `traceparent` reach a
//! test collector on 127.0.0.1, once over gRPC (a tonic server implementing the collector's
//! `TraceService` from opentelemetry-proto) and once over HTTP/protobuf (an axum route).
//!
//! The runtime has worker threads because the exporter sends from its own thread through a
//! channel that lives on the runtime; the request itself is driven on the test's thread, where
//! the subscriber is installed.

use axum::{Router, body::Bytes, routing::post};
use espresso_common::RequestId;
use espresso_slow_call::{
    SlowCallLayer, SlowCallRecorder,
    otel::{self, Otel, OtlpConfig, Protocol},
};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{KeyValue, any_value::Value},
    trace::v1::Span,
};
use prost::Message;
use std::{convert::Infallible, net::SocketAddr, time::Duration};
use tokio::{net::TcpListener, sync::mpsc};
use tonic::transport::server::TcpIncoming;
use tower::{ServiceExt, service_fn};
use tracing::instrument;
use tracing_subscriber::prelude::*;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const REMOTE_PARENT: &str = "00f067aa0ba902b7";

struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn grpc_collector() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    (addr, rx)
}

async fn http_collector() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| async move {
            if let Ok(request) = ExportTraceServiceRequest::decode(body) {
                let _ = tx.send(request);
            }
            let reply = ExportTraceServiceResponse::default().encode_to_vec();
            ([("content-type", "application/x-protobuf")], reply)
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

/// The handler calls a downstream service: the traceparent it would send is its response.
#[instrument]
async fn handler() -> String {
    let mut outgoing = HeaderMap::new();
    otel::inject(&mut outgoing);
    outgoing["traceparent"].to_str().unwrap().to_owned()
}

/// Sends one request with a remote parent through `SlowCallLayer` (behind `RequestIdLayer`, as
/// the docs order them, when `request_id_layer`), returns the outgoing traceparent the handler
/// produced, and flushes the exporter.
async fn traced_request(otel: Otel, request_id_layer: bool) -> String {
    let subscriber = tracing_subscriber::registry()
        .with(SlowCallRecorder::new())
        .with(otel.layer());
    let outgoing = {
        let _guard = tracing::subscriber::set_default(subscriber);
        let service = tower::ServiceBuilder::new()
            .option_layer(request_id_layer.then(espresso_request_id::RequestIdLayer::new))
            .layer(SlowCallLayer::new(Duration::ZERO))
            .service(service_fn(|_: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::<Bytes>::from(handler().await)))
            }));
        let mut request = Request::post("/v1/filter").body(Full::default()).unwrap();
        let traceparent = format!("00-{TRACE_ID}-{REMOTE_PARENT}-01");
        request
            .headers_mut()
            .insert("traceparent", HeaderValue::try_from(traceparent).unwrap());
        if request_id_layer {
            request
                .headers_mut()
                .insert("x-request-id", HeaderValue::from_static("otel-1"));
        } else {
            let id = RequestId::new(HeaderValue::from_static("otel-1")).unwrap();
            request.extensions_mut().insert(id);
        }
        let response = service.oneshot(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    };
    tokio::task::spawn_blocking(move || otel.shutdown())
        .await
        .unwrap()
        .unwrap();
    outgoing
}

/// Receives exports until spans named `names` all arrived.
async fn spans(
    rx: &mut mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
    names: &[&str],
) -> (Vec<Span>, Vec<KeyValue>) {
    let mut spans = Vec::new();
    let mut resource = Vec::new();
    let receive = async {
        while !names
            .iter()
            .all(|n| spans.iter().any(|s: &Span| s.name == *n))
        {
            let export = rx.recv().await.expect("collector is running");
            for rs in export.resource_spans {
                resource.extend(rs.resource.into_iter().flat_map(|r| r.attributes));
                spans.extend(rs.scope_spans.into_iter().flat_map(|ss| ss.spans));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), receive)
        .await
        .expect("spans were exported");
    (spans, resource)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_grpc_collector_under_the_remote_parent() {
    let (addr, mut rx) = grpc_collector().await;
    let config = OtlpConfig::new(format!("http://{addr}"), Protocol::Grpc).service_name("sc-test");
    let outgoing = traced_request(Otel::init(config).unwrap(), true).await;

    let (spans, resource) = spans(&mut rx, &["request", "handler"]).await;
    // One trace: the request-id layer's span, opened before the traceparent is read, is left
    // out rather than exported as a trace of its own.
    for span in &spans {
        assert_eq!(hex(&span.trace_id), TRACE_ID, "{}", span.name);
    }
    assert_eq!(spans.iter().filter(|s| s.name == "request").count(), 1);
    assert_eq!(attr(&resource, "service.name"), Some("sc-test"));
    let root = spans.iter().find(|s| s.name == "request").unwrap();
    let handler = spans.iter().find(|s| s.name == "handler").unwrap();

    // The root span continues the caller's trace and carries both ids.
    assert_eq!(hex(&root.trace_id), TRACE_ID);
    assert_eq!(hex(&root.parent_span_id), REMOTE_PARENT);
    assert_eq!(attr(&root.attributes, "request_id"), Some("otel-1"));
    assert_eq!(attr(&root.attributes, "trace_id"), Some(TRACE_ID));
    assert!(root.events.iter().any(|e| e.name.starts_with("slow call")));

    // The handler is the root's child, and the traceparent it sends names the handler's span.
    assert_eq!(hex(&handler.trace_id), TRACE_ID);
    assert_eq!(handler.parent_span_id, root.span_id);
    assert_eq!(
        outgoing,
        format!("00-{TRACE_ID}-{}-01", hex(&handler.span_id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_http_collector() {
    let (addr, mut rx) = http_collector().await;
    let config = OtlpConfig::new(format!("http://{addr}/v1/traces"), Protocol::HttpProtobuf);
    traced_request(Otel::init(config).unwrap(), false).await;

    let (spans, _) = spans(&mut rx, &["request", "handler"]).await;
    let root = spans.iter().find(|s| s.name == "request").unwrap();
    assert_eq!(hex(&root.trace_id), TRACE_ID);
    assert_eq!(attr(&root.attributes, "request_id"), Some("otel-1"));
}
