//! The request-id layer inside this one: the first answer that carries `x-request-id` for a
//! request that came without a `RequestId` is named in one WARN (its own process: the check is
//! per process).

mod support;

use bytes::Bytes;
use espresso_request_id::RequestIdLayer;
use espresso_slow_call::{SlowCallLayer, SlowCallRecorder};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use std::{convert::Infallible, time::Duration};
use support::Lines;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tracing_subscriber::prelude::*;

async fn send_two(outside: bool) {
    let handler = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::from("ok")))
    });
    let (first, second) = if outside {
        (Some(RequestIdLayer::new()), None)
    } else {
        (None, Some(RequestIdLayer::new()))
    };
    let service = ServiceBuilder::new()
        .option_layer(first)
        .layer(SlowCallLayer::new(Duration::from_secs(1)))
        .option_layer(second)
        .service(handler);
    for _ in 0..2 {
        let response = service
            .clone()
            .oneshot(Request::new(Full::default()))
            .await
            .unwrap();
        assert!(response.headers().contains_key("x-request-id"));
        response.into_body().collect().await.unwrap();
    }
}

#[tokio::test]
async fn a_request_id_layer_inside_is_named_once_and_one_outside_never() {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::registry()
        .with(SlowCallRecorder::new())
        .with(lines.fmt_layer());
    let _guard = tracing::subscriber::set_default(subscriber);
    let inside = |text: &str| text.matches("RequestIdLayer seems to run inside").count();

    send_two(true).await;
    assert_eq!(inside(&lines.text()), 0, "{}", lines.text());
    send_two(false).await;
    send_two(false).await;
    let text = lines.text();
    assert_eq!(inside(&text), 1, "{text}");
    assert!(text.contains("WARN"), "{text}");
}
