//! [`SlowCallRecorder`]: the `tracing_subscriber::Layer` that records span timings per request.

use crate::tree::{CallTree, ROOT};
use std::{
    cell::Cell,
    fmt::{self, Write as _},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;
use tracing::{
    Metadata, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
    subscriber::Interest,
};
use tracing_subscriber::{
    Layer as _,
    filter::{Filtered, LevelFilter},
    layer::{Context, Filter},
    registry::LookupSpan,
};

/// Target of the root span [`SlowCall`](crate::SlowCall) opens for each request.
pub const ROOT_SPAN_TARGET: &str = "espresso_slow_call";
/// Name of the root span [`SlowCall`](crate::SlowCall) opens for each request.
pub const ROOT_SPAN_NAME: &str = "request";

/// Whether a [`SlowCallRecorder`] was added to a subscriber in this process: without one every
/// tree is empty, which the first slow call says in a WARN line.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Warns once per process, at a slow call, when no recorder was ever installed.
pub(crate) fn warn_if_not_installed() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !INSTALLED.load(Ordering::Relaxed) && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: "espresso_slow_call",
            "slow calls are logged without their span tree: no SlowCallRecorder is in the \
             tracing subscriber; add it, e.g. tracing_subscriber::registry()\
             .with(SlowCallRecorder::new()).with(fmt::layer())"
        );
    }
}

/// Whether a request's root span was found disabled and the filter behind it judged (once per
/// process, as [`INSTALLED`]).
static ROOT_SPAN_JUDGED: AtomicBool = AtomicBool::new(false);

/// Called by [`SlowCall`](crate::SlowCall) for a request whose root span is disabled: warns once
/// per process when that is the subscriber's filter dropping INFO spans of the crate's target,
/// not [`SlowCallRecorder::filtered`] leaving out the root spans only. An atomic load per
/// request after the first.
#[inline]
pub(crate) fn warn_if_root_span_filtered() {
    if !ROOT_SPAN_JUDGED.load(Ordering::Relaxed) {
        judge_root_span_filter();
    }
}

#[cold]
#[inline(never)]
fn judge_root_span_filter() {
    if ROOT_SPAN_JUDGED.swap(true, Ordering::Relaxed) {
        return;
    }
    // Another INFO span of the target, not named as the root span: the recorder behind its own
    // filter wants it, and then the root span is left out on purpose.
    if tracing::span_enabled!(target: ROOT_SPAN_TARGET, tracing::Level::INFO) {
        return;
    }
    #[cfg(feature = "otel")]
    let (lost, fix) = (
        ", and an incoming traceparent is not continued (each request starts a new trace)",
        ", and one that lets espresso_slow_call=info through to the OpenTelemetry layer",
    );
    #[cfg(not(feature = "otel"))]
    let (lost, fix) = ("", "");
    tracing::warn!(
        target: "espresso_slow_call",
        "the tracing filter drops target espresso_slow_call at INFO, the requests' root spans \
         included: the slow-call lines' call trees are empty when it drops the handlers' spans \
         too{lost}; filter each layer instead of the whole subscriber: \
         SlowCallRecorder::new().filtered(LevelFilter::INFO), \
         fmt::layer().with_filter(LevelFilter::WARN){fix} (see SlowCallRecorder, Filtering)"
    );
}

thread_local! {
    /// The call tree of the request being polled on this thread, set by
    /// [`SlowCall`](crate::SlowCall) for the duration of each `call` and poll: spans opened then,
    /// without a recorded parent, become the tree's top-level spans.
    static CURRENT: Cell<Option<Arc<CallTree>>> = const { Cell::new(None) };
}

/// Makes `tree` the current request's tree until dropped, then restores the previous one (an
/// outer request's, when calls nest).
pub(crate) struct InRequest {
    previous: Option<Arc<CallTree>>,
}

impl InRequest {
    pub(crate) fn enter(tree: &Arc<CallTree>) -> Self {
        Self {
            previous: CURRENT.replace(Some(tree.clone())),
        }
    }
}

impl Drop for InRequest {
    fn drop(&mut self) {
        CURRENT.set(self.previous.take());
    }
}

/// The tree of the request being polled on this thread, if any.
fn current_tree() -> Option<Arc<CallTree>> {
    let tree = CURRENT.take();
    CURRENT.set(tree.clone());
    tree
}

fn is_root_span(meta: &Metadata<'_>) -> bool {
    meta.target() == ROOT_SPAN_TARGET && meta.name() == ROOT_SPAN_NAME
}

/// Records, for every span a request opens, its name, parent, start offset, busy time (entered)
/// and total time, into storage owned by that request.
///
/// Add it to the subscriber the server installs; [`SlowCallLayer`](crate::SlowCallLayer) reads
/// the records back when the request ends and renders them only when the request was slow. A span
/// belongs to a request when its parent does, or when it is opened while the request's service
/// or response is being polled (the top-level spans of the tree). Spans outside a request cost
/// one parent look-up; spans inside one cost a few clock reads and two uncontended lock
/// acquisitions. Nothing is formatted for fast requests except the fields of spans that have
/// fields (turn that off with [`fields(false)`](Self::fields)).
///
/// Work a request hands to another task joins its tree when it runs in a span opened inside the
/// request (`tokio::spawn(work.instrument(info_span!("work")))`).
///
/// Timings use `tokio::time::Instant`, so tests with paused time see exact durations.
///
/// # Filtering
///
/// The recorder sees only the spans the subscriber enables. A global filter at `warn` disables
/// every `#[instrument]` span (INFO), and the trees come out empty. To log little but keep the
/// trees, filter the output layer only (a per-layer filter, as below), and give the recorder its
/// own with [`filtered`](Self::filtered): spans at a level and above, except the requests' root
/// spans, which the recorder does not need. Then a request whose root span no other layer wants
/// (no log line at INFO, no trace export) opens no span at all unless its handler does.
///
/// A filter that drops every INFO span of target `espresso_slow_call`, the root spans included
/// (a global filter at `warn`), is reported once per process, at the first request, by a WARN
/// naming this fix; with the feature `otel` it also loses each request's incoming trace context.
/// The setup below, which leaves out only the root spans, is not reported.
///
/// ```
/// use espresso_slow_call::SlowCallRecorder;
/// use tracing_subscriber::{filter::LevelFilter, prelude::*};
///
/// let subscriber = tracing_subscriber::registry()
///     .with(SlowCallRecorder::new().filtered(LevelFilter::INFO))
///     .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::WARN));
/// # let _ = subscriber;
/// ```
///
/// Unfiltered, it records spans of every level:
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

    /// This recorder behind its own filter: spans at `level` and above, except the requests'
    /// root spans; no events (see [Filtering](Self#filtering)).
    pub fn filtered<S>(self, level: LevelFilter) -> Filtered<Self, RecordedSpans, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.with_filter(RecordedSpans { level })
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
    /// This span's record, or, for spans over the cap, the index that their children take as
    /// parent.
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
    fn on_layer(&mut self, _: &mut S) {
        INSTALLED.store(true, Ordering::Relaxed);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        if is_root_span(meta) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let recorded_parent = span.parent().and_then(|parent| {
            let ext = parent.extensions();
            ext.get::<Node>()
                .map(|node| (node.tree.clone(), node.index))
        });
        let Some((tree, parent_index)) =
            recorded_parent.or_else(|| current_tree().map(|tree| (tree, ROOT)))
        else {
            return;
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

/// The per-layer filter of [`SlowCallRecorder::filtered`].
#[derive(Debug, Clone, Copy)]
pub struct RecordedSpans {
    level: LevelFilter,
}

impl RecordedSpans {
    fn wants(&self, meta: &Metadata<'_>) -> bool {
        meta.is_span() && *meta.level() <= self.level && !is_root_span(meta)
    }
}

impl<S> Filter<S> for RecordedSpans {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        self.wants(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        // Decided once per call site: a request whose root span only this filter would see
        // skips creating it altogether.
        if self.wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.level)
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

    /// Runs `f` as the request owning `tree` does: with the tree current, inside its root span.
    fn in_request<R>(tree: &Arc<CallTree>, f: impl FnOnce() -> R) -> R {
        let _current = InRequest::enter(tree);
        info_span!(target: "espresso_slow_call", "request").in_scope(f)
    }

    #[tokio::test(start_paused = true)]
    async fn records_the_spans_a_request_opens() {
        let subscriber = tracing_subscriber::registry().with(SlowCallRecorder::new());
        let _guard = tracing::subscriber::set_default(subscriber);
        let tree = CallTree::new(Instant::now(), 16);
        let _outside = info_span!("outside").entered();
        let handed_off = in_request(&tree, || {
            let handler = info_span!("handler", user = "ann", n = 3);
            let _entered = handler.enter();
            info_span!("work")
        });
        // Opened after the request's poll, under a span of the request: still its own.
        drop(info_span!(parent: &handed_off, "spawned"));
        drop(handed_off);
        let _unrelated = info_span!("unrelated").entered();
        let records = tree.snapshot();
        let names: Vec<_> = records.iter().map(|r| r.name).collect();
        assert_eq!(names, ["handler", "work", "spawned"]);
        assert_eq!(records[0].fields, "user=ann n=3");
        assert_eq!(records[0].parent, ROOT);
        assert_eq!((records[1].parent, records[2].parent), (0, 1));
        assert!(records.iter().all(|r| r.end.is_some()));
    }

    #[test]
    fn nested_requests_keep_their_own_trees() {
        let subscriber = tracing_subscriber::registry().with(SlowCallRecorder::new());
        let _guard = tracing::subscriber::set_default(subscriber);
        let (outer, inner) = (
            CallTree::new(Instant::now(), 16),
            CallTree::new(Instant::now(), 16),
        );
        in_request(&outer, || {
            let _call = info_span!("call").entered();
            in_request(&inner, || drop(info_span!("inner_work")));
            drop(info_span!("after"));
        });
        let names = |tree: &CallTree| tree.snapshot().iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(names(&outer), ["call", "after"]);
        assert_eq!(names(&inner), ["inner_work"]);
    }

    #[test]
    fn filtered_it_needs_no_root_span() {
        let recorder = SlowCallRecorder::new().filtered(LevelFilter::INFO);
        let subscriber = tracing_subscriber::registry().with(recorder);
        let _guard = tracing::subscriber::set_default(subscriber);
        let tree = CallTree::new(Instant::now(), 16);
        in_request(&tree, || {
            drop(info_span!("handler"));
            drop(tracing::debug_span!("detail"));
            drop(tracing::info_span!(target: "espresso_slow_call", "request"));
        });
        let names: Vec<_> = tree.snapshot().iter().map(|r| r.name).collect();
        assert_eq!(names, ["handler"]);
        // Decided per call site: no layer but this one means no root span is created.
        // A disabled span keeps its metadata only with tracing's `log` feature: take the root's
        // call-site shape from a span no filter stands in front of.
        let root = tracing::subscriber::with_default(
            tracing_subscriber::registry(),
            || tracing::info_span!(target: "espresso_slow_call", "request"),
        );
        let filter = RecordedSpans {
            level: LevelFilter::INFO,
        };
        let interest =
            |meta| Filter::<tracing_subscriber::Registry>::callsite_enabled(&filter, meta);
        assert!(interest(root.metadata().expect("a call site")).is_never());
        assert!(interest(info_span!("handler").metadata().expect("a call site")).is_always());
    }

    #[test]
    fn fields_recorded_later_are_kept() {
        let subscriber = tracing_subscriber::registry().with(SlowCallRecorder::new());
        let _guard = tracing::subscriber::set_default(subscriber);
        let tree = CallTree::new(Instant::now(), 16);
        in_request(&tree, || {
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
        in_request(&tree, || {
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
        in_request(&tree, || {
            let _handler = info_span!("handler", user = "ann").entered();
        });
        assert_eq!(tree.snapshot()[0].fields, "");
    }
}
