"""variant_rounds.py — what the preload overhead benchmarks share: their workloads, one timed run, the rotated rounds
and the table of medians and ratios (bench/heap_profile_overhead.py, bench/production_overhead.py)."""
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = "/usr/bin/python3"
HAKMEM_TRACE = REPO / "analysis" / "hakmem-trace"
BENCH_DIR = REPO / "build/release/bench"
# Larger than bench/run's: each run takes about a second here, so that the per-process costs a variant adds before
# the workload's clock starts are not what is compared, and a heap sampler meets a few thousand sample points.
WORKLOADS = {"mixed": ["--ops", "60000000"], "larson": ["--ops", "200000000"]}
MIN_RUNS = 3


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


def timed_run(who, variant, argv, env, rss_file, pass_fds=()):
    """(the workload's own seconds=, peak RSS in KiB of the whole command); exits when the command fails.
    The workload's own time leaves out process start, a session's set-up and the trace's flush."""
    proc = subprocess.run(["/usr/bin/time", "-o", str(rss_file), "-f", "%M", *argv], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, pass_fds=pass_fds)
    seconds = field(proc.stdout, "seconds")
    if proc.returncode != 0 or seconds is None:
        sys.exit(f"{who}: {variant} failed with status {proc.returncode}: "
                 f"{(proc.stdout + proc.stderr).strip()[-800:]}")
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
