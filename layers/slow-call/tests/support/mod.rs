//! Test helpers: a subscriber that keeps the slow-call events, and metric readers.
#![allow(dead_code, unreachable_pub)]

#[cfg(feature = "metrics")]
use prometheus::Registry;
use std::{
    collections::BTreeMap,
    fmt, io,
    sync::{Arc, Mutex},
};
use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{
    Layer, fmt::MakeWriter, layer::Context, prelude::*, registry::LookupSpan,
};

/// Everything a `tracing_subscriber::fmt` layer writes, kept in memory: the log as a reader
/// sees it.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<u8>>>);

impl Lines {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// A `fmt` layer writing here, as a terminal would show it without colours or times.
    pub fn fmt_layer<S>(&self) -> impl Layer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_writer(self.clone())
    }
}

impl io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// One captured event: its level, and its fields as text with those of the spans it is in (the
/// context a log line shows), the event's own last.
#[derive(Debug, Clone)]
pub struct Captured {
    pub level: Level,
    pub fields: BTreeMap<String, String>,
}

/// The fields of one span, kept in its extensions.
struct SpanFields(BTreeMap<String, String>);

impl Captured {
    pub fn get(&self, field: &str) -> &str {
        self.fields.get(field).map_or("<missing>", String::as_str)
    }
}

/// Collects every event of target `espresso_slow_call` into a shared Vec.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<Captured>>>, Arc<tokio::sync::Notify>);

impl Events {
    pub fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// Waits until `n` events were captured (for servers that log on their own tasks), then
    /// takes them. Gives up after 10 s so a broken test fails instead of hanging.
    pub async fn wait_for(&self, n: usize) -> Vec<Captured> {
        let wait = async {
            loop {
                let notified = self.1.notified();
                if self.0.lock().unwrap().len() >= n {
                    return self.take();
                }
                notified.await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .expect("events were logged")
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Events {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut FieldMap(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut FieldMap(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != "espresso_slow_call" {
            return;
        }
        let mut fields = BTreeMap::new();
        for span in ctx
            .event_scope(event)
            .into_iter()
            .flat_map(|s| s.from_root())
        {
            if let Some(span_fields) = span.extensions().get::<SpanFields>() {
                fields.extend(span_fields.0.clone());
            }
        }
        event.record(&mut FieldMap(&mut fields));
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            fields,
        });
        self.1.notify_waiters();
    }
}

struct FieldMap<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldMap<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
}

/// Installs, for this thread, a registry with the recorder and the event collector.
pub fn capture() -> (Events, tracing::subscriber::DefaultGuard) {
    let events = Events::default();
    let subscriber = tracing_subscriber::registry()
        .with(espresso_slow_call::SlowCallRecorder::new())
        .with(events.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    (events, guard)
}

#[cfg(feature = "metrics")]
/// (sample count, sample sum) of the duration histogram series with these labels.
pub fn histogram(registry: &Registry, method: &str, route: &str, status: &str) -> (u64, f64) {
    for family in registry.gather() {
        if family.name() != "http_server_request_duration_seconds" {
            continue;
        }
        for metric in family.get_metric() {
            let labels: BTreeMap<_, _> = metric
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            if labels.get("method") == Some(&method)
                && labels.get("route") == Some(&route)
                && labels.get("status") == Some(&status)
            {
                let h = metric.get_histogram();
                return (h.get_sample_count(), h.get_sample_sum());
            }
        }
    }
    (0, 0.0)
}

#[cfg(feature = "metrics")]
/// Value of a counter or gauge series with these labels (0 when absent).
pub fn value(registry: &Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
    for family in registry.gather() {
        if family.name() != name {
            continue;
        }
        for metric in family.get_metric() {
            let matches = labels.iter().all(|(k, v)| {
                metric
                    .get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            });
            if matches {
                return match family.get_field_type() {
                    prometheus::proto::MetricType::COUNTER => metric.get_counter().get_value(),
                    prometheus::proto::MetricType::GAUGE => metric.get_gauge().get_value(),
                    _ => 0.0,
                };
            }
        }
    }
    0.0
}
