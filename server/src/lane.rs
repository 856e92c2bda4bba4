//! The large lane: texts of `filter.large_content_bytes` or more are checked at most
//! `filter.large_max_in_flight` at a time; the others wait for a turn without holding a thread.
//!
//! A 64 KB text full of listed words costs the engine several milliseconds of one core. Without
//! the lane, a client sending many of them (inside its rate limit) keeps every worker thread
//! busy, and short texts from everyone else queue behind them. With it, large texts share at
//! most half the cores and short texts always find one free.

use crate::config::FilterConfig;
use std::sync::Arc;
use tokio::sync::{Semaphore, SemaphorePermit};

#[derive(Clone, Debug)]
pub(crate) struct LargeLane {
    min_bytes: usize,
    turns: Arc<Semaphore>,
}

impl LargeLane {
    pub(crate) fn new(config: &FilterConfig) -> Self {
        let in_flight = match config.large_max_in_flight {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            n => n,
        };
        Self {
            min_bytes: config.large_content_bytes,
            turns: Arc::new(Semaphore::new(in_flight)),
        }
    }

    /// Waits for a turn when a text of `len` bytes is large; hold the turn while checking.
    pub(crate) async fn enter(&self, len: usize) -> Option<SemaphorePermit<'_>> {
        if len < self.min_bytes {
            return None;
        }
        // never closed, so `acquire` only fails if the semaphore is dropped: not while `self` lives
        self.turns.acquire().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lane(min_bytes: usize, in_flight: usize) -> LargeLane {
        LargeLane::new(&FilterConfig {
            large_content_bytes: min_bytes,
            large_max_in_flight: in_flight,
            ..FilterConfig::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_text_never_waits_for_the_large_lane() {
        let lane = lane(100, 1);
        let _large = lane.enter(100).await.expect("a large text takes a turn");
        assert!(lane.enter(99).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_text_waits_while_the_lane_is_full_and_goes_when_a_turn_ends() {
        let lane = lane(100, 1);
        let first = lane
            .enter(1000)
            .await
            .expect("the first large text goes at once");
        let waiting = tokio::time::timeout(Duration::from_secs(5), lane.enter(100)).await;
        assert!(
            waiting.is_err(),
            "the second large text waits while the first is checked"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_millis(1), lane.enter(100)).await;
        assert!(matches!(second, Ok(Some(_))));
    }

    #[test]
    fn the_default_lane_takes_half_the_cores_and_at_least_one() {
        let lane = lane(16384, 0);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(lane.turns.available_permits(), (cores / 2).max(1));
    }
}
