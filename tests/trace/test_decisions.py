#!/usr/bin/python3
"""test_decisions.py — the refill decisions around a refusal are in the trace, every allocation call's OOM is
named as that call, and the trace holds the refills HAKMEM_STATS counts.

trace_decisions_program (see its header) runs under HAKMEM_MAX_MEMORY=8M and HAKMEM_STATS=1, recorded with
`hakmem-trace record`. Checked:
- adoption: the main thread's first 128-byte refill adopts a slab of the exited thread — slab_adopt
  (before_claim, adopted, slab S) then refill_exit (adopted, slab S) in the same refill;
- reclaim-and-retry: a refill refused by the cap (superslab_alloc_fail, reason cap), then reclaim_retry
  (reclaimed_retry, bytes given back > 0, slabs stolen > 0), then a claim in the same refill — the idle thread's
  stranded slabs; and every OOM path of the program shows its reclaim_retry steps and the last adoption attempt
  in `oom-paths` (JSON and text);
- the calls: each refused call the program logs is an OOM of the main thread whose `call` (JSON) is that call
  with its arguments, in the program's order, and the text report prints "CALL returns NULL" (posix_memalign:
  "returns ENOMEM");
- numbers: the OOMs are numbered 1..N with none missing, N the program's count at exit (exit_totals);
- refills: per class, the trace's refill_enter events equal HAKMEM_STATS' refills column, and `summary` reports
  no refill missing.

Usage: test_decisions.py --lib LIBHAKMEM_TRACE --program TRACE_DECISIONS_PROGRAM
"""
import json
import os
import re
import subprocess

import tracetest as tt

TIMEOUT = 180



def refills(events):
    """(vtid, seq) -> the refill's events, in order."""
    by = {}
    for e in events:
        if e.get("seq") and e.get("class_idx") not in (None, tt.catalogue.LARGE_CLASS):
            by.setdefault((e["vtid"], e["seq"], e["class_idx"]), []).append(e)
    return by


def stats_refills(stderr):
    """HAKMEM_STATS' table: class -> refills (the program's line set; hakmem-trace's own are not preloaded)."""
    out = {}
    for m in re.finditer(r"^C(\d+)\s+\d+\s+(\d+)\s", stderr, re.M):
        out[int(m.group(1))] = int(m.group(2))
    return out


def main():
    args = tt.arguments(program="trace_decisions_program")
    work = tt.workdir()
    log, trace = work / "refused", work / "trace"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_") or k.startswith("HAKMEM_TRACE")}
    env.update(HAKMEM_MAX_MEMORY="8M", HAKMEM_STATS="1")
    argv = [tt.PYTHON, str(tt.HAKMEM_TRACE), "record", "--lib", tt.trace_library(args.lib), "-o", str(trace), "--",
            str(args.program), str(log)]
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    tt.check(run.returncode == 0, f"the recording exited with {run.returncode}: {run.stderr[-1500:]}")
    refused = log.read_text().splitlines()
    tt.check(len(refused) == 9, f"the program saw {len(refused)} of its 9 calls refused: {refused}")

    events = tt.read_events(trace)
    main_tid = next(e["vpid"] for e in events if e["name"] == "hakmem:oom")
    by = refills(e for e in events if e["vtid"] == main_tid)
    names = lambda r: [e["name"].split(":", 1)[1] for e in r]

    # Adoption: the exited thread's half-free slab.
    adopted = [r for r in by.values() if r[0]["name"] == "hakmem:refill_enter" and len(r) >= 3
               and r[1]["name"] == "hakmem:slab_adopt" and r[1]["outcome"] == "adopted"]
    tt.check(adopted, "no refill of the main thread adopted a slab (slab_adopt before_claim adopted)")
    r = adopted[0]
    adopted_slab = r[1]["slab"]
    tt.check(r[1]["stage"] == "before_claim" and names(r) == ["refill_enter", "slab_adopt", "refill_exit"]
             and r[2]["result"] == "adopted" and r[2]["slab"] == r[1]["slab"] != 0,
             f"the adopting refill reads {[(e['name'], e.get('outcome', e.get('result')), e.get('slab')) for e in r]}")

    # Reclaim-and-retry: the idle thread's stranded slabs come back and the retry claims.
    reclaimed = [r for r in by.values()
                 if any(e["name"] == "hakmem:reclaim_retry" and e["outcome"] == "reclaimed_retry"
                        and e["given_back"] > 0 and e["stolen_slabs"] > 0 for e in r)
                 and r[-1]["name"] == "hakmem:refill_exit" and r[-1]["result"] == "claimed"]
    tt.check(reclaimed, "no refill was refused, reclaimed memory (bytes given back, slabs stolen) and then claimed")
    r = reclaimed[0]
    i = next(n for n, e in enumerate(r) if e["name"] == "hakmem:reclaim_retry")
    tt.check(r[i - 1]["name"] == "hakmem:superslab_alloc_fail" and r[i - 1]["reason"] == "cap"
             and r[i + 1]["name"] == "hakmem:bitmap_check" and r[i + 1]["outcome"] == "claimed"
             and r[i]["attempt"] == 1,
             f"the reclaiming refill reads {names(r)}")
    stolen_kib = r[i]["given_back"] >> 10

    # The OOM paths show the steps, and each call is named as the program made it.
    report = json.loads(tt.cli("oom-paths", "--json", str(trace)))
    ooms = [o for o in report["ooms"] if o["vtid"] == main_tid]
    for o in ooms:
        steps = [s["event"] for s in o["path"]]
        tt.check("reclaim_retry" in steps and steps[-1] == "oom",
                 f"OOM {o['index']} ({o['call']}): its path {steps} shows no reclaim-and-retry")
        if o["class"] != tt.catalogue.LARGE_CLASS:
            tt.check(steps[-3:-1] == ["slab_adopt", "refill_exit"]
                     and o["path"][-3]["fields"]["stage"] == "after_refusal",
                     f"OOM {o['index']}: its path {steps} does not end with the last adoption attempt")
    calls = [o["call"] for o in ooms if not o["call"].startswith("malloc(") or o["call"] == "malloc(20000)"]
    tt.check(calls == refused, f"the report names the refused calls {calls}; the program made {refused}")
    text = tt.cli("oom-paths", str(trace))
    for c in refused:
        said = f"{c} returns ENOMEM" if c.startswith("posix_memalign") else f"{c} returns NULL"
        tt.check(said in text, f"the text report does not print '{said}'")

    # Numbers and exit totals; the refills HAKMEM_STATS counts.
    summary = json.loads(tt.cli("summary", "--json", str(trace)))
    procs = [p for p in summary["processes"] if p["vpid"] == main_tid]
    tt.check(len(procs) == 1, f"summary lists the program's process {len(procs)} times")
    p = procs[0]
    tt.check(p["exit_totals"] and p["exit_totals_complete"] and p["ooms_numbered"] == len(ooms)
             == p["ooms_in_trace"] and not p["ooms_not_in_trace"],
             f"OOM numbers: {p}, with {len(ooms)} OOMs in the trace")
    counted = stats_refills(run.stderr)
    traced = {int(c): v["refills"] for c, v in summary["classes"].items()
              if int(c) != tt.catalogue.LARGE_CLASS and v["refills"]}
    tt.check(counted and counted == traced, f"HAKMEM_STATS counts refills {counted}, the trace holds {traced}")
    tt.check(not p["refills_not_in_trace"], f"summary reports refills missing: {p['refills_not_in_trace']}")
    tt.ok(f"adopted slab {adopted_slab:#x}; a reclaim gave back {stolen_kib} KiB; {len(refused)} calls named; "
          f"{len(ooms)} OOMs numbered; refills per class as counted: {sum(counted.values())}")


if __name__ == "__main__":
    main()
