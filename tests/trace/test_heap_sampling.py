#!/usr/bin/python3
"""test_heap_sampling.py — the heap profile's bookkeeping: with HAKMEM_TRACE_SAMPLE=1 every block the program's calls
hand out is one heap_sample with the program's call site innermost, and every one of them is freed exactly once in
the trace — by its owner, by another thread, or by realloc's moves — also under a cap and injected OS refusals.

Usage: test_heap_sampling.py --lib LIB --program heap_sampling_program
"""
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tracetest as tt  # noqa: E402

# The program holds about 20 MiB at its end: a 16 MiB cap refuses some of its blocks whatever the schedule, and
# HAKMEM_FAULT_OS refuses OS calls besides (a seed: the same calls each run).
SETTINGS = [
    ("no limit", {}),
    ("capped at 16M with 2% of the OS calls refused", {"HAKMEM_MAX_MEMORY": "16M", "HAKMEM_FAULT_OS": "prob:0.02:7"}),
]


def check_run(args, label, extra_env):
    import os
    env = dict(os.environ, **extra_env)
    out = tt.workdir() / "stdout"
    with open(out, "w") as f:
        rc, trace = record(args, env, f)
    tt.check(rc == 0, f"{label}: the program exited with status {rc}")
    lines = dict(line.split(" ", 1) for line in out.read_text().splitlines())
    lo, hi = (int(x, 16) for x in lines["program"].split())
    allocations = int(lines["allocations"])
    t = tt.read_trace(trace, names={"hakmem:heap_sample", "hakmem:heap_sample_free"})
    tt.check(t.discarded_events == 0, f"{label}: {t.discarded_events} events were discarded")
    live = {}
    ours = 0
    for e in t.events:
        key = (e["vpid"], e["ptr"])
        if e["name"] == "hakmem:heap_sample":
            tt.check(key not in live, f"{label}: block {e['ptr']:#x} sampled twice without a free between")
            tt.check(e["mean"] == 1 and e["frames"], f"{label}: sample {e}")
            mine = lo <= e["frames"][0] < hi
            ours += mine
            live[key] = mine
        else:
            tt.check(key in live, f"{label}: heap_sample_free of {e['ptr']:#x}, which no sample holds")
            del live[key]
    tt.check(ours == allocations,
             f"{label}: {ours} samples have the program's own call site innermost, but it made {allocations} blocks")
    left = sum(live.values())
    tt.check(left == 0, f"{label}: {left} of the program's sampled blocks have no heap_sample_free, all were freed")
    return allocations


def record(args, env, stdout):
    """hakmem-trace record --heap-profile=1 with the program's stdout to a file (tracetest's record shares ours)."""
    trace = tt.workdir("hakmem-trace-")
    argv = [tt.PYTHON, str(tt.HAKMEM_TRACE), "record", "--lib", tt.trace_library(args.lib), "-o", str(trace),
            "--heap-profile=1", "--", args.program]
    print("+ " + " ".join(argv), flush=True)
    try:
        rc = subprocess.run(argv, env=env, stdout=stdout, timeout=300).returncode
    except subprocess.TimeoutExpired:
        tt.fail("hakmem-trace record did not finish within 300 s")
    return rc, trace


def main():
    args = tt.arguments(program="heap_sampling_program")
    tt.require_tracing()
    if not {"heap_sample", "heap_sample_free"} <= tt.compiled_events():
        tt.skip("this build compiles the heap profile's events out")
    made = [check_run(args, label, env) for label, env in SETTINGS]
    tt.check(made[1] < made[0], f"the capped, faulted run handed out {made[1]} blocks, the free one {made[0]}: "
             "no refusal reached the program")
    tt.ok(f"every block sampled once and freed once: {made[0]} blocks; {made[1]} under the cap and faults")


if __name__ == "__main__":
    main()
