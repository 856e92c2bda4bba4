#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a bounded time and prints what each did.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 60 seconds, every target)
#
# Each target starts from a copy of its seed corpus (fuzz/corpus/<target>) in a temporary
# folder, so the corpus in the repository never grows. Crashing inputs are written to
# fuzz/artifacts/<target>/ (ignored by git). Exits non-zero when any target found a crash.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail

seconds="${1:-60}"
shift || true
cd "$(dirname "$0")"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# The largest input each target looks at (its own bounds are a little below these).
max_len() {
    case "$1" in
        config) echo 16384 ;;
        request_id) echo 1024 ;;
        forwarded_for) echo 4096 ;;
        *) echo 8192 ;;
    esac
}

# Prints "executions seconds exec/s" of a libFuzzer log. A clean run ends with "Done N runs in
# S second(s)" and the final stats; after a crash the last status line ("#N ... exec/s: R")
# says how far it got, and the seconds are estimated from it (marked "~"; the wall clock,
# the second argument, would include printing the crash).
libfuzzer_figures() {
    local log="$1" wall="$2" runs took rate last
    runs="$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)"
    took="$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
    if [ -z "$runs" ]; then
        last="$(grep -E '^#[0-9]+.*exec/s: [0-9]+' "$log" | tail -n 1 || true)"
        runs="$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")"
        rate="$(sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p' <<<"$last")"
        runs="${runs:-0}"
        rate="${rate:-0}"
        took="~$((rate > 0 ? runs / rate : wall))"
    fi
    echo "$runs $took ${rate:-$((runs / (took > 0 ? took : 1)))}"
}

# -a: debug assertions (and overflow checks) on, as in tests.
cargo +nightly fuzz build -a

logs="$(mktemp -d "${TMPDIR:-/tmp}/espresso-fuzz-logs.XXXXXX")"
failed=0
printf '%-14s %8s %12s %10s %8s %s\n' target seconds executions exec/s corpus result
for target in "${targets[@]}"; do
    corpus="$(mktemp -d "${TMPDIR:-/tmp}/espresso-fuzz-corpus.XXXXXX")"
    if [ -d "corpus/$target" ]; then
        cp -R "corpus/$target/." "$corpus/"
    fi
    args=(-max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10
        -print_final_stats=1)
    if [ -f "dicts/$target.dict" ]; then
        args+=(-dict="dicts/$target.dict")
    fi
    log="$logs/$target.log"
    started=$SECONDS
    set +e
    cargo +nightly fuzz run -a "$target" "$corpus" -- "${args[@]}" >"$log" 2>&1
    status=$?
    set -e

    read -r runs took rate < <(libfuzzer_figures "$log" $((SECONDS - started)))
    inputs="$(find "$corpus" -type f | wc -l)"
    if [ "$status" -eq 0 ] && ! grep -q -e '^==[0-9]*==ERROR' -e 'Test unit written to' "$log"; then
        result=ok
    else
        result="CRASH (exit $status): $(grep -m1 -o 'Test unit written to .*' "$log" || echo "see $log")"
        failed=1
    fi
    printf '%-14s %8s %12s %10s %8s %s\n' "$target" "$took" "$runs" "$rate" "$inputs" "$result"
    rm -rf "$corpus"
done
echo "logs: $logs"
exit "$failed"
