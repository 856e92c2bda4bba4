//! The id of the request being served, for code that has no access to the request.
//!
//! The layer runs the inner service's `call` and every poll of its response future inside a
//! task-local scope holding the request's [`RequestId`] (a thread-local slot the id is swapped
//! into for each `call` and `poll`, the way tokio's `task_local!` works). Anything running on
//! that task (handlers, inner layers, the clients they call) can read it with [`current`].
//!
//! # Spawned tasks and threads don't inherit it
//!
//! A task-local belongs to one task. A future passed to `tokio::spawn`, or a closure passed to
//! `spawn_blocking` or a thread, sees no id unless you forward it with [`scope`] or [`sync_scope`]:
//!
//! ```
//! use espresso_request_id::{current, scope, sync_scope};
//!
//! # async fn handler() {
//! let id = current();
//! # let id = Some(espresso_request_id::UuidV4.make());
//! if let Some(id) = id {
//!     let background = scope(id.clone(), async {
//!         assert!(current().is_some());
//!     });
//!     tokio::spawn(background);
//!     tokio::task::spawn_blocking(move || sync_scope(id, || assert!(current().is_some())));
//! }
//! # }
//! ```
//! (The same goes for tracing spans: add `.instrument(tracing::Span::current())` to keep the
//! spawned task inside the request's span.)
//!
//! # A streamed response body is outside the scope
//!
//! The scope covers the response future, up to the response head. A body streamed after it (an
//! SSE stream, `axum::body::Body::from_stream`) is polled by the server's connection, outside
//! it: read the id in the handler and move it into the stream, or wrap the stream's work in
//! [`scope`].

use espresso_common::RequestId;
use pin_project_lite::pin_project;
use std::{
    cell::Cell,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

// A task-local in the way tokio's `task_local!` builds one: a thread-local slot that a scope
// swaps its value into for the length of a `call` or a `poll`, and back out afterwards. Written
// here so one slot serves the inner `call` and every poll without cloning the id.
thread_local! {
    static CURRENT: Cell<Option<RequestId>> = const { Cell::new(None) };
}

/// The id of the request being served on this task, if any.
///
/// `None` outside a [`RequestIdLayer`](crate::RequestIdLayer) (or a [`scope`]), and in tasks
/// spawned without forwarding the id.
pub fn current() -> Option<RequestId> {
    CURRENT
        .try_with(|current| {
            let id = current.take();
            let copy = id.clone();
            current.set(id);
            copy
        })
        .ok()
        .flatten()
}

/// Runs `future` with `id` as the [`current`] request id, e.g. before spawning it.
pub fn scope<F: Future>(id: RequestId, future: F) -> Scoped<F> {
    Scoped::new(Some(id), future)
}

/// Runs `f` with `id` as the [`current`] request id, e.g. in `spawn_blocking` or a thread.
pub fn sync_scope<R>(id: RequestId, f: impl FnOnce() -> R) -> R {
    let mut slot = Some(id);
    let _entered = Entered::new(&mut slot);
    f()
}

/// While alive, the thread's current id is the one from `slot`; the previous one waits in
/// `slot` and is put back on drop (also when the code inside panics).
pub(crate) struct Entered<'a> {
    slot: &'a mut Option<RequestId>,
    swapped: bool,
}

impl<'a> Entered<'a> {
    #[inline]
    pub(crate) fn new(slot: &'a mut Option<RequestId>) -> Self {
        let swapped = swap(slot);
        Self { slot, swapped }
    }

    /// Whether another id was current when this one was entered (it waits in the slot).
    #[inline]
    pub(crate) fn entered_inside_another(&self) -> bool {
        self.swapped && self.slot.is_some()
    }
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.swapped {
            swap(self.slot);
        }
    }
}

/// Swaps `slot` with the thread's current id. `false` only while the thread is being torn down.
#[inline]
fn swap(slot: &mut Option<RequestId>) -> bool {
    CURRENT
        .try_with(|current| {
            *slot = current.replace(slot.take());
        })
        .is_ok()
}

pin_project! {
    /// A future running with a [`current`] request id; made by [`scope`].
    ///
    /// The id is current during every poll and while the inner future is dropped.
    pub struct Scoped<F> {
        #[pin]
        future: Option<F>,
        id: Option<RequestId>,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.future.is_some() {
                let _entered = Entered::new(this.id);
                this.future.set(None);
            }
        }
    }
}

impl<F> Scoped<F> {
    pub(crate) fn new(id: Option<RequestId>, future: F) -> Self {
        Self {
            future: Some(future),
            id,
        }
    }

    /// Takes the id back once the future has completed.
    pub(crate) fn take_id(self: Pin<&mut Self>) -> Option<RequestId> {
        self.project().id.take()
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = Entered::new(this.id);
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            panic!("`Scoped` polled after completion");
        };
        let polled = future.poll(cx);
        if polled.is_ready() {
            // Drop the inner future while its id is still current.
            this.future.set(None);
        }
        // Returned as it came: taken apart and rebuilt, the answer would be copied twice more.
        polled
    }
}

impl<F> std::fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoped")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn id(s: &'static str) -> RequestId {
        RequestId::new(HeaderValue::from_static(s)).unwrap()
    }

    #[tokio::test]
    async fn scopes_set_and_restore_the_current_id() {
        assert_eq!(current(), None);
        scope(id("outer"), async {
            assert_eq!(current(), Some(id("outer")));
            scope(id("inner"), async {
                assert_eq!(current(), Some(id("inner")));
            })
            .await;
            assert_eq!(current(), Some(id("outer")));
            let seen = sync_scope(id("sync"), current);
            assert_eq!(seen, Some(id("sync")));
        })
        .await;
        assert_eq!(current(), None);
    }

    #[test]
    fn the_inner_future_is_dropped_inside_the_scope() {
        struct SeesIdOnDrop(std::sync::Arc<std::sync::Mutex<Option<RequestId>>>);
        impl Drop for SeesIdOnDrop {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = current();
            }
        }
        let seen = std::sync::Arc::default();
        let guard = SeesIdOnDrop(std::sync::Arc::clone(&seen));
        let future = scope(id("dropped"), async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        drop(future);
        assert_eq!(*seen.lock().unwrap(), Some(id("dropped")));
        assert_eq!(current(), None);
    }

    #[test]
    fn a_panic_inside_a_scope_restores_the_previous_id() {
        let result = std::panic::catch_unwind(|| sync_scope(id("panics"), || panic!("boom")));
        assert!(result.is_err());
        assert_eq!(current(), None);
    }

    #[tokio::test]
    async fn spawned_tasks_see_the_id_only_when_forwarded() {
        scope(id("req-1"), async {
            let plain = tokio::spawn(async { current() }).await.unwrap();
            assert_eq!(plain, None);
            let forwarded = tokio::spawn(scope(current().unwrap(), async { current() }))
                .await
                .unwrap();
            assert_eq!(forwarded, Some(id("req-1")));
        })
        .await;
    }
}
