#!/usr/bin/python3
"""test_snapshot.py — in a flight-recorder snapshot, paths the snapshot cuts are marked; whole ones keep their cause.

Records trace_oom_workload under HAKMEM_MAX_MEMORY=48M with `hakmem-trace record --flight-recorder
--subbuf-size=4K --num-subbuf=8`: four threads grow their class-4 live sets (hundreds of refills, far more than
8 x 4 KiB per CPU hold) until the cap refuses, then each takes 2000 NULLs in a row, every one an OOM path. The
trigger on hakmem:oom snapshots the ring buffers while OOM paths keep coming, so each CPU's buffer in the
snapshot begins wherever the ring had wrapped to: mid-path, and at a different time per CPU. Then, on the
snapshot, `hakmem-trace oom-paths --json` must:
  - mark some OOM paths begins_midway, every such path with cause `incomplete`: the path's first event is not
    its refill_enter, or some CPU's buffer in the snapshot begins after the path's first event (before that,
    what the thread did on that CPU is gone);
  - give every other OOM (whole path, no loss in its window) its real cause, `cap_reached`, with the whole
    refill_enter .. (a failed chunk_expand or a cap_refused bitmap_check), superslab_alloc_fail cap .. oom path;
    and there must be some;
  - agree with the trace itself: an OOM is whole exactly when its path begins with its refill_enter at or after
    the time every CPU's buffer in the snapshot has begun (read here with bt2 from the packets);
  - never accuse the allocator (expansion_bypassed, bitmap_inconsistent), and say so in the text report.
A snapshot without both kinds is retaken (the test fails if none of ATTEMPTS has both). The first snapshot, the
first OOM's, is the one examined (the recorder writes one per cue and a last one after the exit).

Then a path whose middle the snapshot lost although its beginning and end are there: `seed_replay --migrate`
(the real provider, no hakmem) emits refill_enter and bitmap_check on CPU 1, the mid_simple_choice, failed
chunk_expand and superslab_alloc_fail on CPU 0, then floods CPU 0's ring buffer from another thread, then emits
refill_exit null and the oom on CPU 1. The snapshot holds refill_enter, bitmap_check, refill_exit, oom of one
refill, with no chunk_expand: read naively, the seed's bug (expansion_bypassed). It must be `incomplete`, marked
begins_midway: CPU 0's buffer in the snapshot begins after the path did. (Needs CPUs 0 and 1: on a machine
without, this part is reported as not run.)

usage: test_snapshot.py --lib libhakmem-trace.so --workload trace_oom_workload --replay seed_replay
"""
import os

import analysistest as at

tt = at.tt
CAP = "48M"
REFUSALS = 2000
BUFFERS = ["--flight-recorder", "--subbuf-size=4K", "--num-subbuf=8"]
ATTEMPTS = 8  # a snapshot taken before the OOM storm filled the rings holds no cut path: retake it


def coverage(snapshot):
    """The time from which every stream (CPU buffer) of the snapshot holds events: the latest first packet."""
    import bt2
    first = {}
    for msg in bt2.TraceCollectionMessageIterator(str(snapshot)):
        if isinstance(msg, bt2._PacketBeginningMessageConst):
            first.setdefault(msg.packet.stream.addr, msg.default_clock_snapshot.ns_from_origin)
    return max(first.values()), len(first)


def attempt(args, n):
    work = tt.workdir()
    env = dict(os.environ, HAKMEM_MAX_MEMORY=CAP, HAKMEM_TINY_MID_REFILL_SIMPLE="0")
    env.pop("HAKMEM_FAULT_SUPERSLAB", None)
    status, out = tt.record([args.workload, work / "nulls.log", REFUSALS], lib=args.lib, output=work / "fr",
                            options=BUFFERS, env=env, timeout=300)
    tt.check(status == 0, f"the workload exited with status {status}")
    snaps = at.snapshots(out)
    tt.check(snaps, f"no snapshot folder in {out}: the trigger did not fire")
    report = at.oom_json(snaps[0])
    ooms = report["ooms"]
    midway = [o for o in ooms if o["begins_midway"]]
    whole = [o for o in ooms if not o["begins_midway"] and o["lost_events_in_window"] == 0]
    print(f"attempt {n}: {report['summary']['hakmem_events']} events, {len(ooms)} OOMs: {len(midway)} begin "
          f"mid-way, {len(whole)} whole; lost {report['lost_events']['discarded_events']} events, "
          f"{report['lost_events']['discarded_packets']} packets", flush=True)
    return snaps[0], report, midway, whole


def main():
    args = tt.arguments(workload="trace_oom_workload", replay="seed_replay (links the hakmem provider itself)")
    for n in range(1, ATTEMPTS + 1):
        snap, report, midway, whole = attempt(args, n)
        if midway and whole:
            break
    else:
        tt.fail(f"none of {ATTEMPTS} snapshots held both an OOM path cut by the snapshot and a whole one")

    ooms = report["ooms"]
    begins, streams = coverage(snap)
    tt.check(streams >= 1, "no packet in the snapshot")
    for o in ooms:
        i, names = o["index"], at.steps(o)
        tt.check(o["cause"] not in at.FALSE_IN_REAL_RUNS,
                 f"OOM {i}: cause {o['cause']} ({o['cause_detail']}) in a real run; path {names}")
        start, _ = at.window(o)
        cut_by_snapshot = names[0] != "refill_enter" or start < begins
        tt.check(o["begins_midway"] == cut_by_snapshot,
                 f"OOM {i}: begins_midway {o['begins_midway']}, but its path {names} starts "
                 f"{(start - begins) / 1000:.1f} µs after every CPU buffer of the snapshot has begun")
        if o["begins_midway"] or o["lost_events_in_window"]:
            tt.check(o["cause"] == "incomplete", f"OOM {i} is cut (begins_midway {o['begins_midway']}, lost "
                     f"{o['lost_events_in_window']}) yet has cause {o['cause']}")
            continue
        tt.check(o["cause"] == "cap_reached", f"whole OOM {i}: cause {o['cause']} ({o['cause_detail']}), "
                 f"want cap_reached; path {names}")
        decisions = at.refused_decisions(o, "cap")
        tt.check(names[0] == "refill_enter" and names[-1] == "oom" and decisions
                 and all(d in at.REFUSED_DECISIONS for d in decisions),
                 f"whole OOM {i}: path {names}, refusals ending {decisions}")
    tt.ok(f"{len(midway)} OOM paths cut by the snapshot, all incomplete; {len(whole)} whole, all cap_reached")

    text = at.text_report(snap)
    tt.check(text.count("(the trace begins in the middle of this path") == len(midway),
             f"the text report marks {text.count('(the trace begins in the middle of this path')} paths as "
             f"beginning mid-way, the JSON {len(midway)}")
    tt.check(text.count("  cause: cap_reached") == sum(o["cause"] == "cap_reached" for o in ooms),
             "the text report and the JSON disagree on cap_reached")
    migrated_middle(args)
    print("test_snapshot: passed")


def migrated_middle(args):
    work = tt.workdir()
    tids = work / "tids"
    status, out = tt.record([args.replay, "--migrate", tids], lib=args.lib, output=work / "fr",
                            options=["--no-preload", *BUFFERS], timeout=120)
    if status == tt.SKIP:
        print("NOTE: CPUs 0 and 1 cannot both be used here: the migrated-path snapshot was not taken", flush=True)
        return
    tt.check(status == 0, f"seed_replay --migrate exited with status {status}")
    tid = int(tids.read_text().split()[1])
    snaps = at.snapshots(out)
    tt.check(snaps, f"no snapshot folder in {out}")
    report = at.oom_json(snaps[0])
    ooms = report["ooms"]
    tt.check(len(ooms) == 1 and ooms[0]["vtid"] == tid, f"OOMs {[(o['vtid'], o['cause']) for o in ooms]}, want "
             f"one on tid {tid}")
    o = ooms[0]
    names = at.steps(o)
    tt.check(names == ["refill_enter", "bitmap_check", "refill_exit", "oom"],
             f"the snapshot kept {names} of the migrated path; the test wants the CPU 0 part gone")
    tt.check(o["begins_midway"] and o["cause"] == "incomplete" and "CPU buffer" in o["cause_detail"],
             f"the path with its middle gone: begins_midway {o['begins_midway']}, cause {o['cause']} "
             f"({o['cause_detail']}); want incomplete, not a verdict on the allocator")
    tt.ok("a path whose middle went to an overwritten CPU buffer is incomplete, not expansion_bypassed")


if __name__ == "__main__":
    main()
