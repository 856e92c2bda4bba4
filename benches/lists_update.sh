#!/usr/bin/env bash
# How long a change made through the lists API takes to be visible (BENCHMARKS.md, "Lists API"):
# a release espresso-server with the 16,571-word bench dictionary (benches/data/dict) as its
# config lists, an API list, and ROUNDS calls that each add 100 new words. A call answers once the
# rebuilt dictionary is swapped in, so its time is the time until the change is visible; a check
# of one of the new words right after each call confirms it. Prints the median, min and max.
# With STORE=redis: two servers share a throw-away redis-server (`[lists] store = "redis"`);
# each round adds through the first and times until the second flags a new word.
#   bash benches/lists_update.sh [ROUNDS] [PROFILE] [STORE]
# PROFILE: release (the default) or debug. STORE: file (the default) or redis (needs
# redis-server). Needs curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
profile=${2:-release}
store=${3:-file}
case "$profile" in
release) cargo build --release -q -p espresso-server ;;
debug) cargo build -q -p espresso-server ;;
*) echo "PROFILE is release or debug, not $profile" >&2; exit 2 ;;
esac
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
data=$(pwd)/benches/data/dict
case "$store" in
file) lists='store = "file"' ;;
redis)
  command -v redis-server >/dev/null || { echo "STORE=redis needs redis-server" >&2; exit 2; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/redis.log" &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  lists="store = \"redis\"
redis_url = \"redis://127.0.0.1:$port\"" ;;
*) echo "STORE is file or redis, not $store" >&2; exit 2 ;;
esac
cat >"$dir/espresso.toml" <<TOML
[rate_limit]
enabled = false
[admin]
token = "bench"
[lists]
dir = "lists"
$lists
[filter]
[[filter.lists]]
path = "$data/zh-sensitive.txt"
level = "danger"
[[filter.lists]]
path = "$data/en-profanity.tsv"
level = "normal"
TOML
# Starts a server; prints its address.
start() {
  local out="$dir/out$1"
  "target/$profile/espresso-server" --config "$dir/espresso.toml" --listen 127.0.0.1:0 >"$out" 2>"$dir/err$1" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$out" 2>/dev/null && break; sleep 0.1; done
  awk '/listening on/ {print $NF; exit}' "$out"
}
addr=$(start 1)
seen=$addr
[ "$store" = redis ] && seen=$(start 2)
auth='Authorization: Bearer bench'
json='content-type: application/json'
curl -sf -XPUT "http://$addr/v1/lists/bench" -H "$auth" -H "$json" \
  -d '{"description": "bench", "level": "normal", "kind": "deny"}' >/dev/null
# Each round: add 100 words through $addr, then check one of them on $seen until it is flagged
# (at once when both are the same server). The time is from sending the change to the flag.
python3 - "$addr" "$seen" "$rounds" "$store" <<'PY'
import json, statistics, sys, time, urllib.request
add, seen, rounds, store = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def post(addr, path, body, token=True):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer bench"
    req = urllib.request.Request(f"http://{addr}{path}", json.dumps(body).encode(), headers)
    with urllib.request.urlopen(req) as reply:
        return json.load(reply)
ms = []
for r in range(1, rounds + 1):
    words = {"words": [{"word": f"qzx{r}w{i}"} for i in range(100)]}
    start = time.perf_counter()
    post(add, "/v1/lists/bench/words", words)
    while post(seen, "/v1/filter", {"content": f"a qzx{r}w99 here"}, token=False)["verdict"] != "review":
        if store == "file":
            sys.exit(f"round {r}: the new word was not flagged right after the change")
        if time.perf_counter() - start > 5:
            sys.exit(f"round {r}: the second server did not flag the new word within 5 s")
        time.sleep(0.002)
    ms.append((time.perf_counter() - start) * 1000)
ms.sort()
where = "on the same server" if store == "file" else "on a second server (Redis store)"
print(f"100-word add to a 16,571-word dictionary, visible {where}, {len(ms)} rounds: "
      f"median {statistics.median(ms):.1f} ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms")
PY
