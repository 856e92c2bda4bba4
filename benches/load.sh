#!/usr/bin/env bash
# The demo server's load test: /v1/filter with the full stack vs a plain axum JSON echo, same run,
# same load generator, same machine.
#   bash benches/load.sh [CONNECTIONS=150] [SECONDS=10] [RATE=10000] [ROUNDS=3]
# First closed loop (throughput: each connection sends as soon as it has its answer), ROUNDS
# times each, echo and espresso taking turns so that a neighbour's burst on a shared machine
# hits both alike; then the median of the rounds' ratios. Then a fixed schedule of RATE
# requests/s (latency, measured from when each request was due), also in turns, and the median
# p99 of each.
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
median() { sort -n | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }'; }
field() { # the number before (unit) or after (p99) a word: field LINE WORD before|after
    awk -v word="$2" -v side="$3" '{ for (i = 2; i < NF; i++) if ($i == word) print (side == "before" ? $(i - 1) : $(i + 1)) }' <<<"$1"
}
ratios=()
for round in $(seq "$rounds"); do
    echo_line=$(run "echo, closed loop:" http://127.0.0.1:18081/v1/filter)
    espresso_line=$(run "espresso, closed loop:" http://127.0.0.1:18080/v1/filter)
    printf '%s\n%s\n' "$echo_line" "$espresso_line"
    ratios+=("$(awk -v e="$(field "$echo_line" req/s before)" -v s="$(field "$espresso_line" req/s before)" \
        'BEGIN { printf "%.3f", s / e }')")
done
printf 'espresso/echo requests/s by round: %s; median %s\n' "${ratios[*]}" \
    "$(printf '%s\n' "${ratios[@]}" | median)"
# The fixed rate takes turns too (up to 3 rounds): one neighbour's burst can triple a p99.
echo_p99=() espresso_p99=()
for round in $(seq "$((rounds < 3 ? rounds : 3))"); do
    echo_line=$(run "echo, $rate req/s:" http://127.0.0.1:18081/v1/filter --rate "$rate")
    espresso_line=$(run "espresso, $rate req/s:" http://127.0.0.1:18080/v1/filter --rate "$rate")
    printf '%s\n%s\n' "$echo_line" "$espresso_line"
    echo_p99+=("$(field "$echo_line" p99 after)")
    espresso_p99+=("$(field "$espresso_line" p99 after)")
done
printf 'p99 at %s req/s by round, echo: %s; espresso: %s; medians %s / %s ms\n' "$rate" \
    "${echo_p99[*]}" "${espresso_p99[*]}" "$(printf '%s\n' "${echo_p99[@]}" | median)" \
    "$(printf '%s\n' "${espresso_p99[@]}" | median)"
