//! Adaptive overload protection with graceful degradation.
//!
//! This crate will hold `DegradeLayer`: an adaptive concurrency limit (Gradient2, AIMD), a
//! queueing-delay rule and a manual switch decide per request whether the primary service or a
//! fallback answers. Nothing is implemented yet; see the project's issue tracker.
