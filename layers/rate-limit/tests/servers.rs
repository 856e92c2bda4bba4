//! Real round trips on 127.0.0.1 through the three ways a layer is mounted: an axum `Router`,
//! tonic's `Server::builder().layer`, and plain hyper. Quotas are per minute, so nothing here
//! depends on how fast the machine is.

use bytes::Bytes;
use espresso_rate_limit::{Global, PeerIp, Quota, RateLimitLayer};
use http::{Request, Response, StatusCode};
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
use tower::{Layer, ServiceBuilder, service_fn};

async fn get(addr: SocketAddr, path: &str, http2: bool) -> Response<Bytes> {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build_http::<Empty<Bytes>>();
    let request = Request::get(format!("http://{addr}{path}"))
        .body(Empty::new())
        .unwrap();
    let (parts, body) = client.request(request).await.unwrap().into_parts();
    Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
}

#[cfg(feature = "axum")]
mod axum_router {
    use super::*;
    use axum::{Router, routing::get as route_get};
    use espresso_rate_limit::Route;

    async fn serve() -> SocketAddr {
        let app = Router::new()
            .route("/users/{id}", route_get(|| async { "user" }))
            .route_layer(RateLimitLayer::new(Quota::per_minute(2)).key(Route::new()))
            .route("/ip", route_get(|| async { "ip" }))
            .layer(RateLimitLayer::new(Quota::per_minute(3)).key(PeerIp::new()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap()
        });
        addr
    }

    #[tokio::test]
    async fn router_limits_per_client_ip_from_connect_info() {
        let addr = serve().await;
        for _ in 0..3 {
            assert_eq!(get(addr, "/ip", false).await.status(), StatusCode::OK);
        }
        let refused = get(addr, "/ip", false).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], "20");
        assert_eq!(
            refused.headers()["ratelimit-policy"],
            "\"default\";q=3;w=60"
        );
        let json: serde_json::Value = serde_json::from_slice(refused.body()).unwrap();
        assert_eq!(json["error"]["code"], "rate_limited");
    }

    #[tokio::test]
    async fn an_app_served_without_connect_info_answers_500_naming_the_fix() {
        let app = Router::new()
            .route("/", route_get(|| async { "hi" }))
            .layer(RateLimitLayer::new(Quota::per_minute(100)).key(PeerIp::new()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The mistake: no `into_make_service_with_connect_info`, so no peer address.
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        for _ in 0..2 {
            let response = get(addr, "/", false).await;
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let json: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(json["error"]["code"], "rate_limit_key_missing");
            let message = json["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("into_make_service_with_connect_info"),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn route_layer_keys_by_matched_path() {
        let addr = serve().await;
        assert_eq!(get(addr, "/users/1", false).await.status(), StatusCode::OK);
        assert_eq!(get(addr, "/users/2", true).await.status(), StatusCode::OK);
        // `/users/{id}` is one route: the third user shares the bucket.
        assert_eq!(
            get(addr, "/users/3", false).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

// Without the `tonic` feature the peer address is not read: such a server is refused 500.
#[cfg(feature = "tonic")]
mod tonic_server {
    use super::*;
    use tonic::{Code, transport::server::TcpIncoming};
    use tonic_health::{
        ServingStatus,
        pb::{HealthCheckRequest, health_client::HealthClient},
    };

    async fn serve() -> SocketAddr {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("espresso.Test", ServingStatus::Serving)
            .await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            // With feature `tonic` the key is the peer from `TcpConnectInfo`; without it the
            // requests have no key and share one bucket: either way one client gets 2.
            tonic::transport::Server::builder()
                .layer(RateLimitLayer::new(Quota::per_minute(2)).key(PeerIp::new()))
                .add_service(health)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await
                .unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn grpc_clients_get_resource_exhausted() {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", serve().await))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HealthClient::new(channel);
        let check = || {
            tonic::Request::new(HealthCheckRequest {
                service: "espresso.Test".into(),
            })
        };
        client.check(check()).await.unwrap();
        client.check(check()).await.unwrap();
        let status = client.check(check()).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "too many requests");
        assert_eq!(status.metadata().get("retry-after").unwrap(), "30");
        assert!(status.metadata().get("ratelimit").is_some());
    }
}

mod plain_hyper {
    use super::*;

    async fn serve() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limited = RateLimitLayer::new(Quota::per_minute(2).burst(1))
            .key(PeerIp::new())
            .layer(service_fn(|_: Request<Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hi"))))
            }));
        tokio::spawn(async move {
            loop {
                let (stream, peer) = listener.accept().await.unwrap();
                let limited = limited.clone();
                // Plain hyper has no connect info: put the peer address in the extensions.
                // `TowerToHyperService` drives the stack to readiness before each call.
                let service = ServiceBuilder::new()
                    .map_request(move |mut request: Request<Incoming>| {
                        request.extensions_mut().insert(peer);
                        request
                    })
                    .service(limited.clone());
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                        .await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn hyper_http1_and_http2() {
        let addr = serve().await;
        let ok = get(addr, "/", false).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.body(), "hi");
        let refused = get(addr, "/", true).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], "30");
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_is_usable_without_a_server() {
        let limiter = RateLimitLayer::new(Quota::per_minute(1))
            .key(Global::new())
            .limiter();
        assert!(limiter.check(&()).await.is_allowed());
        let refused = limiter.check(&()).await;
        assert_eq!(
            refused.retry_after(),
            Some(std::time::Duration::from_secs(60))
        );
        assert_eq!(refused.remaining(), 0);
    }
}
