#!/usr/bin/env bash
# Key flood: every request from a new client address (X-Forwarded-For, the generator trusted as
# a proxy), so the rate limiter sees a new key per request, about a million in a minute; its
# memory must stay bounded by `[rate_limit] max_keys`.
#   bash benches/keyflood.sh [SECONDS=60] [CONNECTIONS=64]
# benches/keyflood.toml keeps each key busy for a second (1 request/s) and caps the limiter at
# 10,000 keys, so both bounds work: idle keys are swept, and past the cap the least limited
# keys are evicted. Prints the server's RSS every 10 s and the evictions by reason.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
connections=${2:-64}
source benches/server-under-load.sh
start_server benches/keyflood.toml
body='{"content": "a plain chat line"}'
echo "machine: $(nproc) cores; $connections connections, ${seconds}s closed loop, a new client per request"
echo "RSS before: $(rss_kib) KiB"
target/release/loadgen "$server_url/v1/filter" --connections "$connections" --warmup 0 \
    --duration "$seconds" --body "$body" --unique-client-ips true >/tmp/espresso-keyflood.txt &
load_pid=$!
for ((t = 10; t <= seconds; t += 10)); do
    sleep 10
    echo "after ${t}s: RSS $(rss_kib) KiB, $(metric espresso_rate_limit_requests_total) keys so far"
done
wait $load_pid
echo "load: $(cat /tmp/espresso-keyflood.txt)"
echo "RSS after: $(rss_kib) KiB"
curl -sf "$server_url/metrics" | grep '^espresso_rate_limit_evicted_keys_total' || true
