#!/usr/bin/python3
"""test_injected.py — every injected superslab failure is one OOM of cause `injected`, on the thread that got NULL.

Records trace_oom_workload (4 threads grow class-4 live sets, each stops after its K-th NULL and logs every NULL
with its gettid()) with HAKMEM_FAULT_SUPERSLAB=every:2/4 and no cap, once with HAKMEM_TINY_MID_REFILL_SIMPLE=0
and once with 1. Only class 4 fails, so the tracer's own allocations keep working. `hakmem-trace oom-paths --json`
must give exactly as many OOMs as the log has NULLs, each of cause `injected`, their vtids the same multiset as
the log's tids; where the refill events are compiled in, each path must run from refill_enter to the oom with a
failed chunk_expand right before a superslab_alloc_fail of reason injected. The text report and the summary
must say the same (analysistest.check_refused_ooms).

usage: test_injected.py --lib libhakmem-trace.so --workload trace_oom_workload
"""
import analysistest as at

tt = at.tt
FAULT = "every:2/4"


def run(args, simple, compiled):
    report, nulls = at.check_refused_ooms(args, simple, compiled, "injected", "injected",
                                          HAKMEM_FAULT_SUPERSLAB=FAULT)
    classes = {c for c, v in report["summary"]["classes"].items() if v["ooms"]}
    tt.check(classes == {str(at.WORKLOAD_CLASS)}, f"OOMs in classes {sorted(classes)}: only class 4 is made to fail")
    tt.ok(f"mid-simple {simple}: {len(nulls)} injected OOMs, each on the thread that got the NULL")


if __name__ == "__main__":
    at.each_mid_simple("test_injected", run)
