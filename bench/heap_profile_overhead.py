#!/usr/bin/python3
"""heap_profile_overhead.py — what the heap profile costs: hakmem's sampled trace build against release, and heaptrack.

Variants, each the same workload (bench_mixed and bench_larson of bench/run, built by the release preset):
  release     LD_PRELOAD=build/release/libhakmem.so
  sampling    LD_PRELOAD=build/trace/libhakmem-trace.so, HAKMEM_TRACE_SAMPLE=512K, no session recording (a session
              daemon may run: the tracepoints stay disabled, so only the sampler's countdown and table run)
  recording   the trace library under `hakmem-trace record --heap-profile=512K --loglevel=TRACE_WARNING`: the
              failures, the state dump and the samples with their stacks (a heap profile in production)
  all-events  the same with every hakmem event, each refill decision too (what bench/trace_overhead.py measures)
  glibc       no preload: the allocator heaptrack measures
  heaptrack   `heaptrack -o FILE` around the same program (glibc's malloc, every call recorded with its stack)
Time is the workload's own (the `seconds=` it prints: no process start, session set-up or trace flush); peak RSS
is GNU time's %M for the whole command (heaptrack's interpreter process included). One untimed warm-up of each
variant, then --runs rounds, each running every variant once in an order rotated from round to round, so that
the machine's drift spreads over all of them; medians and ratios to release (glibc for heaptrack) are printed.
After the last round, the analysis of the last recording (`hakmem-trace heap`) and of the last heaptrack file
(`heaptrack_print`) are timed. Target (issue: heap profile): recording / release <= 1.05.

usage: bench/heap_profile_overhead.py [--runs N] [--workloads mixed,larson] [--threads N]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import variant_rounds as vr
from variant_rounds import HAKMEM_TRACE, PYTHON, REPO

TARGET = 1.05
SAMPLE = "524288"
VARIANTS = ["release", "sampling", "recording", "all-events", "glibc", "heaptrack"]
BASE = {"sampling": "release", "recording": "release", "all-events": "release", "heaptrack": "glibc"}


class Runner:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, Path(tmp)
        self.last = {}

    def command(self, variant, program):
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env.pop("HAKMEM_TRACE_SAMPLE", None)
        if variant == "release":
            env["LD_PRELOAD"] = str(self.args.release_lib)
            return program, env
        if variant == "sampling":
            env.update(LD_PRELOAD=str(self.args.trace_lib), HAKMEM_TRACE_SAMPLE=SAMPLE)
            return program, env
        if variant in ("recording", "all-events"):
            trace = self.tmp / variant
            shutil.rmtree(trace, ignore_errors=True)
            self.last[variant] = trace
            level = ["--loglevel=TRACE_WARNING"] if variant == "recording" else []
            return [PYTHON, str(HAKMEM_TRACE), "record", "--lib", str(self.args.trace_lib), f"--heap-profile={SAMPLE}",
                    *level, "-o", str(trace), "--", *program], env
        if variant == "glibc":
            return program, env
        out = self.tmp / "heaptrack"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        self.last["heaptrack"] = out
        return ["heaptrack", "-o", str(out / "run"), *program], env

    def malloc_from(self, variant):
        """The file the workload's malloc must come from (heaptrack's own preload wraps glibc's: not checked)."""
        if variant == "release":
            return self.args.release_lib.name
        if variant in ("sampling", "recording", "all-events"):
            return self.args.trace_lib.name
        return "libc.so" if variant == "glibc" else None

    def run(self, variant, program):
        argv, env = self.command(variant, program)
        return vr.timed_run("heap_profile_overhead", variant, argv, env, self.tmp / "rss", self.malloc_from(variant))

    def analysis_seconds(self):
        """(hakmem-trace heap, heaptrack_print) wall seconds on the last recordings."""
        got = {}
        heaptrack_file = next(iter(sorted(self.last["heaptrack"].glob("run*"))), None)
        heap = [PYTHON, str(HAKMEM_TRACE), "heap", "--at", "end", str(self.last["recording"])]
        for name, argv in (("hakmem-trace heap", heap),
                           ("heaptrack_print", ["heaptrack_print", str(heaptrack_file)])):
            t = time.perf_counter()
            proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            got[name] = (time.perf_counter() - t, proc.returncode, proc.stderr.strip()[-300:])
        return got


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    vr.add_arguments(ap)
    ap.add_argument("--release-lib", type=Path, default=REPO / "build/release/libhakmem.so")
    ap.add_argument("--trace-lib", type=Path, default=REPO / "build/trace/libhakmem-trace.so")
    args = ap.parse_args()
    names = vr.workload_names(ap, args)
    vr.require_built("heap_profile_overhead", [args.release_lib, args.trace_lib,
                                               *(vr.program(w, args.threads)[0] for w in names)], ["release", "trace"])
    if not shutil.which("heaptrack"):
        sys.exit("heap_profile_overhead: heaptrack is not installed (apt-get install heaptrack)")

    vr.end_on_signals()  # an interrupted recording still destroys its session and stops its daemon
    status = 0
    with tempfile.TemporaryDirectory(prefix="hakmem-heapbench-") as tmp:
        runner = Runner(args, tmp)
        for w in names:
            program = vr.program(w, args.threads)
            print(f"workload: {' '.join(program)}", flush=True)
            med, med_rss = vr.median_rounds(VARIANTS, args.runs, lambda v: runner.run(v, program))
            vr.print_table(VARIANTS, med, med_rss, BASE, {"recording": TARGET})
            for name, (secs, rc, err) in runner.analysis_seconds().items():
                print(f"  analysis: {name:<18} {secs:7.2f} s" + (f" (status {rc}: {err})" if rc else ""))
                status |= rc != 0
    return 1 if status else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the running command was ended and waited for on the way out
        sys.exit("heap_profile_overhead: interrupted")
