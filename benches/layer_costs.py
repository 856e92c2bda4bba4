#!/usr/bin/env python3
"""Each layer's own cost per request next to its peer's: the table in BENCHMARKS.md.

    python3 benches/layer_costs.py [ROUNDS=5]

For every layer, its criterion bench has a case for the layer, one for its peer and one for the
bare service around which both sit. A layer's own cost is its case less the bare case:
- instructions, from callgrind: the bench binary runs the three cases under
  `valgrind --tool=callgrind` (`--profile-time 1`), and the inclusive instructions of the
  bench's never-inlined `call` inside criterion's timed loop are divided by its calls (the same figure on a busy machine as
  on a quiet one);
- nanoseconds, from criterion: each bench runs ROUNDS times (`--warm-up-time 1
  --measurement-time 2`); the table gives the median over rounds of each case's estimate, and the
  ratio is the median over rounds of espresso's own cost over the peer's.
Needs valgrind. Builds the benches in release first.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The bench binaries run from the crate's folder, as `cargo bench` runs them; criterion keeps its
# reports in the workspace's target folder as it does there, not in a `target` of that folder.
BENCH_ENV = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target")}

# layer, bench, espresso case, peer name, peer case, bare case
LAYERS = [
    ("request id", "request_id", "request_id/no_incoming_id/espresso",
     "tower-http SetRequestId + PropagateRequestId", "request_id/no_incoming_id/tower-http",
     "request_id/no_incoming_id/bare"),
    ("request id, valid incoming id", "request_id", "request_id/valid_incoming_id/espresso",
     "tower-http, same", "request_id/valid_incoming_id/tower-http",
     "request_id/valid_incoming_id/bare"),
    ("rate limit (one client, admitted)", "rate_limit", "rate_limit/uncontended/espresso",
     "tower_governor", "rate_limit/uncontended/tower_governor", "rate_limit/uncontended/bare"),
    ("circuit breaker (closed)", "circuit_breaker", "circuit_breaker_closed/espresso",
     "tower-resilience circuit breaker", "circuit_breaker_closed/tower_resilience",
     "circuit_breaker_closed/bare"),
    ("degrade (fixed limit of 1,000; admitted)", "degrade", "degrade/admitted/espresso_fixed",
     "tower LoadShed + ConcurrencyLimit(1,000)",
     "degrade/admitted/tower_load_shed_concurrency_limit", "degrade/admitted/bare"),
    ("degrade (Gradient2, queue, switch, priority; admitted)", "degrade",
     "degrade/admitted/espresso_gradient2_queue_switch",
     "tower LoadShed + ConcurrencyLimit", "degrade/admitted/tower_load_shed_concurrency_limit",
     "degrade/admitted/bare"),
    ("slow call (recorder filtered at INFO; handler opens 5 spans)", "slow_call",
     "slow_call/fast_request_5_spans/slow_call_recorder_filtered",
     "tower-http TraceLayer + fmt to a sink", "slow_call/fast_request_5_spans/trace_layer_fmt",
     "slow_call/fast_request_5_spans/no_tracing"),
]


def build():
    """Builds the benches; returns {bench name: executable}."""
    benches = sorted({layer[1] for layer in LAYERS})
    args = ["cargo", "bench", "-q", "-p", "espresso-benches", "--no-run",
            "--message-format=json"]
    for bench in benches:
        args += ["--bench", bench]
    out = subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    executables = {}
    for line in out.splitlines():
        message = json.loads(line)
        target = message.get("target", {})
        if message.get("executable") and "bench" in target.get("kind", []):
            executables[target["name"]] = message["executable"]
    return executables


def case_filter(cases):
    return "^(" + "|".join(re.escape(case) for case in cases) + ")$"


def call_cost(path):
    """(calls, inclusive instructions) of the bench's `call`, from a callgrind file written
    with plain names and positions."""
    callee = re.compile(r"^[a-z_]+::call(<|$)")
    calls = cost = 0
    matches, pending = False, None
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if pending is not None:
                # The line after `calls=` holds the call's inclusive cost.
                cost += int(line.split()[-1])
                calls += pending
                pending = None
            elif line.startswith("cfn="):
                matches = bool(callee.search(line[4:].strip()))
            elif line.startswith("calls=") and matches:
                pending = int(line[6:].split()[0])
    return calls, cost


def instructions(executable, case):
    with tempfile.TemporaryDirectory() as out:
        path = Path(out) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={path}",
             "--compress-strings=no", "--compress-pos=no",
             # Only what the timed loop runs: set-up code may call `call` too (the rate limit's
             # 1M-key group fills its limiters through it).
             "--toggle-collect=criterion::bencher::Bencher<*>::iter*", executable, "--bench",
             "--profile-time", "1", case_filter([case])],
            cwd=ROOT / "benches", env=BENCH_ENV, check=True, capture_output=True)
        calls, cost = call_cost(path)
    if calls == 0:
        sys.exit(f"{case}: callgrind saw no call of `call`")
    return cost / calls


ESTIMATE = re.compile(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]")
UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}


def nanoseconds(executable, cases):
    """Criterion's estimate of each case, in ns, from one run of the bench."""
    out = subprocess.run(
        [executable, "--bench", "--warm-up-time", "1", "--measurement-time", "2",
         case_filter(cases)],
        cwd=ROOT / "benches", env=BENCH_ENV, check=True, capture_output=True, text=True).stdout
    found, current = {}, None
    for line in out.splitlines():
        name = line.split("time:")[0].strip()
        if name in cases:
            current = name
        estimate = ESTIMATE.search(line)
        if estimate and current:
            found[current] = float(estimate.group(1)) * UNITS[estimate.group(2)]
            current = None
    missing = set(cases) - set(found)
    if missing:
        sys.exit(f"criterion printed no estimate for {sorted(missing)}")
    return found


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    executables = build()
    # each bench's cases, every one counted once and timed once a round
    by_bench = {}
    for _, bench, ours, _, peer, bare in LAYERS:
        by_bench.setdefault(bench, {}).update(dict.fromkeys((ours, peer, bare)))
    counted = {case: instructions(executables[bench], case)
               for bench, cases in by_bench.items() for case in cases}
    timed = {case: [] for case in counted}
    ratios = {layer[0]: [] for layer in LAYERS}
    for _ in range(rounds):
        found = {}
        for bench, cases in by_bench.items():
            found.update(nanoseconds(executables[bench], list(cases)))
        for case, ns in found.items():
            timed[case].append(ns)
        for name, _, ours, _, peer, bare in LAYERS:
            ratios[name].append((found[ours] - found[bare]) / (found[peer] - found[bare]))
    ns = {case: statistics.median(values) for case, values in timed.items()}
    print(f"{rounds} rounds; own cost = the case less the bare service's\n")
    print("| layer | own cost, ns | instructions | peer | peer's own cost, ns | instructions "
          "| ns ratio (median of rounds) | instruction ratio |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for name, _, ours, peer_name, peer, bare in LAYERS:
        own_ns, peer_ns = ns[ours] - ns[bare], ns[peer] - ns[bare]
        own_i, peer_i = counted[ours] - counted[bare], counted[peer] - counted[bare]
        print(f"| {name} | {own_ns:,.0f} | {own_i:,.0f} | {peer_name} | {peer_ns:,.0f} | "
              f"{peer_i:,.0f} | {statistics.median(ratios[name]):.2f}x | {own_i / peer_i:.2f}x |")


if __name__ == "__main__":
    main()
