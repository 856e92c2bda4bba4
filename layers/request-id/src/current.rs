//! The id of the request being served, for code that has no access to the request.
//!
//! The layer runs the inner service's `call` and every poll of its response future inside a
//! tokio task-local scope holding the request's [`RequestId`]. Anything running on that task
//! (handlers, inner layers, the clients they call) can read it with [`current`].
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

use espresso_common::RequestId;
use pin_project_lite::pin_project;
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};
use tokio::task::futures::TaskLocalFuture;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request being served on this task, if any.
///
/// `None` outside a [`RequestIdLayer`](crate::RequestIdLayer) (or a [`scope`]), and in tasks
/// spawned without forwarding the id.
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(RequestId::clone).ok()
}

/// Runs `future` with `id` as the [`current`] request id, e.g. before spawning it.
pub fn scope<F: Future>(id: RequestId, future: F) -> Scoped<F> {
    Scoped {
        inner: CURRENT.scope(id, future),
    }
}

/// Runs `f` with `id` as the [`current`] request id, e.g. in `spawn_blocking` or a thread.
pub fn sync_scope<R>(id: RequestId, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(id, f)
}

pin_project! {
    /// A future running with a [`current`] request id; made by [`scope`].
    ///
    /// The inner future is also dropped inside the scope.
    pub struct Scoped<F: Future> {
        #[pin]
        inner: TaskLocalFuture<RequestId, F>,
    }
}

impl<F: Future> Scoped<F> {
    /// Takes the id back once the future has completed.
    pub(crate) fn take_id(self: Pin<&mut Self>) -> Option<RequestId> {
        self.project().inner.take_value()
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl<F: Future> std::fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoped").finish_non_exhaustive()
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
