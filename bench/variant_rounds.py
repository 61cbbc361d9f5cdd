"""variant_rounds.py — what the preload overhead benchmarks share: their workloads, one timed run, the rotated rounds
and the table of medians and ratios (bench/heap_profile_overhead.py, bench/production_overhead.py)."""
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = "/usr/bin/python3"
HAKMEM_TRACE = REPO / "analysis" / "hakmem-trace"
BENCH_DIR = REPO / "build/release/bench"
# Larger than bench/run's: each run takes half a second (mixed) to a second (larson) here, so that the per-process
# costs a variant adds before the workload's clock starts are not what is compared, and a heap sampler meets a few
# thousand sample points.
WORKLOADS = {"mixed": ["--ops", "60000000"], "larson": ["--ops", "200000000"]}
MIN_RUNS = 3
# How long an interrupted command gets to end (hakmem-trace record destroys its session and stops its daemon).
STOP_TIMEOUT = 60


def field(out, key):
    for word in out.split():
        if word.startswith(key + "="):
            return word.split("=", 1)[1]
    return None


def add_arguments(ap):
    ap.add_argument("--runs", type=int, default=5, help=f"timed rounds, at least {MIN_RUNS} (default 5)")
    ap.add_argument("--workloads", default="mixed,larson", help="comma-separated, of: " + ", ".join(WORKLOADS))
    ap.add_argument("--threads", type=int, default=2)


def workload_names(ap, args):
    """The --workloads asked for; ap.error() on a bad --runs or --workloads."""
    if args.runs < MIN_RUNS:
        ap.error(f"--runs must be at least {MIN_RUNS}")
    names = [w for w in args.workloads.split(",") if w]
    if not names or any(w not in WORKLOADS for w in names):
        ap.error(f"--workloads: of {', '.join(WORKLOADS)}")
    return names


def program(name, threads):
    return [str(BENCH_DIR / f"bench_{name}"), "--threads", str(threads), *WORKLOADS[name]]


def require_built(who, paths, presets):
    """Exits with the cmake commands to run when a library or workload is missing."""
    for p in paths:
        if not Path(p).is_file():
            build = "; ".join(f"cmake --preset {preset} && cmake --build --preset {preset}" for preset in presets)
            sys.exit(f"{who}: {p} not found: {build}")


def end_on_signals():
    """SIGTERM and SIGHUP end the benchmark as Ctrl-C does (KeyboardInterrupt), so that its finally blocks run: the
    running command is ended and waited for, a daemon the benchmark started is stopped (Python's default for them
    exits at once). Only the first signal counts: later ones are ignored, so that a second Ctrl-C cannot cut that
    clean-up short (each step of it has a timeout)."""
    def handler(signum, frame):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's stays
            signal.signal(sig, handler)


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _end_group(proc):
    """Ends the command's process group as a Ctrl-C would, and waits until every process of it is gone
    (SIGKILL after STOP_TIMEOUT)."""
    if _group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    # GNU time exits once its child has; what its child started may still be ending (record's teardown).
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def timed_run(who, variant, argv, env, rss_file, malloc_from=None):
    """(the workload's own seconds=, peak RSS in KiB of the whole command); exits when the command fails, or when
    malloc_from is given and the workload's malloc came from another file (a preload that did not take only makes
    ld.so print a warning: the run would measure glibc). The workload's own time leaves out process start, a
    session's set-up and the trace's flush.

    The command runs in a process group of its own, so that an interruption reaches all of it (GNU time,
    hakmem-trace record and the workload: a signal to time alone would leave the others running on) and is
    waited for before the caller stops anything the command uses, such as a relay daemon."""
    proc = subprocess.Popen(["/usr/bin/time", "-o", str(rss_file), "-f", "%M", *argv], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate()
    except BaseException:
        _end_group(proc)
        raise
    seconds = field(out, "seconds")
    if proc.returncode != 0 or seconds is None:
        sys.exit(f"{who}: {variant} failed with status {proc.returncode}: {(out + err).strip()[-800:]}")
    came_from = field(out, "malloc_from")
    if malloc_from is not None and not (came_from or "").startswith(malloc_from):
        sys.exit(f"{who}: {variant}: malloc came from {came_from}, not {malloc_from}: the preload did not take")
    return float(seconds), int(Path(rss_file).read_text().split()[-1])


def median_rounds(variants, runs, run):
    """Medians ({variant: seconds}, {variant: KiB}) of run(variant) -> (seconds, KiB) over `runs` rounds, after one
    untimed warm-up of each. Each round runs every variant once, in an order rotated from round to round, so that
    the machine's drift spreads over all of them."""
    for v in variants:
        run(v)
    times = {v: [] for v in variants}
    rss = {v: [] for v in variants}
    for r in range(runs):
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:
            s, m = run(v)
            times[v].append(s)
            rss[v].append(m)
    return ({v: statistics.median(times[v]) for v in variants},
            {v: statistics.median(rss[v]) for v in variants})


def print_table(variants, med, med_rss, base_of, targets):
    """One line per variant: median seconds and peak RSS, each with its ratio to base_of's variant (itself when
    absent), and beside a variant of targets its time target and whether the ratio meets it."""
    print(f"  {'variant':<12} {'median s':>9} {'ratio':>7} {'peak RSS MiB':>13} {'ratio':>7}")
    for v in variants:
        base = base_of.get(v, v)
        ratio, rss_ratio = med[v] / med[base], med_rss[v] / med_rss[base]
        mark = ""
        if v in targets:
            mark = f"  target <= {targets[v]}: {'met' if ratio <= targets[v] else 'NOT met'}"
        print(f"  {v:<12} {med[v]:9.3f} {ratio:7.3f} {med_rss[v] / 1024:13.1f} {rss_ratio:7.3f}"
              f"{'' if base == v else f'  (to {base})'}{mark}", flush=True)
