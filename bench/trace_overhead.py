#!/usr/bin/python3
"""trace_overhead.py — what tracing costs the seed workload: release vs trace library vs a recording session.

Variants, each the same program (stress_seed_libc normal, plain malloc) with a preloaded allocator:
  (a) LD_PRELOAD=build/release/libhakmem.so
  (b) LD_PRELOAD=build/trace/libhakmem-trace.so, no lttng-sessiond running (tracepoints compiled in, disabled)
  (c) libhakmem-trace.so under `analysis/hakmem-trace record` (a session recording every hakmem event)

The time measured is the workload's own wall time: a small timer wraps the program in every variant, so (c)
excludes starting the session daemon and flushing the trace (its whole-command time is reported separately).
One untimed warm-up run of each variant, then --runs rounds; each round runs every variant once, in an order
rotated from round to round so that machine drift spreads over all of them. Reports medians, ratios b/a (target
<= 1.03) and c/a (target <= 1.25) and writes the raw runs and the summary as CSV under bench/results/.

(b) needs no session daemon at all: if an lttng-sessiond this script did not start is running, (b) is skipped
(and said so), since lttng-ust would register with it. (c) uses such a daemon if present, else hakmem-trace
starts a private one per run and stops it.

usage: bench/trace_overhead.py [--runs N] [--ops N] [--check]   (see --help)
"""
import argparse
import csv
import fcntl
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
sys.path.insert(0, str(REPO / "analysis"))
from hakmem.record import RecordError, lock_path, lttng_daemons, open_lock_file  # noqa: E402
TARGET_B, TARGET_C = 1.03, 1.25
LOCK = lock_path()

# Runs the command, writes "<seconds> <status>" to argv[1], exits with the command's status.
TIMER = ("import subprocess, sys, time\n"
         "t = time.perf_counter()\n"
         "rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL).returncode\n"
         "dt = time.perf_counter() - t\n"
         "open(sys.argv[1], 'w').write(f'{dt:.6f} {rc}\\n')\n"
         "sys.exit(rc)\n")

VARIANTS = {
    "a": "(a) libhakmem.so (release)",
    "b": "(b) libhakmem-trace.so, no sessiond",
    "c": "(c) libhakmem-trace.so, hakmem-trace record",
}


def live_sessionds():
    """pids of live (not zombie) lttng-sessiond processes."""
    return [pid for pid, comm in lttng_daemons() if comm == "lttng-sessiond"]


class Bench:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, Path(tmp)
        self.workload = [str(args.program), "normal", "--ops", str(args.ops), *args.extra]
        self.last_trace = None

    def _timed(self, argv, env, tag):
        out = self.tmp / f"{tag}.time"
        out.unlink(missing_ok=True)
        t = time.perf_counter()
        proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              pass_fds=self.pass_fds)
        total = time.perf_counter() - t
        if proc.returncode != 0 or not out.exists():
            sys.exit(f"trace_overhead: {tag} failed with status {proc.returncode}: {proc.stderr.strip()[-800:]}")
        seconds, status = out.read_text().split()
        if int(status) != 0:
            sys.exit(f"trace_overhead: the workload failed in {tag} with status {status}")
        return float(seconds), total

    def run(self, variant):
        timer = [PYTHON, "-c", TIMER, str(self.tmp / f"{variant}.time"), *self.workload]
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        if variant == "a":
            env["LD_PRELOAD"] = str(self.args.release_lib)
            return self._timed(timer, env, variant)
        if variant == "b":
            running = live_sessionds()
            if running:
                sys.exit(f"trace_overhead: lttng-sessiond {running} appeared during the benchmark: (b) is invalid")
            env["LD_PRELOAD"] = str(self.args.trace_lib)
            return self._timed(timer, env, variant)
        trace = self.tmp / "trace"
        if trace.exists():
            shutil.rmtree(trace)
        argv = [PYTHON, str(HAKMEM_TRACE), "record", "--lib", str(self.args.trace_lib), "-o", str(trace), "--",
                *timer]
        self.last_trace = trace
        return self._timed(argv, env, variant)


def trace_summary(trace):
    """(events, discarded) of the last (c) trace, if bt2 imports; else None."""
    try:
        import bt2
    except ImportError:
        return None
    events = discarded = 0
    for msg in bt2.TraceCollectionMessageIterator(str(trace)):
        if isinstance(msg, bt2._EventMessageConst):
            events += 1
        elif isinstance(msg, bt2._DiscardedEventsMessageConst):
            discarded += msg.count or 1
    return events, discarded


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed rounds, at least 5 (default 5)")
    ap.add_argument("--ops", type=int, default=600000,
                    help="operations per thread and phase of stress_seed_libc (default 600000: about 2 s here)")
    ap.add_argument("--program", type=Path, default=REPO / "build/release/tests/stress/stress_seed_libc")
    ap.add_argument("--release-lib", type=Path, default=REPO / "build/release/libhakmem.so")
    ap.add_argument("--trace-lib", type=Path, default=REPO / "build/trace/libhakmem-trace.so")
    ap.add_argument("--results", type=Path, default=REPO / "bench/results", help="CSV folder (default bench/results)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a ratio misses its target")
    ap.add_argument("extra", nargs="*", help="more stress_seed_libc arguments, after --")
    args = ap.parse_args()
    if args.runs < 5:
        ap.error("--runs must be at least 5")
    for p in (args.program, args.release_lib, args.trace_lib):
        if not p.is_file():
            sys.exit(f"trace_overhead: {p} not found: cmake --preset release && cmake --build --preset release; "
                     "cmake --preset trace && cmake --build --preset trace")

    # The lock `hakmem-trace record` takes around each recording (analysis/hakmem/record.py), held for the
    # whole benchmark so that no recording starts a session daemon during (b); our own (c) recordings get the
    # descriptor (HAKMEM_TRACE_LOCK_FD) and so do not wait for us.
    try:
        lock = open_lock_file()  # as hakmem-trace opens it: never through a symbolic link
    except RecordError as e:
        sys.exit(f"trace_overhead: {e}")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"trace_overhead: waiting for a trace test to finish (lock {LOCK})", file=sys.stderr)
        fcntl.flock(lock, fcntl.LOCK_EX)

    variants = ["a", "b", "c"]
    foreign = live_sessionds()
    note = ""
    if foreign:
        variants.remove("b")
        note = (f"(b) skipped: lttng-sessiond {foreign} is running and was not started by this script; "
                "(c) records through it")
        print(f"trace_overhead: {note}", file=sys.stderr)

    times = {v: [] for v in variants}
    totals = []
    raw = []
    with tempfile.TemporaryDirectory(prefix="hakmem-bench-") as tmp:
        bench = Bench(args, tmp)
        bench.pass_fds = (lock,)
        os.environ["HAKMEM_TRACE_LOCK_FD"] = str(lock)
        print(f"workload: {' '.join(bench.workload)}", flush=True)
        for v in variants:  # warm-up, untimed
            bench.run(v)
        for r in range(args.runs):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for v in order:
                seconds, total = bench.run(v)
                times[v].append(seconds)
                if v == "c":
                    totals.append(total)
                raw.append({"round": r + 1, "variant": v, "workload_s": f"{seconds:.6f}", "command_s": f"{total:.6f}"})
                print(f"  round {r + 1} {VARIANTS[v]:<45} {seconds:7.3f} s", flush=True)
        recorded = trace_summary(bench.last_trace) if bench.last_trace else None

    med = {v: statistics.median(ts) for v, ts in times.items()}
    rows = []
    for v in variants:
        ratio = med[v] / med["a"]
        target = {"a": None, "b": TARGET_B, "c": TARGET_C}[v]
        rows.append({"variant": VARIANTS[v], "runs": len(times[v]), "median_s": f"{med[v]:.4f}",
                     "min_s": f"{min(times[v]):.4f}", "max_s": f"{max(times[v]):.4f}", "ratio_to_a": f"{ratio:.4f}",
                     "target": f"<= {target}" if target else "", "met": "" if not target else
                     ("yes" if ratio <= target else "NO")})

    print()
    print(f"{'variant':<45} {'median s':>9} {'min s':>8} {'max s':>8} {'ratio':>7}  target")
    for row in rows:
        print(f"{row['variant']:<45} {row['median_s']:>9} {row['min_s']:>8} {row['max_s']:>8} "
              f"{row['ratio_to_a']:>7}  {row['target']} {row['met']}")
    if totals:
        print(f"(c) whole `hakmem-trace record` command (daemon start, session, flush, stop): median "
              f"{statistics.median(totals):.3f} s")
    if recorded:
        print(f"(c) last trace: {recorded[0]} events, {recorded[1]} discarded")
    if note:
        print(note)

    args.results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw_path = args.results / f"trace_overhead-{stamp}-runs.csv"
    sum_path = args.results / f"trace_overhead-{stamp}.csv"
    with open(raw_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["round", "variant", "workload_s", "command_s"])
        w.writeheader()
        w.writerows(raw)
    with open(sum_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"CSV: {sum_path.relative_to(REPO) if sum_path.is_relative_to(REPO) else sum_path} (summary), "
          f"{raw_path.name} (runs)")
    if args.check and any(row["met"] == "NO" for row in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
