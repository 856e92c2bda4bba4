#!/usr/bin/env bash
# Instructions per request of the demo server and of the plain axum echo, counted by callgrind:
# the same figures on a busy machine as on a quiet one, so a change's cost shows exactly.
#   bash benches/callgrind.sh [SECONDS=4]
#   BEFORE=<other espresso-server binary> bash benches/callgrind.sh   (also counts that build,
#       e.g. one from before a change, with the same config, body and load)
#   KEEP=<dir> bash benches/callgrind.sh   (keeps the callgrind files for callgrind_annotate)
# Each server runs under valgrind; 10 keep-alive connections send the load.sh body, first a
# warm-up (not counted), then SECONDS counted. Needs valgrind (on every machine of this kind).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-4}
cargo build --release -q -p espresso-server -p espresso-benches --bins
body='{"content": "a plain chat line with one badword and 你好 in it"}'
if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    out=$KEEP
else
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi

count() { # label port command...
    local label=$1 port=$2
    shift 2
    RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out/$label.%p" "$@" \
        >/dev/null 2>&1 &
    local pid=$!
    until curl -sf -o /dev/null -X POST -H 'content-type: application/json' -d "$body" \
        "http://127.0.0.1:$port/v1/filter"; do sleep 1; done
    target/release/loadgen "http://127.0.0.1:$port/v1/filter" --connections 10 --warmup 0 \
        --duration 2 --body "$body" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    local report
    report=$(target/release/loadgen "http://127.0.0.1:$port/v1/filter" --connections 10 \
        --warmup 0 --duration "$seconds" --body "$body")
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local requests total
    requests=$(grep -o '{200: [0-9]*' <<<"$report" | grep -o '[0-9]*$')
    total=$(callgrind_annotate "$out/$label".*.1 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    printf '%-10s %7d instructions/request (%d requests counted)\n' "$label" $((total / requests)) "$requests"
}
count echo 18081 target/release/echo 127.0.0.1:18081
count espresso 18080 target/release/espresso-server --config benches/load.toml
if [ -n "${BEFORE:-}" ]; then
    count before 18080 "$BEFORE" --config benches/load.toml
fi
