#!/usr/bin/python3
"""test_cap.py — every OOM that HAKMEM_MAX_MEMORY causes is one OOM of cause `cap_reached`, behind the refusal it ends.

Records trace_oom_workload (4 threads grow class-4 live sets; each stops after its K-th NULL and logs every NULL
with its gettid()) under HAKMEM_MAX_MEMORY=16M, with HAKMEM_TINY_MID_REFILL_SIMPLE 0 and 1. `hakmem-trace
oom-paths --json` must give exactly one OOM per NULL in the log, on the same vtids, each of cause `cap_reached`;
where the refill events are compiled in, each superslab_alloc_fail of a path says reason cap (errno 12) and ends
either a failed chunk_expand (a new chunk's header refused: 8 KiB) or a bitmap_check the cap refused (a free
slab's pages: 64 KiB, 56 KiB for slab 0) — the cap counts committed memory —, and the path's last decision is
refill_exit null. Nothing may be lost, and the text report and summary must agree (analysistest.check_refused_ooms).

usage: test_cap.py --lib libhakmem-trace.so --workload trace_oom_workload
"""
import analysistest as at

tt = at.tt
CAP = "16M"     # the tracer's own allocations are not charged to it (src/tracer.c)
# What each refused decision asked the cap for (where the refill events say which decision it was).
REFUSED_BYTES = {"chunk_expand:failed": {8192}, "bitmap_check:cap_refused": {65536, 65536 - 8192}, None: {8192, 65536,
                                                                                                        65536 - 8192}}


def run(args, simple, compiled):
    report, nulls = at.check_refused_ooms(args, simple, compiled, "cap_reached", "cap", HAKMEM_MAX_MEMORY=CAP)
    n = len(nulls)
    full = set(tt.catalogue.OOM_PATH) <= compiled
    for o in report["ooms"]:
        sizes = [s["fields"]["bytes"] for s in o["path"] if s["event"] == "superslab_alloc_fail"]
        decisions = at.refused_decisions(o, "cap") if full else [None] * len(sizes)
        tt.check(all(b in REFUSED_BYTES[d] for b, d in zip(sizes, decisions)),
                 f"OOM {o['index']}: the cap refused {sizes} bytes ending {decisions}")
    c4 = report["summary"]["classes"][str(at.WORKLOAD_CLASS)]
    tt.check(c4["ooms"] == n and c4["failures"].get("cap", 0) >= n,
             f"class {at.WORKLOAD_CLASS} in the summary: {c4['ooms']} OOMs, failures {c4['failures']}")
    tt.ok(f"mid-simple {simple}: {n} OOMs, each cap_reached behind the refusal it ends, on the thread of its NULL")


if __name__ == "__main__":
    at.each_mid_simple("test_cap", run)
