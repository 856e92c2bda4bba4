//! Benchmarks of espresso against named peers, and the load-test tools.
//!
//! - `benches/*.rs`: criterion benches, each comparing an espresso piece with the crate people use
//!   today, in the same run (`cargo bench -p espresso-benches --bench <name>`).
//! - `src/bin/loadgen.rs`: a closed-loop HTTP/1.1 load generator (N keep-alive connections, one
//!   request in flight on each) reporting requests/s and latency percentiles.
//! - `src/bin/echo.rs`: a plain axum JSON echo, the baseline the demo server is measured against.
//! - `load.sh`: builds both servers, runs the generator against each in one go, prints the table.
//!
//! BENCHMARKS.md at the workspace root records the figures and the commands.
#![forbid(unsafe_code)]

pub mod load;
