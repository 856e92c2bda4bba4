//! A subscriber without `SlowCallRecorder`: the slow-call lines carry an empty tree, and the
//! first one is preceded by one WARN naming the fix (its own process: the check is per process).

mod support;

use bytes::Bytes;
use espresso_slow_call::SlowCallLayer;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use std::{convert::Infallible, time::Duration};
use support::Lines;
use tower::{Layer, Service, ServiceExt, service_fn};
use tracing_subscriber::prelude::*;

#[tokio::test(start_paused = true)]
async fn without_the_recorder_the_first_slow_call_says_how_to_add_it_once() {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::registry().with(lines.fmt_layer());
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut service = SlowCallLayer::new(Duration::from_millis(10)).layer(service_fn(
        |_: Request<Full<Bytes>>| async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::from("ok")))
        },
    ));
    for _ in 0..2 {
        let response = service
            .ready()
            .await
            .unwrap()
            .call(Request::new(Full::default()))
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
    }
    let log = lines.text();
    assert_eq!(
        log.matches("slow call: GET / took 30.0ms").count(),
        2,
        "{log}"
    );
    assert_eq!(
        log.matches("no SlowCallRecorder is in the tracing subscriber")
            .count(),
        1,
        "{log}"
    );
}
