#!/usr/bin/env bash
# The demo server's load test: /v1/filter with the full stack vs a plain axum JSON echo, same run,
# same load generator, same machine.
#   bash benches/load.sh [CONNECTIONS=150] [SECONDS=10] [RATE=10000] [ROUNDS=3]
# First closed loop (throughput: each connection sends as soon as it has its answer), ROUNDS
# times each, echo and espresso taking turns so that a neighbour's burst on a shared machine
# hits both alike; then the median of the rounds' ratios. Then a fixed schedule of RATE
# requests/s (latency, measured from when each request was due).
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-150}
seconds=${2:-10}
rate=${3:-10000}
rounds=${4:-3}
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
ratios=()
for round in $(seq "$rounds"); do
    echo_line=$(run "echo, closed loop:" http://127.0.0.1:18081/v1/filter)
    espresso_line=$(run "espresso, closed loop:" http://127.0.0.1:18080/v1/filter)
    printf '%s\n%s\n' "$echo_line" "$espresso_line"
    ratios+=("$(awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "req/s") print $i }' \
        <<<"$echo_line"$'\n'"$espresso_line" | paste -sd' ' | awk '{ printf "%.3f", $2 / $1 }')")
done
printf 'espresso/echo requests/s by round: %s; median %s\n' "${ratios[*]}" \
    "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }')"
run "echo, $rate req/s:" http://127.0.0.1:18081/v1/filter --rate "$rate"
run "espresso, $rate req/s:" http://127.0.0.1:18080/v1/filter --rate "$rate"
