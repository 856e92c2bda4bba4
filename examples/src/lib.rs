//! Complete programs that use espresso, compiled in CI. Run one with
//! `cargo run -p espresso-examples --example <name>`:
//!
//! - `filter_service`: filter-core as a Tower service behind `ServiceBuilder` limits, with a
//!   reload underneath.
//! - `axum_app`: an existing axum app gaining espresso's layers with one `ServiceBuilder`.
//! - `tonic_app`: a tonic gRPC service gaining the same layers.
//! - `adopter`: all five layers, one stack function, applied to an axum app and a tonic service
//!   ([`adopter`]).
#![forbid(unsafe_code)]

pub mod adopter;
