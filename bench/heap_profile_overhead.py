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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = "/usr/bin/python3"
HAKMEM_TRACE = REPO / "analysis" / "hakmem-trace"
TARGET = 1.05
SAMPLE = "524288"
# Larger than bench/run's: each run takes about a second here, so the sampler meets a few thousand sample points.
WORKLOADS = {"mixed": ["--ops", "60000000"], "larson": ["--ops", "200000000"]}
VARIANTS = ["release", "sampling", "recording", "all-events", "glibc", "heaptrack"]
BASE = {"sampling": "release", "recording": "release", "all-events": "release", "heaptrack": "glibc"}


def field(out, key):
    for word in out.split():
        if word.startswith(key + "="):
            return word.split("=", 1)[1]
    return None


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

    def run(self, variant, program):
        argv, env = self.command(variant, program)
        rss = self.tmp / "rss"
        proc = subprocess.run(["/usr/bin/time", "-o", str(rss), "-f", "%M", *argv], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        seconds = field(proc.stdout, "seconds")
        if proc.returncode != 0 or seconds is None:
            sys.exit(f"heap_profile_overhead: {variant} failed with status {proc.returncode}: "
                     f"{(proc.stdout + proc.stderr).strip()[-800:]}")
        return float(seconds), int(rss.read_text().split()[-1])

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
    ap.add_argument("--runs", type=int, default=5, help="timed rounds, at least 3 (default 5)")
    ap.add_argument("--workloads", default="mixed,larson", help="comma-separated, of: " + ", ".join(WORKLOADS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--release-lib", type=Path, default=REPO / "build/release/libhakmem.so")
    ap.add_argument("--trace-lib", type=Path, default=REPO / "build/trace/libhakmem-trace.so")
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs must be at least 3")
    names = [w for w in args.workloads.split(",") if w]
    if not names or any(w not in WORKLOADS for w in names):
        ap.error(f"--workloads: of {', '.join(WORKLOADS)}")
    for p in (args.release_lib, args.trace_lib, *(REPO / "build/release/bench" / f"bench_{w}" for w in names)):
        if not Path(p).is_file():
            sys.exit(f"heap_profile_overhead: {p} not found: cmake --preset release && cmake --build --preset release; "
                     "cmake --preset trace && cmake --build --preset trace")
    if not shutil.which("heaptrack"):
        sys.exit("heap_profile_overhead: heaptrack is not installed (apt-get install heaptrack)")

    status = 0
    with tempfile.TemporaryDirectory(prefix="hakmem-heapbench-") as tmp:
        runner = Runner(args, tmp)
        for w in names:
            program = [str(REPO / "build/release/bench" / f"bench_{w}"), "--threads", str(args.threads), *WORKLOADS[w]]
            print(f"workload: {' '.join(program[0:1] + program[1:])}", flush=True)
            for v in VARIANTS:  # warm-up
                runner.run(v, program)
            times = {v: [] for v in VARIANTS}
            rss = {v: [] for v in VARIANTS}
            for r in range(args.runs):
                order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
                for v in order:
                    s, m = runner.run(v, program)
                    times[v].append(s)
                    rss[v].append(m)
            med = {v: statistics.median(times[v]) for v in VARIANTS}
            med_rss = {v: statistics.median(rss[v]) for v in VARIANTS}
            print(f"  {'variant':<10} {'median s':>9} {'ratio':>7} {'peak RSS MiB':>13} {'ratio':>7}")
            for v in VARIANTS:
                base = BASE.get(v, v)
                ratio, rratio = med[v] / med[base], med_rss[v] / med_rss[base]
                mark = ""
                if v == "recording":
                    mark = f"  target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'}"
                print(f"  {v:<10} {med[v]:9.3f} {ratio:7.3f} {med_rss[v] / 1024:13.1f} {rratio:7.3f}"
                      f"{'' if base == v else f'  (to {base})'}{mark}", flush=True)
            for name, (secs, rc, err) in runner.analysis_seconds().items():
                print(f"  analysis: {name:<18} {secs:7.2f} s" + (f" (status {rc}: {err})" if rc else ""))
                status |= rc != 0
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main())
