//! Benchmarks of espresso against named peers, and the load-test tools.
//!
//! - `benches/*.rs`: criterion benches, each comparing an espresso piece with the crate people use
//!   today, in the same run (`cargo bench -p espresso-benches --bench <name>`).
//! - `data/`: the corpora and word lists the filter benches read; `data/SOURCES.md` gives their
//!   sources and licences, and `data/make_data.py` rebuilds them from registry packages.
//! - `src/bin/loadgen.rs`: a closed-loop HTTP/1.1 load generator (N keep-alive connections, one
//!   request in flight on each) reporting requests/s and latency percentiles.
//!   With `--rate` it keeps a fixed schedule instead; with `--unique-client-ips true` every
//!   request names a new client in `X-Forwarded-For`.
//! - `src/bin/echo.rs`: a plain axum JSON echo, the baseline the demo server is measured against.
//! - `load.sh`: builds both servers, runs the generator against each in one go, prints the table;
//!   `callgrind.sh`: the instructions per request of both, the same on a busy machine.
//! - `src/bin/overload.rs`: the adaptive concurrency limits against a service of known capacity,
//!   at 1x–5x its capacity.
//! - `src/bin/faults/` and `faults.sh`: faults injected under load (classifier, Redis, SIGTERM),
//!   every request counted; `soak.sh` and `keyflood.sh`: memory under a long steady load and
//!   under a flood of distinct clients.
//!
//! BENCHMARKS.md and RELIABILITY.md at the workspace root record the figures and the commands.
#![forbid(unsafe_code)]

pub mod load;
