//! Real round trips through plain hyper: hyper-util's HTTP/1 + HTTP/2 server running a Tower
//! stack through `TowerToHyperService`, and hyper-util's client over both protocols.

use bytes::Bytes;
use espresso_request_id::{RequestId, RequestIdLayer, current};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use std::{convert::Infallible, net::SocketAddr};
use tokio::net::TcpListener;
use tower::{Layer, service_fn};

/// Echoes `current()` in the body; `/teapot` answers 418.
async fn handler(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let ext = request.extensions().get::<RequestId>().cloned();
    assert_eq!(ext, current());
    let mut response = Response::new(Full::from(
        current().map(|id| id.to_string()).unwrap_or_default(),
    ));
    if request.uri().path() == "/teapot" {
        *response.status_mut() = StatusCode::IM_A_TEAPOT;
    }
    Ok(response)
}

async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TowerToHyperService::new(RequestIdLayer::new().layer(service_fn(handler)));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = service.clone();
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn call(
    addr: SocketAddr,
    http2: bool,
    path: &str,
    id: Option<&'static str>,
) -> (StatusCode, String, String) {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build_http::<Empty<Bytes>>();
    let mut request = Request::get(format!("http://{addr}{path}"))
        .body(Empty::new())
        .unwrap();
    if let Some(id) = id {
        request
            .headers_mut()
            .insert("x-request-id", HeaderValue::from_static(id));
    }
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let header = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, header, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn http1_and_http2_round_trips() {
    let addr = serve().await;
    for http2 in [false, true] {
        let (status, header, body) = call(addr, http2, "/", Some("hyper-1")).await;
        assert_eq!(
            (status, header.as_str(), body.as_str()),
            (StatusCode::OK, "hyper-1", "hyper-1")
        );

        let (_, header, body) = call(addr, http2, "/", None).await;
        assert_eq!(header.len(), 36);
        assert_eq!(header, body);

        let (_, header, body) = call(addr, http2, "/", Some("not valid!")).await;
        assert_ne!(header, "not valid!");
        assert_eq!(header, body);
    }
}

#[tokio::test]
async fn error_statuses_carry_the_id() {
    let addr = serve().await;
    for http2 in [false, true] {
        let (status, header, _) = call(addr, http2, "/teapot", Some("tea-1")).await;
        assert_eq!(
            (status, header.as_str()),
            (StatusCode::IM_A_TEAPOT, "tea-1")
        );
    }
}
