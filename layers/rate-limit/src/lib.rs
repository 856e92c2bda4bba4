//! Keyed GCRA rate limiting, local and global.
//!
//! This crate will hold `RateLimitLayer`: governor's GCRA with quotas in plain words, keys derived
//! from the peer address (trusting forwarded-for only from configured proxies), a header or any
//! closure, bounded memory, IETF `RateLimit` headers, gRPC `RESOURCE_EXHAUSTED`, and a Redis
//! backend for a global limit. Nothing is implemented yet; see the project's issue tracker.
