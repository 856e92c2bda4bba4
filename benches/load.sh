#!/usr/bin/env bash
# The demo server's load test: /v1/filter with the full stack vs a plain axum JSON echo, same run,
# same load generator, same machine.
#   bash benches/load.sh [CONNECTIONS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-150}
seconds=${2:-10}
cargo build --release -q -p espresso-server -p espresso-benches --bins
bin=target/release
body='{"content": "a plain chat line with one badword and 你好 in it"}'

"$bin/echo" 127.0.0.1:18081 >/dev/null &
echo_pid=$!
RUST_LOG=warn "$bin/espresso-server" --config benches/load.toml >/dev/null &
server_pid=$!
trap 'kill $echo_pid $server_pid 2>/dev/null || true' EXIT
sleep 1

echo "machine: $(nproc) cores; $connections connections, ${seconds}s after 2s warm-up"
printf 'echo    : '; "$bin/loadgen" http://127.0.0.1:18081/v1/filter --connections "$connections" --duration "$seconds" --body "$body"
printf 'espresso: '; "$bin/loadgen" http://127.0.0.1:18080/v1/filter --connections "$connections" --duration "$seconds" --body "$body"
