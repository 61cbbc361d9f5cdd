#!/usr/bin/python3
"""test_parity.py — a program traced under a cap or fault injection behaves as it does untraced, and the trace holds
every NULL it got.

The tracer's own allocations (lttng-ust's constructors and threads, the probe while it emits, its teardown) come
from an arena of their own that the cap and fault injection never refuse (src/tracer.c). So for each setting below
trace_oom_workload (threads growing class-4 live sets until each was refused K times, every NULL logged with its
gettid()) runs once on the release library and once recorded with `hakmem-trace record` on the trace library:
  - one thread, HAKMEM_MAX_MEMORY = 8M, 12M, 16M, 24M, 32M, and HAKMEM_FAULT_SUPERSLAB / HAKMEM_FAULT_OS =
    prob:0.3:SEED for 20 seeds each: the same exit status, the same NULLs and the same number of blocks handed
    out (nothing is freed before the end, so that number is what the cap or the faults let the program have);
  - four threads (the seed's shape: a 4-thread class-4 OOM) under the same caps: the same exit status and NULLs;
    under the same fault specs only what the trace holds is checked: which thread meets which number of the fault
    sequence is the scheduler's, so untraced runs already differ among themselves (HAKMEM_FAULT_OS=prob:0.3:2:
    1 to 4 NULLs over six runs of the release library), and the traced run must end as the program ends (status
    0; 5 when a thread filled its live array before its refusals; 7 when pthread_create was refused), never in
    the tracer's abort.
In every recording the OOM events are the NULLs the program logged, thread by thread, none was lost, and each OOM
stands behind a complete decision path (refill entry ... refill exit with no slab; or, seq 0, the refusal of the
thread heap's own pages), which `hakmem-trace oom-paths --json` explains by what the setting refuses.

Usage: test_parity.py --lib LIBHAKMEM_TRACE --release-lib LIBHAKMEM --workload TRACE_OOM_WORKLOAD
"""
import collections
import json
import os
import subprocess
from pathlib import Path

import tracetest as tt
from hakmem import catalogue

REFUSALS = 3
CAPS = ["8M", "12M", "16M", "24M", "32M"]
SEEDS = range(1, 21)
TIMEOUT = 300


def settings():
    for cap in CAPS:
        yield 1, {"HAKMEM_MAX_MEMORY": cap}
    for var in ("HAKMEM_FAULT_SUPERSLAB", "HAKMEM_FAULT_OS"):
        for seed in SEEDS:
            yield 1, {var: f"prob:0.3:{seed}"}
    for cap in CAPS:
        yield 4, {"HAKMEM_MAX_MEMORY": cap}
    for var in ("HAKMEM_FAULT_SUPERSLAB", "HAKMEM_FAULT_OS"):
        for seed in SEEDS:
            yield 4, {var: f"prob:0.3:{seed}"}


def clean_env(extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_") or k.startswith("HAKMEM_TRACE")}
    env.update(extra)
    return env


def outcome(work, name):
    """(NULL log lines, blocks line) a run left in work/name.*"""
    nulls = [line.split() for line in (work / f"{name}.nulls").read_text().splitlines()]
    count = work / f"{name}.count"
    return nulls, count.read_text().strip() if count.exists() else None


CAUSE = {"HAKMEM_MAX_MEMORY": "cap_reached", "HAKMEM_FAULT_SUPERSLAB": "injected", "HAKMEM_FAULT_OS": "os_refused"}


def check_trace(trace, nulls, what, want_cause):
    t = tt.read_trace(trace)
    tt.check(t.discarded_events == 0 and t.discarded_packets == 0,
             f"{what}: {t.discarded_events} events / {t.discarded_packets} packets lost")
    ooms = t.named("hakmem:oom")
    tt.check(sorted(str(o["vtid"]) for o in ooms) == sorted(n[0] for n in nulls),
             f"{what}: OOM events on vtids {sorted(o['vtid'] for o in ooms)}, NULLs on {sorted(n[0] for n in nulls)}")
    by_refill = tt.refill_paths(t.events)
    for oom in ooms:
        path = by_refill[(oom["vpid"], oom["vtid"], oom["seq"])]
        names = [e["name"].split(":", 1)[1] for e in path]
        if oom["seq"] == 0:  # no refill ran: the thread heap's own pages were refused
            complete = names and names[-1] == "superslab_alloc_fail"
        else:
            complete = (names[:1] == ["refill_enter"] and "superslab_alloc_fail" in names
                        and path[-1]["name"] == "hakmem:refill_exit" and path[-1]["result"] == "null")
        tt.check(complete, f"{what}: the path of the OOM on vtid {oom['vtid']} (seq {oom['seq']}) is incomplete: {names}")
    # The analysis's own verdict: every OOM explained by what the setting refuses, none incomplete.
    out = subprocess.run([tt.PYTHON, str(tt.HAKMEM_TRACE), "oom-paths", "--json", str(trace)], capture_output=True,
                         text=True, timeout=TIMEOUT)
    tt.check(out.returncode == 0, f"{what}: oom-paths --json exited {out.returncode}: {out.stderr[-500:]}")
    causes = collections.Counter(o["cause"] for o in json.loads(out.stdout)["ooms"])
    tt.check(set(causes) <= {want_cause} and sum(causes.values()) == len(ooms),
             f"{what}: oom-paths gives causes {dict(causes)} for {len(ooms)} OOMs, want {want_cause} only")
    return len(ooms)


def main():
    args = tt.arguments(workload="trace_oom_workload", release_lib="the release libhakmem.so")
    release = Path(args.release_lib)
    tt.check(release.is_file(), f"no release library at {release}: build the release preset too (scripts/test does)")
    tt.check(set(catalogue.OOM_PATH) <= tt.compiled_events(), "this test needs every event of the OOM path compiled in")
    work = tt.workdir()
    runs = ooms_seen = 0
    for threads, extra in settings():
        what = f"{threads} thread(s), " + " ".join(f"{k}={v}" for k, v in extra.items())
        argv = lambda name: [args.workload, work / f"{name}.nulls", REFUSALS, threads, work / f"{name}.count"]
        env = clean_env(extra)
        plain = subprocess.run([str(a) for a in argv("plain")], env=dict(env, LD_PRELOAD=str(release)),
                               timeout=TIMEOUT)
        status, trace = tt.record(argv("traced"), lib=args.lib, env=env, output=work / f"trace-{runs}",
                                  timeout=TIMEOUT)
        nulls_plain, blocks_plain = outcome(work, "plain")
        nulls_traced, blocks_traced = outcome(work, "traced")
        if threads == 1 or "HAKMEM_MAX_MEMORY" in extra:
            tt.check(status == plain.returncode,
                     f"{what}: exit status {status} traced, {plain.returncode} on the release library")
            tt.check(len(nulls_traced) == len(nulls_plain),
                     f"{what}: {len(nulls_traced)} NULLs traced, {len(nulls_plain)} on the release library")
        else:
            tt.check(status in (0, 5, 7), f"{what}: the traced run ended with status {status}, not as the program ends")
        if threads == 1:
            tt.check(blocks_traced == blocks_plain,
                     f"{what}: {blocks_traced} traced, {blocks_plain} on the release library")
        ooms_seen += check_trace(trace, nulls_traced, what, CAUSE[next(iter(extra))])
        runs += 1
    tt.ok(f"{runs} settings: the same exit status and NULLs traced as untraced (and, with one thread, the same "
          f"blocks); {ooms_seen} OOMs recorded, each on the thread that got the NULL, behind a complete path")


if __name__ == "__main__":
    main()
