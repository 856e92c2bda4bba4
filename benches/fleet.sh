#!/usr/bin/env bash
# The fleet harness (BENCHMARKS.md and RELIABILITY.md, "Scale-out"): a local Redis Cluster
# (3 masters + 3 replicas), three espresso servers sharing one global limit through it, load
# spread evenly over them. Reports the p99 the limiter adds, admitted vs the limit in exact and
# leased mode with Redis script calls per admitted request, and a kill -9 of the limit key's
# master mid-run (failed requests, time on the local fallback, time back to Redis).
#   bash benches/fleet.sh [SECONDS] [WARMUP] [LIMIT] [PROFILE]
# PROFILE: release (the default, for the published figures) or debug (CI: the test build, no
# release compile; its latencies mean nothing, its accuracy and failover checks do).
# Needs redis-server and redis-cli on the PATH. Exit status 1 when a goal is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
warmup=${2:-2}
limit=${3:-3000}
profile=${4:-release}
case "$profile" in
release) cargo build --release -q -p espresso-server -p espresso-benches --bin espresso-server --bin fleet ;;
debug) cargo build -q -p espresso-server -p espresso-benches --bin espresso-server --bin fleet ;;
*) echo "PROFILE is release or debug, not $profile" >&2; exit 2 ;;
esac
exec "target/$profile/fleet" --seconds "$seconds" --warmup "$warmup" --limit "$limit"
