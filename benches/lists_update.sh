#!/usr/bin/env bash
# How long a change made through the lists API takes to be visible (BENCHMARKS.md, "Lists API"):
# a release espresso-server with the 16,571-word bench dictionary (benches/data/dict) as its
# config lists, an API list, and ROUNDS calls that each add 100 new words. A call answers once the
# rebuilt dictionary is swapped in, so its time is the time until the change is visible; a check
# of one of the new words right after each call confirms it. Prints the median, min and max.
#   bash benches/lists_update.sh [ROUNDS] [PROFILE]
# PROFILE: release (the default) or debug. Needs curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
profile=${2:-release}
case "$profile" in
release) cargo build --release -q -p espresso-server ;;
debug) cargo build -q -p espresso-server ;;
*) echo "PROFILE is release or debug, not $profile" >&2; exit 2 ;;
esac
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
data=$(pwd)/benches/data/dict
cat >"$dir/espresso.toml" <<TOML
[rate_limit]
enabled = false
[admin]
token = "bench"
[lists]
dir = "lists"
[filter]
[[filter.lists]]
path = "$data/zh-sensitive.txt"
level = "danger"
[[filter.lists]]
path = "$data/en-profanity.tsv"
level = "normal"
TOML
"target/$profile/espresso-server" --config "$dir/espresso.toml" --listen 127.0.0.1:0 >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
addr=$(awk '/listening on/ {print $NF; exit}' "$dir/out")
auth='Authorization: Bearer bench'
json='content-type: application/json'
curl -sf -XPUT "http://$addr/v1/lists/bench" -H "$auth" -H "$json" \
  -d '{"description": "bench", "level": "normal", "kind": "deny"}' >/dev/null
times=()
for round in $(seq "$rounds"); do
  words=$(python3 -c "import json,sys; r=int(sys.argv[1]); print(json.dumps({'words': [{'word': f'qzx{r}w{i}'} for i in range(100)]}))" "$round")
  t=$(curl -sf -o /dev/null -w '%{time_total}' "http://$addr/v1/lists/bench/words" -H "$auth" -H "$json" -d "$words")
  verdict=$(curl -sf "http://$addr/v1/filter" -H "$json" -d "{\"content\": \"a qzx${round}w99 here\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["verdict"])')
  [ "$verdict" = review ] || { echo "round $round: the new word was not flagged ($verdict)" >&2; exit 1; }
  times+=("$t")
done
printf '%s\n' "${times[@]}" | python3 -c '
import statistics, sys
ms = sorted(float(l) * 1000 for l in sys.stdin)
print(f"100-word add to a 16,571-word dictionary, {len(ms)} rounds: median {statistics.median(ms):.1f} ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms")'
