#!/usr/bin/python3
"""test_injected.py — every injected superslab failure is one OOM of cause `injected`, on the thread that got NULL.

Records trace_oom_workload (4 threads grow class-4 live sets, each stops after its K-th NULL and logs every NULL
with its gettid()) with HAKMEM_FAULT_SUPERSLAB=every:2/4 and no cap, once with HAKMEM_TINY_MID_REFILL_SIMPLE=0
and once with 1. Only class 4 fails, so the tracer's own allocations keep working. `hakmem-trace oom-paths --json`
must give exactly as many OOMs as the log has NULLs, each of cause `injected`, their vtids the same multiset as
the log's tids; where the refill events are compiled in, each path must run from refill_enter to the oom with a
failed chunk_expand right before a superslab_alloc_fail of reason injected. The text report and the summary
must say the same.

usage: test_injected.py --lib libhakmem-trace.so --workload trace_oom_workload
"""
import collections

import analysistest as at

tt = at.tt
FAULT = "every:2/4"
CLASS, BLOCK = 4, 128


def run(args, simple, compiled):
    trace, nulls = at.record_workload(args, HAKMEM_FAULT_SUPERSLAB=FAULT, HAKMEM_TINY_MID_REFILL_SIMPLE=simple)
    n = len(nulls)
    tt.check(all(size == BLOCK and err == 12 for _, size, err in nulls), f"NULLs without ENOMEM: {nulls}")

    report = at.oom_json(trace)
    ooms = report["ooms"]
    tt.check(report["lost_events"]["discarded_events"] == 0, f"events were lost: {report['lost_events']}")
    tt.check(len(ooms) == n and report["summary"]["ooms_total"] == n,
             f"{len(ooms)} OOM paths (ooms_total {report['summary']['ooms_total']}), want exactly {n}")
    bad = [(o["index"], o["vtid"], o["cause"], o["cause_detail"]) for o in ooms if o["cause"] != "injected"]
    tt.check(not bad, f"OOMs whose cause is not injected: {bad}")
    got = collections.Counter(o["vtid"] for o in ooms)
    want = collections.Counter(tid for tid, _, _ in nulls)
    tt.check(got == want, f"OOMs per vtid {dict(got)}, NULLs per tid in the log {dict(want)}")
    tt.check(len({o["vpid"] for o in ooms}) == 1, f"OOMs from several processes: {[o['vpid'] for o in ooms]}")
    for o in ooms:
        tt.check(o["class"] == CLASS and o["block_size"] == BLOCK and o["size"] == BLOCK,
                 f"OOM {o['index']}: class {o['class']} block {o['block_size']} size {o['size']}")
        tt.check(not o["begins_midway"] and o["lost_events_in_window"] == 0, f"OOM {o['index']} marked incomplete")
        names = at.steps(o)
        tt.check(names[-1] == "oom", f"OOM {o['index']}: the path does not end with the oom: {names}")
        fails = [s for s in o["path"] if s["event"] == "superslab_alloc_fail"]
        tt.check(fails and fails[-1]["fields"]["reason"] == "injected" and fails[-1]["fields"]["err"] == 12,
                 f"OOM {o['index']}: superslab_alloc_fail {fails}")
        if {"refill_enter", "chunk_expand", "refill_exit"} <= compiled:
            tt.check(names[0] == "refill_enter" and o["path"][0]["fields"]["seq"] == o["seq"],
                     f"OOM {o['index']}: the path does not begin with its refill_enter: {names}")
            tt.check(at.follows(o, lambda a: a["event"] == "chunk_expand" and a["fields"]["outcome"] == "failed",
                                lambda b: b["event"] == "superslab_alloc_fail" and b["fields"]["reason"] == "injected"),
                     f"OOM {o['index']}: no failed chunk_expand right before the injected failure: {names}")
            mid = [s["fields"] for s in o["path"] if s["event"] == "mid_simple_choice"]
            tt.check(mid and mid[0]["path"] == ("simple" if simple == "1" else "multi_stage"),
                     f"OOM {o['index']}: mid_simple_choice {mid} with HAKMEM_TINY_MID_REFILL_SIMPLE={simple}")
            exits = [s["fields"]["result"] for s in o["path"] if s["event"] == "refill_exit"]
            tt.check(exits == ["null"], f"OOM {o['index']}: refill_exit results {exits}")
    tt.check(report["summary"]["causes"] == {"injected": n}, f"summary causes {report['summary']['causes']}")
    per_thread = {t["vtid"]: t["ooms"] for t in report["summary"]["threads"] if t["ooms"]}
    tt.check(per_thread == dict(want), f"summary threads with OOMs {per_thread}, log {dict(want)}")

    text = at.text_report(trace)
    headers = [line for line in text.splitlines() if line.startswith("OOM ")]
    tt.check(len(headers) == n and text.count("  cause: injected") == n,
             f"the text report has {len(headers)} OOM headers and {text.count('  cause: injected')} injected "
             f"causes, want {n} each")
    summary = at.text_report(trace, "summary")
    tt.check(f"causes: injected {n}" in summary, f"the text summary does not say 'causes: injected {n}':\n{summary}")
    tt.ok(f"mid-simple {simple}: {n} injected OOMs, each on the thread that got the NULL")


def main():
    args = tt.arguments(workload="trace_oom_workload")
    compiled = tt.compiled_events()
    tt.check({"oom", "superslab_alloc_fail"} <= compiled, f"this build compiles in only {sorted(compiled)}")
    for simple in ("0", "1"):
        run(args, simple, compiled)
    print("test_injected: passed")


if __name__ == "__main__":
    main()
