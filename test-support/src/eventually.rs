//! Waiting for something a running server does on its own time (a reload, a shutdown).

use std::{future::Future, time::Duration};

/// Polls `check` every 50 ms until it holds, and panics after 5 s: for conditions a running
/// process brings about on its own (a reload driven by its file polling, a listener closing).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut polls = 0;
/// espresso_test_support::eventually(|| {
///     polls += 1;
///     let done = polls == 3;
///     async move { done }
/// })
/// .await;
/// assert_eq!(polls, 3);
/// # }
/// ```
pub async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition never held within 5 s");
}
