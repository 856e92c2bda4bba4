//! Black-box tests of the espresso-server binary.
//!
//! Each test starts the real binary on a free port with its own config and word lists (in a temp
//! folder), then talks to it over HTTP/1.1, HTTP/2 and gRPC like any client would. Nothing here
//! reaches into the server's internals: these tests check the contracts in `docs/`.

mod bad_input;
mod connections;
mod degrade;
mod docs;
mod errors;
mod example_config;
mod faults;
mod filter;
mod grafana;
mod grpc;
mod harness;
mod latency;
mod lifecycle;
mod lists;
mod lists_fleet;
mod lists_grpc;
mod pipeline;
mod rate_limit;
mod reflection;
