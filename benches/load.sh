#!/usr/bin/env bash
# The demo server's load test: /v1/filter with the full stack vs a plain axum JSON echo, same run,
# same load generator, same machine.
#   bash benches/load.sh [CONNECTIONS=150] [SECONDS=10] [RATE=10000] [ROUNDS=3]
#   BEFORE=<other espresso-server binary> bash benches/load.sh ...   (a third server, e.g. a
#       build from before a change, in the same turns: echo, before, now; then the median of
#       the rounds' own now/before ratios)
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
before_pid=
if [ -n "${BEFORE:-}" ]; then
    printf '[server]\nlisten = "127.0.0.1:18082"\nreload_interval_ms = 0\n[rate_limit]\nper_second = 10000000\nburst = 10000000\n' \
        >"${TMPDIR:-/tmp}/load-before.toml"
    RUST_LOG=warn "$BEFORE" --config "${TMPDIR:-/tmp}/load-before.toml" >/dev/null &
    before_pid=$!
fi
trap 'kill $echo_pid $server_pid $before_pid 2>/dev/null || true' EXIT
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
ratio() { awk -v a="$(field "$1" req/s before)" -v b="$(field "$2" req/s before)" 'BEGIN { printf "%.3f", a / b }'; }
ratios=() before_ratios=() paired=()
for round in $(seq "$rounds"); do
    echo_line=$(run "echo, closed loop:" http://127.0.0.1:18081/v1/filter)
    # before and now swap places every round, so that neither always follows the echo
    if [ -n "$before_pid" ] && [ $((round % 2)) = 1 ]; then
        before_line=$(run "before, closed loop:" http://127.0.0.1:18082/v1/filter)
    fi
    espresso_line=$(run "espresso, closed loop:" http://127.0.0.1:18080/v1/filter)
    if [ -n "$before_pid" ] && [ $((round % 2)) = 0 ]; then
        before_line=$(run "before, closed loop:" http://127.0.0.1:18082/v1/filter)
    fi
    printf '%s\n%s\n' "$echo_line" "$espresso_line"
    if [ -n "$before_pid" ]; then printf '%s\n' "$before_line"; fi
    ratios+=("$(ratio "$espresso_line" "$echo_line")")
    if [ -n "$before_pid" ]; then
        before_ratios+=("$(ratio "$before_line" "$echo_line")")
        paired+=("$(ratio "$espresso_line" "$before_line")")
    fi
done
printf 'espresso/echo requests/s by round: %s; median %s\n' "${ratios[*]}" \
    "$(printf '%s\n' "${ratios[@]}" | median)"
if [ -n "$before_pid" ]; then
    printf 'before/echo requests/s by round: %s; median %s\n' "${before_ratios[*]}" \
        "$(printf '%s\n' "${before_ratios[@]}" | median)"
    printf 'now/before requests/s by round: %s; median %s\n' "${paired[*]}" \
        "$(printf '%s\n' "${paired[@]}" | median)"
fi
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
