//! A circuit breaker as a Tower layer.
//!
//! This crate will hold `CircuitBreakerLayer`: count- and time-based sliding windows, failure- and
//! slow-call-rate thresholds, half-open probes, forced and disabled states, and answers a client
//! understands when open (HTTP 503, gRPC `UNAVAILABLE`). Nothing is implemented yet; see the
//! project's issue tracker.
