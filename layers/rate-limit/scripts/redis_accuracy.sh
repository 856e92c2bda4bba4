#!/usr/bin/env bash
# Global-limit accuracy: three processes share one Redis-backed limit of RATE/s (burst BURST)
# for SECONDS and should together admit RATE/s +- 10% (the one-off burst subtracted).
#
# Usage: layers/rate-limit/scripts/redis_accuracy.sh [redis-url]   (from the workspace root)
set -euo pipefail
URL="${1:-redis://127.0.0.1:6379}"
RATE="${RATE:-300}"
BURST="${BURST:-30}"
SECONDS_="${SECONDS_:-10}"
PREFIX="espresso-accuracy:$$:$(date +%s%N)"

cargo build --release -q -p espresso-rate-limit --features redis --example redis_accuracy
BIN="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/examples/redis_accuracy"

OUT="$(mktemp -d)"
for i in 1 2 3; do
  "$BIN" --url "$URL" --prefix "$PREFIX" --rate "$RATE" --burst "$BURST" --seconds "$SECONDS_" >"$OUT/$i" &
done
wait

TOTAL=0
for i in 1 2 3; do
  echo "process $i: $(cat "$OUT/$i")"
  N="$(sed -n 's/admitted=\([0-9]*\).*/\1/p' "$OUT/$i")"
  TOTAL=$((TOTAL + N))
done
RATE_SEEN=$(( (TOTAL - BURST) / SECONDS_ ))
echo "total admitted: $TOTAL in ${SECONDS_} s => ${RATE_SEEN}/s (limit ${RATE}/s, burst ${BURST})"
LOW=$(( RATE * 9 / 10 )); HIGH=$(( RATE * 11 / 10 ))
if [ "$RATE_SEEN" -ge "$LOW" ] && [ "$RATE_SEEN" -le "$HIGH" ]; then
  echo "OK: within 10%"
else
  echo "FAIL: outside ${LOW}..${HIGH}/s"; exit 1
fi
