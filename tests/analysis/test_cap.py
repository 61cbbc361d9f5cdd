#!/usr/bin/python3
"""test_cap.py — every OOM that HAKMEM_MAX_MEMORY causes is one OOM of cause `cap_reached`, behind a failed expansion.

Records trace_oom_workload (4 threads grow class-4 live sets; each stops after its K-th NULL and logs every NULL
with its gettid()) under HAKMEM_MAX_MEMORY=48M, with HAKMEM_TINY_MID_REFILL_SIMPLE 0 and 1. `hakmem-trace
oom-paths --json` must give exactly one OOM per NULL in the log, on the same vtids, each of cause `cap_reached`;
where the refill events are compiled in, each path holds a chunk_expand with outcome failed immediately followed
by superslab_alloc_fail with reason cap (errno 12, 2 MiB), and its last decision is refill_exit null. Nothing may
be lost, and the text report and summary must agree.

usage: test_cap.py --lib libhakmem-trace.so --workload trace_oom_workload
"""
import collections

import analysistest as at

tt = at.tt
CAP = "48M"     # room for lttng-ust's own allocations in the traced process (24M starves it)
CLASS, BLOCK = 4, 128
CHUNK = 2 * 1024 * 1024


def run(args, simple, compiled):
    trace, nulls = at.record_workload(args, HAKMEM_MAX_MEMORY=CAP, HAKMEM_TINY_MID_REFILL_SIMPLE=simple)
    n = len(nulls)

    report = at.oom_json(trace)
    ooms = report["ooms"]
    tt.check(report["lost_events"]["discarded_events"] == 0, f"events were lost: {report['lost_events']}")
    tt.check(len(ooms) == n and report["summary"]["ooms_total"] == n, f"{len(ooms)} OOM paths, want {n}")
    bad = [(o["index"], o["vtid"], o["cause"], o["cause_detail"]) for o in ooms if o["cause"] != "cap_reached"]
    tt.check(not bad, f"OOMs whose cause is not cap_reached: {bad}")
    got = collections.Counter(o["vtid"] for o in ooms)
    want = collections.Counter(tid for tid, _, _ in nulls)
    tt.check(got == want, f"OOMs per vtid {dict(got)}, NULLs per tid in the log {dict(want)}")
    full = {"refill_enter", "bitmap_check", "chunk_expand", "refill_exit"} <= compiled
    for o in ooms:
        i = o["index"]
        tt.check(o["class"] == CLASS and o["size"] == BLOCK, f"OOM {i}: class {o['class']} size {o['size']}")
        fails = [s["fields"] for s in o["path"] if s["event"] == "superslab_alloc_fail"]
        tt.check(fails, f"OOM {i}: no superslab_alloc_fail in its path {at.steps(o)}")
        for f in fails:
            tt.check(f["reason"] == "cap" and f["err"] == 12 and f["bytes"] == CHUNK,
                     f"OOM {i}: superslab_alloc_fail {f}, want reason cap, errno 12, {CHUNK} bytes")
        if not full:
            continue
        names = at.steps(o)
        tt.check(names[0] == "refill_enter" and names[-1] == "oom" and not o["begins_midway"],
                 f"OOM {i}: the path is not refill_enter ... oom: {names}")
        tt.check(at.follows(o, lambda a: a["event"] == "chunk_expand" and a["fields"]["outcome"] == "failed",
                            lambda b: b["event"] == "superslab_alloc_fail" and b["fields"]["reason"] == "cap"),
                 f"OOM {i}: no chunk_expand failed immediately followed by superslab_alloc_fail cap: {names}")
        tt.check(names.index("chunk_expand") > names.index("bitmap_check"),
                 f"OOM {i}: chunk_expand before any bitmap_check: {names}")
        tt.check(any(s["event"] == "bitmap_check" and s["fields"]["outcome"] == "full" for s in o["path"]),
                 f"OOM {i}: no bitmap_check found the chunk full: {names}")
        decisions = [s for s in o["path"] if s["event"] != "oom"]
        tt.check(decisions[-1]["event"] == "refill_exit" and decisions[-1]["fields"]["result"] == "null",
                 f"OOM {i}: the last decision is {decisions[-1]}, want refill_exit null")
        tt.check(all(s["fields"].get("seq", o["seq"]) == o["seq"] for s in o["path"]),
                 f"OOM {i}: the path mixes refills: seqs {[s['fields'].get('seq') for s in o['path']]}")
    tt.check(report["summary"]["causes"] == {"cap_reached": n}, f"summary causes {report['summary']['causes']}")
    c4 = report["summary"]["classes"][str(CLASS)]
    tt.check(c4["ooms"] == n and c4["failures"].get("cap", 0) >= n,
             f"class {CLASS} in the summary: {c4['ooms']} OOMs, failures {c4['failures']}")

    text = at.text_report(trace)
    tt.check(text.count("  cause: cap_reached") == n, f"the text report does not give cap_reached {n} times")
    tt.check(text.splitlines()[0].startswith(f"{n} OOM(s); events lost: 0 discarded events"),
             f"the text report begins {text.splitlines()[0]!r}")
    tt.ok(f"mid-simple {simple}: {n} OOMs, each cap_reached behind a failed expansion, on the thread of its NULL")


def main():
    args = tt.arguments(workload="trace_oom_workload")
    compiled = tt.compiled_events()
    tt.check({"oom", "superslab_alloc_fail"} <= compiled, f"this build compiles in only {sorted(compiled)}")
    for simple in ("0", "1"):
        run(args, simple, compiled)
    if not {"refill_enter", "chunk_expand"} <= compiled:
        print(f"(the paths' decisions are not checked: this build compiles in {sorted(compiled)} only)")
    print("test_cap: passed")


if __name__ == "__main__":
    main()
