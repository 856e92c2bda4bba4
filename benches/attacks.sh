#!/usr/bin/env bash
# Connection-level attacks on the release demo server while a well-behaved client keeps calling
# (RELIABILITY.md, "Connection-level attacks"; issue 22). For each attack: what the attacker saw
# (connections closed, when), the server's RSS (at the start, peak, and 30 s after the attack
# ended), and the well-behaved client's p99 and failures (loadgen: 4 keep-alive connections,
# 200 requests/s, over the attack's length).
#   bash benches/attacks.sh [ATTACK...]   (all: about 8 minutes; every limit at its default)
# Needs python3 with the h2 package, slowhttptest and h2load (Debian: slowhttptest,
# nghttp2-client). Exit status 1 if a goal is missed: peak RSS over 300 MB or not back within
# 50 MB of the start 30 s after (zero window, unfinished headers), a client p99 over 50 ms or a
# failed client request during any attack.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in python3 slowhttptest h2load; do
    command -v "$tool" >/dev/null || { echo "attacks.sh: $tool is missing" >&2; exit 2; }
done
python3 -c 'import h2' 2>/dev/null || { echo "attacks.sh: pip install h2" >&2; exit 2; }
cargo build --release -q -p espresso-server -p espresso-benches --bin espresso-server --bin loadgen
ulimit -n "$(ulimit -Hn)"
addr=127.0.0.1:18090
ops=127.0.0.1:18091
work=$(mktemp -d)
RUST_LOG=warn target/release/espresso-server --config benches/attacks.toml >"$work/server.out" 2>"$work/server.log" &
server=$!
# A second server, rate limited to 1 request/s, for requests pipelined behind a 429.
printf '[server]\nlisten = "127.0.0.1:18092"\n[rate_limit]\nper_second = 1\nburst = 1\n' >"$work/limited.toml"
RUST_LOG=warn target/release/espresso-server --config "$work/limited.toml" >/dev/null 2>&1 &
limited=$!
trap 'kill $server $limited 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 1
rss_mb() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$server/status"; }
metric() { curl -s "http://$ops/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
body='{"content": "a plain chat line with one badword and 你好 in it"}'
failed_goals=0
only=("$@")
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); server target/release/espresso-server, every limit at its default"
echo "open-file limit of the attackers: $(ulimit -n)"
printf '\n%-13s %8s %8s %8s %9s %7s  %s\n' attack "rss0 MB" "peak MB" "+30s MB" "p99 ms" failed "what the attacker saw"

# phase NAME SECONDS RSS_GOAL ATTACK...: runs ATTACK beside loadgen for SECONDS, samples RSS.
phase() {
    local name=$1 seconds=$2 goal=$3
    shift 3
    if [ ${#only[@]} -gt 0 ] && ! [[ " ${only[*]} " == *" $name "* ]]; then return; fi
    local start peak after
    start=$(rss_mb)
    (while kill -0 $server 2>/dev/null; do rss_mb; echo; sleep 0.1; done) >"$work/rss" &
    local sampler=$!
    target/release/loadgen "http://$addr/v1/filter" --connections 4 --rate 200 --warmup 0 \
        --duration "$seconds" --body "$body" --unique-client-ips true >"$work/client" 2>&1 &
    local client=$!
    "$@" >"$work/attack" 2>&1 || true
    wait $client || true
    sleep 30
    after=$(rss_mb)
    kill $sampler 2>/dev/null || true
    peak=$(sort -n "$work/rss" | tail -1)
    local p99 failed statuses
    p99=$(awk '{ for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1) }' "$work/client" | head -1)
    failed=$(awk '{ for (i = 1; i < NF; i++) if ($i == "failed") print $(i + 1) }' "$work/client" | head -1)
    statuses=$(grep -o 'statuses {[^}]*}' "$work/client" | head -1)
    printf '%-13s %8s %8s %8s %9s %7s  %s\n' "$name" "$start" "$peak" "$after" "$p99" "$failed" "$(tail -c 600 "$work/attack" | tr '\n' ' ')"
    printf '%-13s %s\n' "" "client: $statuses"
    if [ "${failed:-x}" != 0 ] || ! grep -qE '^statuses \{200: [0-9]+\}$' <<<"$statuses" \
        || ! awk -v p="${p99:-999}" 'BEGIN { exit !(p <= 50) }'; then
        echo "  ! goal missed: the well-behaved client had a failure, an answer other than 200, or a p99 over 50 ms"
        failed_goals=1
    fi
    if [ "$goal" = rss ] && { [ "$peak" -gt 300 ] || [ "$after" -gt $((start + 50)) ]; }; then
        echo "  ! goal missed: peak RSS over 300 MB or not back within 50 MB of the start"; failed_goals=1
    fi
}

phase silent 12 - python3 benches/attacks.py silent "$addr" 5000
phase idle-h2 64 - python3 benches/attacks.py idle-h2 "$addr" 200
phase zero-window 40 rss python3 benches/attacks.py zero-window "$addr" 5 200 45
phase big-headers 12 rss python3 benches/attacks.py big-headers "$addr" 2000 392
phase amplify 10 - python3 benches/attacks.py amplify "$addr" 88 10
phase hygiene 8 - python3 benches/attacks.py hygiene "$addr" 127.0.0.1:18092
slowloris() {
    slowhttptest -c 1000 -H -i 5 -r 200 -s 8192 -t GET -u "http://$addr/v1/filter" -x 24 -p 3 -l 30 \
        -g -o "$work/slowloris" >/dev/null 2>&1 || true
    # seconds, closed, pending, connected, service available (last row)
    echo "slowloris 1000 connections: $(tail -1 "$work/slowloris.csv")"
}
phase slowloris 32 - slowloris
slowbody() {
    # A JSON content type (slowhttptest's default is a form, answered 415 at once), a body of
    # max_body_bytes announced, 1-10 bytes of it every 5 s: the server waits on the body until
    # request_timeout_ms answers 408 and the connection closes.
    slowhttptest -c 1000 -B -f application/json -i 5 -r 200 -s 65536 -t POST \
        -u "http://$addr/v1/filter" -x 10 -p 3 -l 30 -g -o "$work/slowbody" >/dev/null 2>&1 || true
    # seconds, closed, pending, connected, service available (the connection count, 0 when
    # slowhttptest's probe got no answer): one row a second
    local timeouts
    timeouts=$(curl -s "http://$ops/metrics" | awk '/^http_server_request_duration_seconds_count\{/ && /status="408"/ { n += $2 } END { print n + 0 }')
    awk -F, -v t="${timeouts:-0}" 'NR > 1 && $2 > 0 && !first { first = $1 } NR > 1 && $2 > closed { closed = $2; at = $1 }
        NR > 1 && $5 == 0 { down++ } END {
        printf "slow body (JSON), 1000 connections: first closed by the server at %s s, %s closed by %s s, %s answered 408 request_timeout (http_server_request_duration_seconds), probe unanswered in %d samples; last row ", first, closed, at, t, down }' \
        "$work/slowbody.csv"
    tail -1 "$work/slowbody.csv"
}
phase slowbody 32 - slowbody
streams() {
    printf '%s' "$body" >"$work/body"
    h2load -n 50000 -c 10 -m 1000 -d "$work/body" -H 'content-type: application/json' \
        "http://$addr/v1/filter" 2>&1 | grep -E '^(requests|status codes|finished in)' | tr -s ' '
}
phase h2-streams 20 - streams
echo
echo "server counters: timeouts $(curl -s "http://$ops/metrics" | awk '/^espresso_connection_timeouts_total\{listener="public"/ { sub(/.*timeout="/, "", $1); sub(/"}/, "", $1); printf "%s=%s ", $1, $2 }')"
echo "                 limit reached $(metric 'espresso_connections_limit_reached_total{listener="public"}'), open now $(metric 'espresso_connections_open{listener="public"}'), hits truncated $(metric espresso_filter_hits_truncated_total)"
exit $failed_goals
