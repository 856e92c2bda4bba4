//! The server's setup: the recorder behind its own filter and logs at WARN, so no layer wants
//! the requests' root spans. None is created, and the slow-call tree is whole all the same.
//!
//! One test in its own binary: it installs the global subscriber, as a server does.

mod support;

use bytes::Bytes;
use espresso_slow_call::{SlowCallLayer, SlowCallRecorder};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use std::{convert::Infallible, time::Duration};
use support::Events;
use tokio::time::{advance, sleep};
use tower::{Layer, ServiceExt, service_fn};
use tracing::{Span, instrument};
use tracing_subscriber::{filter::LevelFilter, prelude::*};

const MS: Duration = Duration::from_millis(1);

#[instrument]
async fn cache() {
    advance(2 * MS).await;
}

#[instrument]
async fn classifier() {
    sleep(10 * MS).await;
}

#[tokio::test(start_paused = true)]
async fn the_tree_needs_no_root_span() {
    let events = Events::default();
    tracing_subscriber::registry()
        .with(SlowCallRecorder::new().filtered(LevelFilter::INFO))
        .with(events.clone().with_filter(LevelFilter::WARN))
        .init();
    let app = service_fn(|_: Request<Full<Bytes>>| async {
        let in_root_span = !Span::current().is_none();
        cache().await;
        classifier().await;
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::from(format!(
            "{in_root_span}"
        ))))
    });
    let service = SlowCallLayer::new(5 * MS).layer(app);

    let response = service
        .oneshot(Request::post("/v1/filter").body(Full::default()).unwrap())
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "false", "no root span");
    let events = events.take();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].get("duration_ms"), "12.0");
    assert_eq!(
        events[0].get("tree"),
        "cache 2.0ms (busy 2.0ms), classifier 10.0ms (busy 0µs)"
    );
}
