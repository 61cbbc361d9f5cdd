#!/usr/bin/python3
"""test_flight_spread.py — a flight recorder over OOMs spread across 20 s: every OOM is in a snapshot, or the report
names exactly the ones that are not.

trace_spread_program spends the cap on 128-byte blocks, then makes 20 bursts of refused mallocs 1.1 s apart (each
burst's first OOM cues a snapshot: the first OOM, then the first after a quiet second). Recorded with
`hakmem-trace record --flight-recorder` on small buffers (4 KiB sub-buffers, 4 per CPU), so that a snapshot
cannot hold a whole burst. Asserted: the program's exit status comes through; the re-armed trigger wrote more
than one snapshot; `oom-paths --json` over the folder lists each OOM once (the snapshots overlap and are read
together); the process's numbers add up: the OOMs listed and the ranges named as missing are disjoint and make
exactly 1..N, N the number of NULLs the program counted, known from its exit totals (in the snapshot taken
after it exited); and the text report prints each missing range.

Usage: test_flight_spread.py --lib LIBHAKMEM_TRACE --program TRACE_SPREAD_PROGRAM
"""
import json
import os

import tracetest as tt

ROUNDS, BURST = 20, 50
TIMEOUT = 240



def main():
    args = tt.arguments(program="trace_spread_program")
    work = tt.workdir()
    log = work / "nulls"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_") or k.startswith("HAKMEM_TRACE")}
    env["HAKMEM_MAX_MEMORY"] = "8M"
    status, out = tt.record([args.program, ROUNDS, BURST, log], lib=args.lib, output=work / "fr", env=env,
                            options=["--flight-recorder", "--subbuf-size=4096", "--num-subbuf=4"], timeout=TIMEOUT)
    tt.check(status == 0, f"the program exited with status {status}")
    nulls = int(log.read_text())
    tt.check(nulls == 1 + ROUNDS * BURST, f"the program counted {nulls} NULLs, not 1 + {ROUNDS} x {BURST}")
    snaps = sorted(p for p in out.glob("snapshot-*") if p.is_dir())
    tt.check(len(snaps) >= 2, f"{len(snaps)} snapshot(s) for OOMs over {ROUNDS} s: the trigger did not re-arm")

    report = json.loads(tt.cli("oom-paths", "--json", str(out)))
    procs = [p for p in report["summary"]["processes"] if p["procname"] and p["procname"].startswith("trace_spread")]
    tt.check(len(procs) == 1, f"the report lists {len(procs)} processes of the program: {report['summary']['processes']}")
    p = procs[0]
    listed = [o["oom_no"] for o in report["ooms"] if o["vpid"] == p["vpid"]]
    tt.check(len(listed) == len(set(listed)), f"an OOM is listed twice: {sorted(listed)}")
    missing = set()
    for a, b in p["ooms_not_in_trace"]:
        missing |= set(range(a, b + 1))
    tt.check(p["exit_totals"] and p["ooms_numbered"] == nulls,
             f"the report knows of {p['ooms_numbered']} OOMs (exit totals: {p['exit_totals']}); the program had {nulls}")
    tt.check(not (missing & set(listed)) and missing | set(listed) == set(range(1, nulls + 1)),
             f"listed {len(listed)} and named missing {len(missing)} do not make 1..{nulls} exactly")
    tt.check(p["ooms_in_trace"] == len(listed), f"{p['ooms_in_trace']} OOMs counted in the trace, {len(listed)} listed")
    text = tt.cli("oom-paths", str(out))
    for a, b in p["ooms_not_in_trace"]:
        said = (f"OOM {a} is" if a == b else f"OOMs {a}–{b} are") + f" of pid {p['vpid']}"
        tt.check(said in text, f"the text report does not say '{said} ... not in this trace'")
    tt.ok(f"{len(snaps)} snapshots; {len(listed)} of {nulls} OOMs in them, the other {len(missing)} named in "
          f"{len(p['ooms_not_in_trace'])} range(s)")


if __name__ == "__main__":
    main()
