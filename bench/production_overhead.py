#!/usr/bin/python3
"""production_overhead.py — what production mode costs: the trace-failures library, recorded by a live session
streaming to a relay daemon, with no OOM, against the release library.

Variants, each the same workload (bench_mixed and bench_larson of bench/run, built by the release preset):
  release       LD_PRELOAD=build/release/libhakmem.so
  failures-lib  LD_PRELOAD=build/trace-failures/libhakmem-trace.so (tracepoints compiled only for the failure
                events: superslab_alloc_fail, reclaim_retry, oom, call_stack, exit_totals, exit_class_totals), no
                session recording it
  production    the same library under `hakmem-trace record --live --set-url net://127.0.0.1:C:D --discard`: a
                live session (flushed every 200 ms) streaming to an lttng-relayd on 127.0.0.1 that this script
                starts, as a collector would run it; never blocking the program (--discard)
Time is the workload's own (the `seconds=` it prints: no process start, session set-up or trace flush); peak RSS
is GNU time's %M of the whole command (its largest process). One untimed warm-up of each variant, then --runs
rounds, each running every variant once in an order rotated from round to round; medians and ratios to release
are printed. The relay daemon is ours (a foreground child, ports chosen free, output in a temporary folder),
stopped by its pid whatever happens; after it stops, the traces it received are read: one per production run is
expected, and an oom in them makes the exit status 1 (production mode's cost is measured without OOMs). A
reachable lttng-sessiond is used by record; with none, record starts a private one for each recording and stops
it. Target (issue: production mode): production / release <= 1.02.

usage: bench/production_overhead.py [--runs N] [--workloads mixed,larson] [--threads N]
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import variant_rounds as vr
from variant_rounds import HAKMEM_TRACE, PYTHON, REPO

sys.path.insert(0, str(REPO / "analysis"))
sys.path.insert(0, str(REPO / "tests" / "trace"))
import tracetest as tt  # noqa: E402  (reads the relay's traces)
from test_relayd import HOST, Relayd  # noqa: E402  (the relay daemon the tests start: ports free, stop by pid)

WHO = "production_overhead"
TARGET = 1.02
VARIANTS = ["release", "failures-lib", "production"]
BASE = {"failures-lib": "release", "production": "release"}
# Events that would mean the workload met a failure, so that the run measured more than production's steady state.
FAILURE_EVENTS = ("hakmem:oom", "hakmem:superslab_alloc_fail", "hakmem:reclaim_retry")


class Runner:
    def __init__(self, args, tmp, relay_ports):
        self.args, self.tmp = args, Path(tmp)
        control, data, _live = relay_ports
        self.url = f"net://{HOST}:{control}:{data}"
        self.recordings = 0

    def command(self, variant, program):
        """(argv, environment, the file the workload's malloc must come from)."""
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env.pop("HAKMEM_TRACE_SAMPLE", None)
        if variant == "release":
            env["LD_PRELOAD"] = str(self.args.release_lib)
            return program, env, self.args.release_lib.name
        if variant == "failures-lib":
            env["LD_PRELOAD"] = str(self.args.failures_lib)
            return program, env, self.args.failures_lib.name
        self.recordings += 1
        # No -o: a streamed session's trace is the relay's, record makes no local folder for it.
        return [PYTHON, str(HAKMEM_TRACE), "record", "--live", "--set-url", self.url, "--lib",
                str(self.args.failures_lib), "--discard", "--", *program], env, self.args.failures_lib.name

    def run(self, variant, program):
        argv, env, malloc_from = self.command(variant, program)
        return vr.timed_run(WHO, variant, argv, env, self.tmp / "rss", malloc_from)


def sessiond_reachable():
    """Whether `lttng list` reaches a session daemon, as record asks before starting a private one. (A daemon of
    another user, or of another LTTNG_HOME, may run and still not be reachable: listing processes would not tell.)"""
    return subprocess.run(["lttng", "list"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True).returncode == 0


def report_streamed(relay_out, recordings):
    """Prints what the relay received; returns 1 when a recording is missing or a failure event was recorded."""
    traces = tt.find_traces(relay_out)
    if not traces:
        print(f"{WHO}: the relay received no trace from {recordings} production runs", file=sys.stderr)
        return 1
    trace = tt.read_trace(relay_out)
    counts = collections.Counter(e["name"] for e in trace.events if e["name"].startswith("hakmem:"))
    listed = ", ".join(f"{name.split(':', 1)[1]} {n}" for name, n in sorted(counts.items())) or "none"
    print(f"relay received {len(traces)} traces from {recordings} production runs; hakmem events: {listed}; "
          f"{trace.discarded_events} discarded")
    status = 0
    # Per-user buffers: one trace per session (each recording is a session), more if a run had 32- and 64-bit ones.
    if len(traces) < recordings:
        print(f"{WHO}: fewer traces than recordings: some production runs streamed nothing", file=sys.stderr)
        status = 1
    failed = {name: counts[name] for name in FAILURE_EVENTS if counts[name]}
    if failed:
        print(f"{WHO}: the production runs met failures {failed}: not production mode without OOM", file=sys.stderr)
        status = 1
    return status


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    vr.add_arguments(ap)
    ap.add_argument("--release-lib", type=Path, default=REPO / "build/release/libhakmem.so")
    ap.add_argument("--failures-lib", type=Path, default=REPO / "build/trace-failures/libhakmem-trace.so")
    args = ap.parse_args()
    names = vr.workload_names(ap, args)
    vr.require_built(WHO, [args.release_lib, args.failures_lib, *(vr.program(w, args.threads)[0] for w in names)],
                     ["release", "trace-failures"])
    for tool in ("lttng", "lttng-sessiond", "lttng-relayd"):
        if not shutil.which(tool):
            sys.exit(f"{WHO}: {tool} not found (apt-get install lttng-tools)")
    # Record decides again for each recording; this says what the first ones will meet.
    print("lttng-sessiond: one is reachable, record uses it" if sessiond_reachable() else
          "lttng-sessiond: none reachable, each recording starts a private one and stops it", flush=True)
    vr.end_on_signals()

    with tempfile.TemporaryDirectory(prefix="hakmem-prodbench-") as tmp:
        relay_out = Path(tmp) / "relayd-output"
        relay_out.mkdir()
        relayd = Relayd(relay_out, Path(tmp))
        try:
            runner = Runner(args, tmp, relayd.start())
            for w in names:
                program = vr.program(w, args.threads)
                print(f"workload: {' '.join(program)}", flush=True)
                med, med_rss = vr.median_rounds(VARIANTS, args.runs, lambda v: runner.run(v, program))
                vr.print_table(VARIANTS, med, med_rss, BASE, {"failures-lib": TARGET, "production": TARGET})
            if relayd.proc.poll() is not None:
                sys.exit(f"{WHO}: lttng-relayd exited during the runs with status {relayd.proc.returncode}")
        finally:
            relayd.stop()  # also closes every trace file it wrote
        return report_streamed(relay_out, runner.recordings)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the running command was ended and the relay stopped on the way out
        sys.exit(f"{WHO}: interrupted")
