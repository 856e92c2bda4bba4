//! Slow-call traces, latency metrics and OpenTelemetry export.
//!
//! This crate will hold `SlowCallLayer`: it times every request until its response body ends and,
//! when a request is slower than a threshold, emits one WARN event with the request id and the
//! tree of nested `tracing` spans with their durations. It also records the request duration
//! histogram and exports traces over OTLP when configured. Nothing is implemented yet; see the
//! project's issue tracker.
