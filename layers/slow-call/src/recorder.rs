//! [`SlowCallRecorder`]: the `tracing_subscriber::Layer` that records span timings per request.

use crate::tree::{CallTree, ROOT};
use std::{
    cell::Cell,
    fmt::{self, Write as _},
    sync::Arc,
    time::Duration,
};
use tokio::time::Instant;
use tracing::{
    Span, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{layer::Context, registry::LookupSpan};

/// Target of the root span [`SlowCall`](crate::SlowCall) opens for each request.
pub const ROOT_SPAN_TARGET: &str = "espresso_slow_call";
/// Name of the root span [`SlowCall`](crate::SlowCall) opens for each request.
pub const ROOT_SPAN_NAME: &str = "request";

thread_local! {
    /// The call tree of the root span being created on this thread, handed from the service to
    /// the recorder for the duration of one `span!` call.
    static PENDING: Cell<Option<Arc<CallTree>>> = const { Cell::new(None) };
}

/// Creates a request's root span with `make`, attaching `tree` to it when a
/// [`SlowCallRecorder`] sees the span.
pub(crate) fn root_span(tree: &Arc<CallTree>, make: impl FnOnce() -> Span) -> Span {
    PENDING.with(|p| p.set(Some(tree.clone())));
    let span = make();
    // Not taken when no recorder is installed or the span is disabled.
    PENDING.with(|p| p.take());
    span
}

/// Records, for every span opened under a request's root span, its name, parent, start offset,
/// busy time (entered) and total time, into storage owned by that request.
///
/// Add it to the subscriber the server installs; [`SlowCallLayer`](crate::SlowCallLayer) reads
/// the records back when the request ends and renders them only when the request was slow. Spans
/// outside a request cost one parent look-up; spans inside one cost a few clock reads and two
/// uncontended lock acquisitions. Nothing is formatted for fast requests except the fields of
/// spans that have fields (turn that off with [`fields(false)`](Self::fields)).
///
/// Timings use `tokio::time::Instant`, so tests with paused time see exact durations.
///
/// # Filtering
///
/// The recorder sees only the spans the subscriber enables. A global filter at `warn` disables
/// the request's root span (INFO) and every `#[instrument]` span, and the trees come out empty.
/// To log little but keep the trees, filter the output layer only (a per-layer filter, as below),
/// and leave the recorder unfiltered or at `info`.
///
/// ```
/// use espresso_slow_call::SlowCallRecorder;
/// use tracing_subscriber::{filter::LevelFilter, prelude::*};
///
/// let subscriber = tracing_subscriber::registry()
///     .with(SlowCallRecorder::new().with_filter(LevelFilter::INFO))
///     .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::WARN));
/// # let _ = subscriber;
/// ```
///
/// ```
/// use espresso_slow_call::SlowCallRecorder;
/// use tracing_subscriber::prelude::*;
///
/// let subscriber = tracing_subscriber::registry().with(SlowCallRecorder::new());
/// # let _ = subscriber;
/// ```
#[derive(Debug, Clone)]
pub struct SlowCallRecorder {
    fields: bool,
    busy: bool,
}

impl SlowCallRecorder {
    /// A recorder that keeps span fields.
    pub fn new() -> Self {
        Self {
            fields: true,
            busy: true,
        }
    }

    /// Whether busy time (time spent entered) is measured; on by default. It costs two clock
    /// reads each time a span is entered and left (every poll of an instrumented future); without
    /// it the tree shows total times only.
    pub fn busy_time(mut self, measure: bool) -> Self {
        self.busy = measure;
        self
    }

    /// Whether span fields (`cache{key=abc}`) are kept for the tree; on by default.
    pub fn fields(mut self, keep: bool) -> Self {
        self.fields = keep;
        self
    }
}

impl Default for SlowCallRecorder {
    fn default() -> Self {
        Self::new()
    }
}

/// What the recorder keeps in each span's extensions.
struct Node {
    tree: Arc<CallTree>,
    /// This span's record, or, for the root span and for spans over the cap, the index that
    /// their children take as parent.
    index: usize,
    recorded: bool,
    /// Whether entering and leaving are timed.
    timed: bool,
    busy: Duration,
    entered: u32,
    entered_at: Option<Instant>,
}

impl Node {
    fn busy(mut self, timed: bool) -> Self {
        self.timed = timed;
        self
    }

    fn new(tree: Arc<CallTree>, index: usize, recorded: bool) -> Self {
        Self {
            tree,
            index,
            recorded,
            timed: false,
            busy: Duration::ZERO,
            entered: 0,
            entered_at: None,
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for SlowCallRecorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let meta = attrs.metadata();
        if meta.target() == ROOT_SPAN_TARGET
            && meta.name() == ROOT_SPAN_NAME
            && let Some(tree) = PENDING.with(|p| p.take())
        {
            span.extensions_mut().insert(Node::new(tree, ROOT, false));
            return;
        }
        let Some(parent) = span.parent() else { return };
        let (tree, parent_index) = {
            let ext = parent.extensions();
            let Some(node) = ext.get::<Node>() else {
                return;
            };
            (node.tree.clone(), node.index)
        };
        let mut fields = String::new();
        if self.fields && !attrs.fields().is_empty() {
            attrs.record(&mut FieldWriter(&mut fields));
        }
        let node = match tree.open(meta.name(), fields, parent_index) {
            Some(index) => Node::new(tree, index, true).busy(self.busy),
            None => Node::new(tree, parent_index, false),
        };
        span.extensions_mut().insert(node);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if !self.fields || values.is_empty() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let ext = span.extensions();
        if let Some(node) = ext.get::<Node>().filter(|n| n.recorded) {
            let mut fields = String::new();
            values.record(&mut FieldWriter(&mut fields));
            node.tree.add_fields(node.index, &fields);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.busy {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(node) = ext.get_mut::<Node>().filter(|n| n.timed) {
            if node.entered == 0 {
                node.entered_at = Some(Instant::now());
            }
            node.entered += 1;
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.busy {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(node) = ext.get_mut::<Node>().filter(|n| n.timed && n.entered > 0) {
            node.entered -= 1;
            if node.entered == 0
                && let Some(at) = node.entered_at.take()
            {
                node.busy += at.elapsed();
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let ext = span.extensions();
        if let Some(node) = ext.get::<Node>().filter(|n| n.recorded) {
            let busy = node.timed.then(|| match node.entered_at {
                Some(at) => node.busy + at.elapsed(),
                None => node.busy,
            });
            node.tree.close(node.index, busy);
        }
    }
}

/// Writes span fields as `a=1 b=x`.
struct FieldWriter<'a>(&'a mut String);

impl FieldWriter<'_> {
    fn sep(&mut self) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.sep();
        let _ = write!(self.0, "{}={value}", field.name());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.sep();
        let _ = write!(self.0, "{}={value:?}", field.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::info_span;
    use tracing_subscriber::prelude::*;

    fn root(tree: &Arc<CallTree>) -> Span {
        root_span(tree, || info_span!(target: "espresso_slow_call", "request"))
    }

    #[tokio::test(start_paused = true)]
    async fn records_spans_under_the_root_only() {
        let subscriber = tracing_subscriber::registry().with(SlowCallRecorder::new());
        let _guard = tracing::subscriber::set_default(subscriber);
        let tree = CallTree::new(Instant::now(), 16);
        let _outside = info_span!("outside").entered();
        let request = root(&tree);
        request.in_scope(|| {
            let _handler = info_span!("handler", user = "ann", n = 3).entered();
        });
        drop(request);
        let records = tree.snapshot();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].name, "handler");
        assert_eq!(records[0].fields, "user=ann n=3");
        assert_eq!(records[0].parent, ROOT);
        assert!(records[0].end.is_some());
    }

    #[test]
    fn fields_recorded_later_are_kept() {
        let subscriber = tracing_subscriber::registry().with(SlowCallRecorder::new());
        let _guard = tracing::subscriber::set_default(subscriber);
        let tree = CallTree::new(Instant::now(), 16);
        root(&tree).in_scope(|| {
            let handler = info_span!("handler", hits = tracing::field::Empty, n = 1);
            handler.record("hits", 2);
        });
        assert_eq!(tree.snapshot()[0].fields, "n=1 hits=2");
    }

    #[test]
    fn busy_time_can_be_left_out() {
        let subscriber =
            tracing_subscriber::registry().with(SlowCallRecorder::new().busy_time(false));
        let _guard = tracing::subscriber::set_default(subscriber);
        let tree = CallTree::new(Instant::now(), 16);
        root(&tree).in_scope(|| {
            let _handler = info_span!("handler").entered();
        });
        let records = tree.snapshot();
        assert!(records[0].end.is_some());
        assert_eq!(records[0].busy, None);
    }

    #[test]
    fn fields_can_be_left_out() {
        let recorder = SlowCallRecorder::new().fields(false);
        let subscriber = tracing_subscriber::registry().with(recorder);
        let _guard = tracing::subscriber::set_default(subscriber);
        let tree = CallTree::new(Instant::now(), 16);
        root(&tree).in_scope(|| {
            let _handler = info_span!("handler", user = "ann").entered();
        });
        assert_eq!(tree.snapshot()[0].fields, "");
    }
}
