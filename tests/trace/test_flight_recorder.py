#!/usr/bin/python3
"""test_flight_recorder.py — `hakmem-trace record --flight-recorder` snapshots the history when an OOM fires.

Runs the seed scenario under a cap that refuses memory (stress_seed_libc cap, HAKMEM_MAX_MEMORY=80M, the live
set of the cap stress test) in flight-recorder mode: events stay in memory, and the trigger on hakmem:oom writes
DIR/snapshot-*. Asserts the workload's exit status 0 comes through hakmem-trace, that a snapshot exists, is
readable with bt2, and holds hakmem:oom events with the history that led to one of them (a snapshot keeps the
newest packets: it may start in the middle of a path and may report discarded packets; both are fine here).

usage: test_flight_recorder.py --lib libhakmem-trace.so --stress stress_seed_libc
"""
import os

import tracetest as tt

CAP = "80M"
LIVE = "30000"  # as the cap stress test: phase 1 must outgrow the cap
LARGE_CLASS = tt.catalogue.LARGE_CLASS  # the oom event's class for the large path


def main():
    args = tt.arguments(stress="stress_seed_libc (the seed scenario through plain malloc)")
    lib = args.lib

    work = tt.workdir()
    env = dict(os.environ, HAKMEM_MAX_MEMORY=CAP)
    status, out = tt.record([args.stress, "cap", "--live", LIVE], lib=lib, output=work / "fr",
                            options=["--flight-recorder"], env=env, timeout=240)
    # The status is asserted last, so that a failing run still shows what its snapshot holds.
    print(f"workload exit status through hakmem-trace: {status}", flush=True)

    snaps = sorted(p for p in out.glob("snapshot-*") if p.is_dir())
    tt.check(snaps, f"no snapshot-* folder in {out}: the OOM trigger did not fire or the snapshot was not written")
    compiled = tt.compiled_events()
    with_path = {"refill_exit"} <= compiled  # the trace-failures build has no refill path
    ooms_total = 0
    shown = False
    for snap in snaps:
        traces = tt.find_traces(snap)
        tt.check(traces, f"{snap} holds no CTF trace (no metadata)")
        t = tt.read_trace(snap)
        ooms = t.named("hakmem:oom")
        names = {e["name"] for e in t.events if e["name"].startswith("hakmem:")}  # not lttng-ust's address events
        stray = names - {tt.catalogue.full_name(n) for n in compiled}
        tt.check(not stray, f"{snap.name} holds events this build does not compile in: {sorted(stray)}")
        ooms_total += len(ooms)
        print(f"{snap.name}: {len(t.events)} events, {len(ooms)} oom, "
              f"{t.discarded_events} discarded events, {t.discarded_packets} discarded packets")
        for o in ooms:
            tt.check(o["vpid"] is not None and o["procname"], f"oom event without its vpid/procname context: {o}")
            tt.check(o["class_idx"] == LARGE_CLASS or o["block_size"] > 0, f"implausible oom event {o}")
            tt.check(o["size"] > 0, f"oom event for a size of 0: {o}")
        # The history before an OOM: a small-class OOM comes right after its thread's refill of the same seq
        # ended with no slab; a large one (no refill path) after earlier events of its thread. The snapshot may
        # begin mid-path, so this is asked of some OOM, not of every one.
        if with_path and not shown:
            failed_exits = {(e["vtid"], e["seq"], e["class_idx"]): e["ts"] for e in t.named("hakmem:refill_exit")
                            if e["result"] == "null"}
            for o in ooms:
                if o["class_idx"] == LARGE_CLASS:
                    before = [e for e in t.events if e["vtid"] == o["vtid"] and e["ts"] < o["ts"]]
                    if before:
                        shown = True
                        tt.ok(f"large oom of {o['size']} bytes (thread {o['vtid']}) comes after {len(before)} "
                              "earlier events of its thread in the snapshot")
                        break
                    continue
                ts = failed_exits.get((o["vtid"], o["seq"], o["class_idx"]))
                if ts is not None and ts <= o["ts"]:
                    shown = True
                    tt.ok(f"oom of class {o['class_idx']} (thread {o['vtid']}, refill {o['seq']}) follows its "
                          "refill_exit with result null in the snapshot")
                    break
    tt.check(ooms_total > 0, f"the snapshots {[s.name for s in snaps]} hold no hakmem:oom event")
    if not with_path:
        print(f"(the path before the OOM is not checked: this build compiles in {sorted(compiled)} only)")
    tt.check(shown or not with_path,
             "no oom in the snapshots comes after its own history (for a small class: its thread's refill_exit "
             "with result null and the same seq; for the large path: earlier events of its thread)")
    tt.check(status == 0, f"the capped seed scenario exited with status {status} through hakmem-trace, want 0 "
                          "(it checks every NULL comes with errno ENOMEM and that the cap refused at least once)")
    tt.ok("workload exited 0, passed through")
    print(f"test_flight_recorder: passed ({len(snaps)} snapshot(s), {ooms_total} oom events)")


if __name__ == "__main__":
    main()
