#!/usr/bin/env bash
# The demo server's load test: /v1/filter with the full stack vs a plain axum JSON echo, same run,
# same load generator, same machine.
#   bash benches/load.sh [CONNECTIONS] [SECONDS] [RATE]
# First closed loop (throughput: each connection sends as soon as it has its answer), then a
# fixed schedule of RATE requests/s (latency, measured from when each request was due).
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-150}
seconds=${2:-10}
rate=${3:-10000}
cargo build --release -q -p espresso-server -p espresso-benches --bins
bin=target/release
body='{"content": "a plain chat line with one badword and 你好 in it"}'

"$bin/echo" 127.0.0.1:18081 >/dev/null &
echo_pid=$!
RUST_LOG=warn "$bin/espresso-server" --config benches/load.toml >/dev/null &
server_pid=$!
trap 'kill $echo_pid $server_pid 2>/dev/null || true' EXIT
sleep 1

run() { # label url [extra loadgen flags]
    printf '%-28s' "$1"
    "$bin/loadgen" "$2" --connections "$connections" --duration "$seconds" --body "$body" "${@:3}"
}
echo "machine: $(nproc) cores; $connections connections, ${seconds}s after 2s warm-up"
run "echo, closed loop:" http://127.0.0.1:18081/v1/filter
run "espresso, closed loop:" http://127.0.0.1:18080/v1/filter
run "echo, $rate req/s:" http://127.0.0.1:18081/v1/filter --rate "$rate"
run "espresso, $rate req/s:" http://127.0.0.1:18080/v1/filter --rate "$rate"
