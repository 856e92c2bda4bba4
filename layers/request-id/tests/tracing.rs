//! The id on tracing: a capturing subscriber records, for each event, the `request_id` values
//! of the spans around it and the names of those spans.

use espresso_request_id::{RequestIdLayer, RequestIdService};
use http::{HeaderValue, Request, Response};
use std::{
    convert::Infallible,
    fmt,
    sync::{Arc, Mutex},
};
use tower::{Layer, ServiceExt, service_fn};
// `oneshot` calls the service on its first poll, so `instrument` puts the layer's `call` (where
// it looks at the current span) inside `outer`, as a TraceLayer outside it would.
use tracing::{
    Event, Id, Instrument, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Record},
};
use tracing_subscriber::{layer::Context, prelude::*, registry::LookupSpan};

/// One event as seen by the subscriber.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    message: String,
    /// (span name, its `request_id` field if recorded), innermost first.
    spans: Vec<(String, Option<String>)>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Seen>>>);

struct RequestIdField(Option<String>);

struct FieldVisitor<'a> {
    name: &'static str,
    out: &'a mut Option<String>,
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == self.name {
            *self.out = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == self.name {
            *self.out = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut value = None;
        attrs.record(&mut FieldVisitor {
            name: "request_id",
            out: &mut value,
        });
        ctx.span(id)
            .unwrap()
            .extensions_mut()
            .insert(RequestIdField(value));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut extensions = span.extensions_mut();
        let field = extensions.get_mut::<RequestIdField>().unwrap();
        values.record(&mut FieldVisitor {
            name: "request_id",
            out: &mut field.0,
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut message = None;
        event.record(&mut FieldVisitor {
            name: "message",
            out: &mut message,
        });
        let spans = ctx
            .event_scope(event)
            .into_iter()
            .flatten()
            .map(|span| {
                let value = span
                    .extensions()
                    .get::<RequestIdField>()
                    .and_then(|f| f.0.clone());
                (span.name().to_owned(), value)
            })
            .collect();
        self.0.lock().unwrap().push(Seen {
            message: message.unwrap_or_default(),
            spans,
        });
    }
}

fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    (capture, guard)
}

fn handler()
-> impl tower::Service<Request<()>, Response = Response<()>, Error = Infallible, Future: Send> + Clone
{
    service_fn(|_: Request<()>| async {
        tracing::info!("handled");
        Ok::<_, Infallible>(Response::new(()))
    })
}

fn with_id(id: &'static str) -> Request<()> {
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_static(id));
    request
}

fn span(name: &str, id: Option<&str>) -> (String, Option<String>) {
    (name.to_owned(), id.map(str::to_owned))
}

#[tokio::test(flavor = "current_thread")]
async fn events_of_the_request_run_in_a_request_span() {
    let (capture, _guard) = capture();
    RequestIdService::new(handler())
        .oneshot(with_id("trace-1"))
        .await
        .unwrap();
    let seen = capture.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [Seen {
            message: "handled".into(),
            spans: vec![span("request", Some("trace-1"))]
        }]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_id_is_recorded_on_a_current_span_that_declares_the_field() {
    let (capture, _guard) = capture();
    let outer = tracing::info_span!("http", request_id = tracing::field::Empty);
    RequestIdService::new(handler())
        .oneshot(with_id("trace-2"))
        .instrument(outer)
        .await
        .unwrap();
    let seen = capture.0.lock().unwrap().clone();
    // No second span: the id went into the outer one.
    assert_eq!(
        seen,
        [Seen {
            message: "handled".into(),
            spans: vec![span("http", Some("trace-2"))]
        }]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn spans_can_be_turned_off() {
    let (capture, _guard) = capture();
    let outer = tracing::info_span!("http");
    RequestIdLayer::new()
        .without_span()
        .layer(handler())
        .oneshot(with_id("trace-3"))
        .instrument(outer)
        .await
        .unwrap();
    let seen = capture.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [Seen {
            message: "handled".into(),
            spans: vec![span("http", None)]
        }]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn replacing_an_id_is_logged_without_the_raw_value() {
    let (capture, _guard) = capture();
    RequestIdService::new(handler())
        .oneshot(with_id("<script>"))
        .await
        .unwrap();
    let seen = capture.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].message, "replaced the incoming request id");
    assert!(!format!("{seen:?}").contains("script"), "{seen:?}");
    let new_id = seen[1].spans[0].1.clone().unwrap();
    assert_eq!(new_id.len(), 36);
}

#[tokio::test(flavor = "current_thread")]
async fn a_request_id_layer_on_a_client_says_to_forward_the_id_instead() {
    let (capture, _guard) = capture();
    let client = RequestIdLayer::new().layer(handler());
    let server = RequestIdLayer::new().layer(service_fn(move |_: Request<()>| {
        let client = client.clone();
        async move {
            for _ in 0..2 {
                client.clone().oneshot(Request::new(())).await?;
            }
            Ok::<_, Infallible>(Response::new(()))
        }
    }));
    server.oneshot(with_id("caller-1")).await.unwrap();
    let seen = capture.0.lock().unwrap().clone();
    let warnings: Vec<_> = seen
        .iter()
        .filter(|s| s.message.contains("ForwardRequestIdLayer"))
        .collect();
    assert_eq!(warnings.len(), 1, "{seen:#?}");
}
