//! Per-request storage of span timings, and its one-line rendering.
//!
//! The recorder appends one [`Record`] per span a request opens; the service reads
//! them back once, when the request ends, and renders them only when the request was slow.

use std::{
    fmt::{self, Write as _},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};
use tokio::time::Instant;

/// `parent` of a top-level span of the request.
pub(crate) const ROOT: usize = usize::MAX;

/// Timings of one span.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) name: &'static str,
    pub(crate) fields: String,
    pub(crate) parent: usize,
    /// Offset of the span's creation from the request's start.
    pub(crate) start: Duration,
    /// Offset of the span's close; `None` while it is open.
    pub(crate) end: Option<Duration>,
    /// Time spent entered, when measured; known once the span closes.
    pub(crate) busy: Option<Duration>,
}

#[derive(Debug, Default)]
struct Records {
    spans: Vec<Record>,
    dropped: usize,
}

/// The spans recorded for one request.
#[derive(Debug)]
pub(crate) struct CallTree {
    start: Instant,
    max_spans: usize,
    records: Mutex<Records>,
}

impl CallTree {
    pub(crate) fn new(start: Instant, max_spans: usize) -> Arc<Self> {
        Arc::new(Self {
            start,
            max_spans,
            records: Mutex::new(Records::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        // A panic while holding this lock leaves only timings behind; they stay usable.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a new span; `None` when the request already holds `max_spans` spans.
    pub(crate) fn open(&self, name: &'static str, fields: String, parent: usize) -> Option<usize> {
        let start = self.start.elapsed();
        let mut records = self.lock();
        if records.spans.len() >= self.max_spans {
            records.dropped += 1;
            return None;
        }
        records.spans.push(Record {
            name,
            fields,
            parent,
            start,
            end: None,
            busy: None,
        });
        Some(records.spans.len() - 1)
    }

    /// Closes the span recorded at `index`.
    pub(crate) fn close(&self, index: usize, busy: Option<Duration>) {
        let end = self.start.elapsed();
        if let Some(record) = self.lock().spans.get_mut(index) {
            record.end = Some(end);
            record.busy = busy;
        }
    }

    /// Adds fields recorded after the span was created.
    pub(crate) fn add_fields(&self, index: usize, fields: &str) {
        if let Some(record) = self.lock().spans.get_mut(index) {
            if !record.fields.is_empty() {
                record.fields.push(' ');
            }
            record.fields.push_str(fields);
        }
    }

    /// Forgets every record (a fast request: nothing will be rendered).
    pub(crate) fn discard(&self) {
        let mut records = self.lock();
        records.spans = Vec::new();
        records.dropped = 0;
    }

    /// Renders the tree as one line, as of `now` (spans still open are marked so).
    pub(crate) fn render(&self, now: Instant) -> String {
        let records = self.lock();
        let now = now.saturating_duration_since(self.start);
        render(&records.spans, records.dropped, now)
    }

    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Vec<Record> {
        self.lock().spans.clone()
    }
}

/// Renders records as `a 12.3ms (busy 1.0ms) > [b 3.0ms (busy 3.0ms), c 8.1ms (open)]`:
/// `>` descends, brackets group siblings, top-level spans are separated by `, `; a span still
/// open when the request ended shows its time so far.
pub(crate) fn render(spans: &[Record], dropped: usize, now: Duration) -> String {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut top = Vec::new();
    for (i, record) in spans.iter().enumerate() {
        match children.get_mut(record.parent) {
            Some(siblings) if record.parent < i => siblings.push(i),
            _ => top.push(i),
        }
    }
    let mut out = String::with_capacity(spans.len() * 32);
    let view = View {
        spans,
        children: &children,
        now,
    };
    for (n, &i) in top.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        view.node(&mut out, i, 0);
    }
    if dropped > 0 {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "(+{dropped} spans not recorded)");
    }
    out
}

/// Deeper nesting than this is elided (recursion stays bounded whatever the spans are).
const MAX_DEPTH: usize = 64;

struct View<'a> {
    spans: &'a [Record],
    children: &'a [Vec<usize>],
    now: Duration,
}

impl View<'_> {
    fn node(&self, out: &mut String, i: usize, depth: usize) {
        let r = &self.spans[i];
        out.push_str(r.name);
        if !r.fields.is_empty() {
            let _ = write!(out, "{{{}}}", r.fields);
        }
        let end = r.end.unwrap_or(self.now);
        let total = end.saturating_sub(r.start);
        let _ = write!(out, " {}", Ms(total));
        match (r.busy, r.end.is_none()) {
            (Some(busy), _) => {
                let _ = write!(out, " (busy {})", Ms(busy));
            }
            (None, true) => out.push_str(" (open)"),
            (None, false) => {}
        }
        let kids = &self.children[i];
        if kids.is_empty() {
            return;
        }
        out.push_str(" > ");
        if depth >= MAX_DEPTH {
            out.push('…');
            return;
        }
        if let [only] = kids.as_slice() {
            self.node(out, *only, depth + 1);
            return;
        }
        out.push('[');
        for (n, &k) in kids.iter().enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            self.node(out, k, depth + 1);
        }
        out.push(']');
    }
}

/// A duration for people: `850µs`, `12.3ms`, `3.02s`.
pub(crate) struct Ms(pub(crate) Duration);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_millis(1) {
            write!(f, "{}µs", d.as_micros())
        } else if d < Duration::from_secs(1) {
            write!(f, "{:.1}ms", d.as_secs_f64() * 1e3)
        } else {
            write!(f, "{:.2}s", d.as_secs_f64())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn rec(name: &'static str, parent: usize, start: u64, end: Option<u64>, busy: u64) -> Record {
        Record {
            name,
            fields: String::new(),
            parent,
            start: ms(start),
            end: end.map(ms),
            busy: end.map(|_| ms(busy)),
        }
    }

    #[test]
    fn renders_chains_siblings_and_open_spans() {
        let spans = [
            rec("handler", ROOT, 0, Some(12), 1),
            rec("cache", 0, 1, Some(4), 3),
            rec("classifier", 0, 4, None, 0),
            rec("grpc", 2, 4, Some(9), 0),
            rec("audit", ROOT, 12, Some(13), 1),
        ];
        assert_eq!(
            render(&spans, 0, ms(20)),
            "handler 12.0ms (busy 1.0ms) > [cache 3.0ms (busy 3.0ms), \
             classifier 16.0ms (open) > grpc 5.0ms (busy 0µs)], \
             audit 1.0ms (busy 1.0ms)"
        );
    }

    #[test]
    fn shows_fields_and_dropped_spans() {
        let mut r = rec("cache", ROOT, 0, Some(1500), 2);
        r.fields = "key=abc".into();
        assert_eq!(
            render(&[r], 3, ms(2000)),
            "cache{key=abc} 1.50s (busy 2.0ms) (+3 spans not recorded)"
        );
        assert_eq!(render(&[], 0, ms(1)), "");
    }

    #[test]
    fn deep_nesting_is_elided() {
        let spans: Vec<Record> = (0..200)
            .map(|i| rec("f", if i == 0 { ROOT } else { i - 1 }, 0, Some(1), 0))
            .collect();
        let out = render(&spans, 0, ms(1));
        assert_eq!(out.matches(" > ").count(), MAX_DEPTH + 1);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn caps_records_per_request() {
        let tree = CallTree::new(Instant::now(), 2);
        assert_eq!(tree.open("a", String::new(), ROOT), Some(0));
        assert_eq!(tree.open("b", String::new(), 0), Some(1));
        assert_eq!(tree.open("c", String::new(), 1), None);
        tree.close(0, Some(ms(1)));
        assert!(
            tree.render(Instant::now())
                .ends_with("(+1 spans not recorded)")
        );
        tree.discard();
        assert!(tree.snapshot().is_empty());
    }
}
