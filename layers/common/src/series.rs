//! Metric series kept at hand, per thread, for code that records every request.
//!
//! A labelled metric family finds a series by hashing its labels and taking the family's lock
//! (prometheus' `with_label_values`), and hands out a handle whose reference count every worker
//! writes. [`KeptSeries`] keeps the handles a thread used last and finds them again by comparing
//! labels: a request that records under the labels of the one before pays a few comparisons.

use std::{
    any::Any,
    cell::RefCell,
    fmt,
    marker::PhantomData,
    sync::atomic::{AtomicU64, Ordering},
};

/// How many series a thread keeps, over every [`KeptSeries`].
const KEPT: usize = 16;

/// A series a thread used lately: the labels `K` and the handle `M` as `(K, M)`.
struct Kept {
    /// Which [`KeptSeries`] it belongs to.
    cache: u64,
    entry: Box<dyn Any>,
}

thread_local! {
    /// The series this thread used last, the newest last.
    static SERIES: RefCell<Vec<Kept>> = const { RefCell::new(Vec::new()) };
}

/// The series of one metric family a thread used last, found again by their labels `K`
/// (compared with the labels a request brings, `Q`) without the family's lookup.
///
/// Clones share what they keep. A series stays valid as long as the family keeps it, so use
/// this only with families that never remove a series (no `remove_label_values`, no `reset`).
///
/// ```
/// use espresso_common::series::KeptSeries;
/// use std::cell::Cell;
///
/// // The "family": a lookup that counts how often it runs.
/// let lookups = Cell::new(0);
/// let lookup = |route: &str| {
///     lookups.set(lookups.get() + 1);
///     (route.to_owned(), format!("series of {route}"))
/// };
/// let kept: KeptSeries<String, String> = KeptSeries::new();
/// let mut seen = Vec::new();
/// for route in ["/a", "/a", "/b", "/a"] {
///     kept.record(route, lookup, |series| seen.push(series.clone()));
/// }
/// assert_eq!(seen, ["series of /a", "series of /a", "series of /b", "series of /a"]);
/// // `/a` and `/b` were each looked up once.
/// assert_eq!(lookups.get(), 2);
/// ```
pub struct KeptSeries<K, M> {
    id: u64,
    _types: PhantomData<fn() -> (K, M)>,
}

impl<K: 'static, M: 'static> KeptSeries<K, M> {
    /// A cache of its own: what it keeps is never found through another one.
    pub fn new() -> Self {
        static IDS: AtomicU64 = AtomicU64::new(0);
        Self {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            _types: PhantomData,
        }
    }

    /// Calls `record` with the series labelled `labels`: one this thread kept, or the one
    /// `lookup` returns (with the labels to keep it under), which the thread keeps from then on.
    pub fn record<Q: ?Sized>(
        &self,
        labels: &Q,
        lookup: impl FnOnce(&Q) -> (K, M),
        record: impl FnOnce(&M),
    ) where
        K: PartialEq<Q>,
    {
        let mut calls = Some((lookup, record));
        // `try_with` fails only while the thread is ending; the family itself still records.
        let _ = SERIES.try_with(|series| {
            let Some((lookup, record)) = calls.take() else {
                return;
            };
            let mut series = series.borrow_mut();
            let found = series
                .iter()
                .rev()
                .filter(|kept| kept.cache == self.id)
                .find_map(|kept| {
                    kept.entry
                        .downcast_ref::<(K, M)>()
                        .filter(|(key, _)| key == labels)
                });
            if let Some((_, handle)) = found {
                record(handle);
                return;
            }
            let (key, handle) = lookup(labels);
            record(&handle);
            if series.len() == KEPT {
                series.remove(0);
            }
            series.push(Kept {
                cache: self.id,
                entry: Box::new((key, handle)),
            });
        });
        if let Some((lookup, record)) = calls {
            record(&lookup(labels).1);
        }
    }
}

impl<K: 'static, M: 'static> Default for KeptSeries<K, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, M> Clone for KeptSeries<K, M> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            _types: PhantomData,
        }
    }
}

impl<K, M> fmt::Debug for KeptSeries<K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeptSeries").field("id", &self.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn each_cache_finds_only_its_own_series_even_when_more_are_used_than_kept() {
        let (a, b) = (
            KeptSeries::<u32, String>::new(),
            KeptSeries::<u32, String>::new(),
        );
        let lookups = Cell::new(0);
        fn lookup<'a>(
            cache: &'a str,
            lookups: &'a Cell<usize>,
        ) -> impl FnOnce(&u32) -> (u32, String) + 'a {
            move |label| {
                lookups.set(lookups.get() + 1);
                (*label, format!("{cache}{label}"))
            }
        }
        let labels = 0..KEPT as u32 + 4;
        for _ in 0..3 {
            for label in labels.clone() {
                a.record(&label, lookup("a", &lookups), |s| {
                    assert_eq!(*s, format!("a{label}"))
                });
                b.record(&label, lookup("b", &lookups), |s| {
                    assert_eq!(*s, format!("b{label}"))
                });
            }
        }
        // More series than a thread keeps, in turns: every use missed, and still recorded in
        // the right series.
        assert_eq!(lookups.get(), 3 * 2 * labels.len());
        // A clone shares what is kept; a label used just now is found without a lookup.
        lookups.set(0);
        let last = labels.end - 1;
        a.clone().record(&last, lookup("a", &lookups), |s| {
            assert_eq!(*s, format!("a{last}"))
        });
        assert_eq!(lookups.get(), 0);
    }
}
