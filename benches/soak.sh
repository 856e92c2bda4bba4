#!/usr/bin/env bash
# Soak: the demo server under steady load at about half its capacity, its memory sampled.
#   bash benches/soak.sh [SECONDS=600] [RATE=10000] [CONNECTIONS=64]
# Prints RSS every 30 s, then the load generator's summary (every answer must be a 200, none
# failed) and the RSS growth after the first minute of warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
rate=${2:-10000}
connections=${3:-64}
source benches/server-under-load.sh
start_server benches/load.toml
body='{"content": "a plain chat line with one badword and 你好 in it"}'
echo "machine: $(nproc) cores; $rate req/s over $connections connections for ${seconds}s"
echo "RSS at start: $(rss_kib) KiB"
target/release/loadgen "$server_url/v1/filter" --connections "$connections" --warmup 0 \
    --duration "$seconds" --rate "$rate" --body "$body" >/tmp/espresso-soak.txt &
load_pid=$!
echo "| elapsed s | RSS KiB |"
echo "|---:|---:|"
warm=""
for ((t = 30; t <= seconds; t += 30)); do
    sleep 30
    rss=$(rss_kib)
    echo "| $t | $rss |"
    [[ $t -eq 60 ]] && warm=$rss
done
wait $load_pid
last=$(rss_kib)
echo "load: $(cat /tmp/espresso-soak.txt)"
if [[ -n $warm ]]; then
    awk -v w="$warm" -v l="$last" 'BEGIN {printf "RSS growth after warm-up (60 s -> end): %+.1f%%\n", (l - w) * 100 / w}'
fi
