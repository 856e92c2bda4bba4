#!/usr/bin/env bash
# The newcomer check: the README's test command on a machine where neither `redis-server` nor
# `chromium` is installed and there is no network (so no Redis at 127.0.0.1:6379 either). It
# must pass, the tests that need those programs skipping with one line each.
#
# Runs the command in a new mount + network namespace (only a loopback inside), with both
# programs hidden by mounting /dev/null over them, `CARGO_NET_OFFLINE=true` and
# `ESPRESSO_REQUIRE_SERVICES` unset. Arguments replace `--workspace` in the test command (e.g.
# `-p espresso-rate-limit` to check one crate). Needs util-linux `unshare` and iproute2 `ip`; as a normal user it
# runs in a user namespace too. Exits with cargo's status, or 1 when nothing skipped.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

hidden=(redis-server chromium)

if [[ ${1-} == --inside ]]; then
    shift
    ip link set lo up
    IFS=: read -ra dirs <<<"$PATH"
    for program in "${hidden[@]}"; do
        for dir in "${dirs[@]}"; do
            if [[ -e $dir/$program && ! -c $dir/$program ]]; then
                mount --bind /dev/null "$dir/$program"
            fi
        done
    done
    # What the tests look for: an executable regular file on PATH.
    for program in "${hidden[@]}"; do
        for dir in "${dirs[@]}"; do
            if [[ -f $dir/$program && -x $dir/$program ]]; then
                echo "hermetic-check: could not hide $dir/$program" >&2
                exit 1
            fi
        done
    done
    (($#)) || set -- --workspace
    exec cargo test --all-features "$@"
fi

flags=(--mount --net)
((EUID == 0)) || flags+=(--map-root-user)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
unshare "${flags[@]}" env -u ESPRESSO_REQUIRE_SERVICES CARGO_NET_OFFLINE=true \
    "$self" --inside "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

skips=$(grep -o 'skipped .*' "$log" || true)
echo
echo "hermetic-check: cargo test exited with $status; skip lines:"
echo "${skips:-(none)}"
if ((status == 0)) && [[ -z $skips ]]; then
    echo "hermetic-check: nothing skipped, yet ${hidden[*]} were hidden" >&2
    exit 1
fi
exit "$status"
