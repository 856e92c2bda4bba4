#!/usr/bin/env bash
# Fault injection under load against the release demo server (RELIABILITY.md, "Faults under
# load"): the classifier turns slow, fails, dies and comes back; Redis is killed and restarted;
# the server gets SIGTERM. Prints one table per run and the breaker timings.
#   bash benches/faults.sh [SECONDS_PER_PHASE] [CLIENTS] [RATE]   (RATE 0: closed loop)
# Needs redis-server and redis-cli on the PATH. Exit status 1 if a request was lost or answered
# unexpectedly.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
clients=${2:-32}
rate=${3:-3000}
cargo build --release -q -p espresso-server -p espresso-benches --bin espresso-server --bin faults
exec target/release/faults --seconds-per-phase "$seconds" --clients "$clients" --rate "$rate"
