//! A subscriber whose global filter is at WARN: it drops the requests' root spans (INFO, target
//! `espresso_slow_call`) and the handlers' spans, so the slow-call lines carry an empty tree and,
//! with `otel`, an incoming `traceparent` is lost. The first request says so in one WARN naming
//! the fix.
//!
//! One test in its own binary: it installs the global subscriber, as a server does, and the
//! warning is once per process. Time is paused, so the handler's sleep takes exactly 30 ms.

mod support;

use bytes::Bytes;
use espresso_slow_call::{SlowCallLayer, SlowCallRecorder};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use std::{convert::Infallible, time::Duration};
use support::Lines;
use tower::{Layer, Service, ServiceExt, service_fn};
use tracing_subscriber::{filter::LevelFilter, prelude::*};

#[tracing::instrument]
async fn handler() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

#[tokio::test(start_paused = true)]
async fn a_filter_that_drops_the_root_spans_is_named_once_with_its_fix() {
    let lines = Lines::default();
    tracing_subscriber::registry()
        .with(SlowCallRecorder::new())
        .with(lines.fmt_layer())
        .with(LevelFilter::WARN)
        .init();
    let mut service = SlowCallLayer::new(Duration::from_millis(10)).layer(service_fn(
        |_: Request<Full<Bytes>>| async {
            handler().await;
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::from("ok")))
        },
    ));
    for _ in 0..2 {
        let request = Request::get("/")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(Full::default())
            .unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let log = lines.text();
    assert_eq!(log.matches(r#"took 30.0ms"#).count(), 2, "{log}");
    assert_eq!(log.matches(r#"tree="""#).count(), 2, "{log}");
    let warning = "the tracing filter drops target espresso_slow_call at INFO";
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert!(
        log.contains("SlowCallRecorder::new().filtered(LevelFilter::INFO)"),
        "{log}"
    );
    assert_eq!(
        log.matches("incoming traceparent is not continued").count(),
        usize::from(cfg!(feature = "otel")),
        "{log}"
    );
    // The warning comes with the first request, before its slow-call line.
    assert!(log.find(warning) < log.find("slow call:"), "{log}");
}
