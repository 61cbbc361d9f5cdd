#!/usr/bin/python3
"""test_loss.py — events the tracer discarded are reported, and no OOM whose path they may have cut keeps a cause.

Records the capped seed scenario (stress_seed_libc cap --live 30000 under HAKMEM_MAX_MEMORY=80M: hundreds of
thousands of OOM paths) with `hakmem-trace record --discard --subbuf-size=4K --num-subbuf=2`: the tracer never
waits for buffer space, so with two 4 KiB sub-buffers per CPU it discards most events. A run that happens to lose
nothing is repeated with a heavier workload; the test fails if none loses anything. Then:
  - `oom-paths --json` reports lost_events.discarded_events > 0, equal to what the trace's packets say in all
    (Babeltrace2's per-packet differences summed modulo 2**64: lttng-ust sometimes closes a packet saying 0
    discarded, and the difference to it wraps around);
  - every listed OOM whose window (its path's first event to the oom) overlaps a loss range on its own streams
    (those its thread's events in that window went to, read from the trace) has cause `incomplete`, and so has
    every path that begins mid-way; one that overlaps losses only on other streams counts no loss in its window;
    at least one OOM is incomplete because of loss;
  - no OOM gets a cause the real allocator never produces (expansion_bypassed, bitmap_inconsistent): lost
    events must not make the analysis accuse the allocator;
  - the summary's causes add up to ooms_total; the text report and the text summary both state the loss.

usage: test_loss.py --lib libhakmem-trace.so --stress stress_seed_libc
"""
import os

import analysistest as at

tt = at.tt
CAP = "80M"
ATTEMPTS = [  # (stress_seed_libc arguments, HAKMEM_TINY_MID_REFILL_SIMPLE)
    (["cap", "--live", "30000"], "0"),
    (["cap", "--live", "30000", "--ops", "400000"], "1"),
    (["cap", "--live", "60000", "--ops", "800000"], "1"),
]
SMALL_BUFFERS = ["--discard", "--subbuf-size=4K", "--num-subbuf=2"]


def packets_say(trace):
    """Discarded events as the trace's packets count them: Babeltrace2's differences, summed modulo 2**64."""
    import bt2
    total = 0
    for msg in bt2.TraceCollectionMessageIterator(str(trace)):
        if isinstance(msg, bt2._DiscardedEventsMessageConst):
            total += msg.count if msg.count is not None else 1
    return total % (1 << 64)


def main():
    args = tt.arguments(stress="stress_seed_libc (the seed scenario through plain malloc)")
    for attempt, (stress_args, simple) in enumerate(ATTEMPTS, 1):
        env = dict(os.environ, HAKMEM_MAX_MEMORY=CAP, HAKMEM_TINY_MID_REFILL_SIMPLE=simple)
        env.pop("HAKMEM_FAULT_SUPERSLAB", None)
        status, trace = tt.record([args.stress, *stress_args], lib=args.lib, options=SMALL_BUFFERS, env=env,
                                  timeout=300)
        tt.check(status == 0, f"stress_seed_libc {' '.join(stress_args)} exited with status {status}")
        report = at.oom_json(trace)
        lost = report["lost_events"]
        print(f"attempt {attempt}: {report['summary']['hakmem_events']} events recorded, "
              f"{lost['discarded_events']} discarded, {len(lost['ranges'])} loss ranges, "
              f"{report['summary']['ooms_total']} OOMs", flush=True)
        if lost["discarded_events"] > 0:
            break
    else:
        tt.fail(f"no run lost an event even with {SMALL_BUFFERS}: the loss paths of the analysis were not exercised")

    tt.check(lost["discarded_events"] < 1 << 63, f"discarded_events {lost['discarded_events']}: a wrapped count")
    want = packets_say(trace)
    tt.check(lost["discarded_events"] == want,
             f"discarded_events {lost['discarded_events']}, the packets say {want} in all")
    tt.check(all(r["count"] is None or 0 <= r["count"] < 1 << 63 for r in lost["ranges"]),
             f"a loss range with an impossible count: {[r for r in lost['ranges'] if r['count'] >= 1 << 63][:3]}")
    tt.check(sum(r["count"] for r in lost["ranges"] if r["kind"] == "events") == lost["discarded_events"],
             "the loss ranges do not add up to discarded_events")

    ooms = report["ooms"]
    s = report["summary"]
    tt.check(ooms, "no OOM survived the loss: nothing to judge")
    tt.check(sum(s["causes"].values()) == s["ooms_total"] == len(ooms) + s["ooms_unlisted"],
             f"causes {s['causes']} vs ooms_total {s['ooms_total']}, listed {len(ooms)}, unlisted "
             f"{s['ooms_unlisted']}")
    by_loss = elsewhere = 0
    streams = at.thread_streams(trace)
    for o in ooms:
        win = at.window(o)
        own = at.own_streams(streams, o)
        tt.check(own, f"OOM {o['index']}: no event of its thread in its window {win} in the trace")
        hit = [r for r in lost["ranges"] if at.overlaps(win, r) and at.on_streams(r, own)]
        if not hit and any(at.overlaps(win, r) for r in lost["ranges"]):
            elsewhere += 1
        if hit:
            by_loss += 1
            tt.check(o["cause"] == "incomplete" and o["lost_events_in_window"] > 0,
                     f"OOM {o['index']} (window {win}) overlaps {len(hit)} loss range(s), e.g. {hit[0]}, "
                     f"yet has cause {o['cause']} ({o['cause_detail']}), lost_events_in_window "
                     f"{o['lost_events_in_window']}")
        else:
            tt.check(o["lost_events_in_window"] == 0,
                     f"OOM {o['index']}: lost_events_in_window {o['lost_events_in_window']} but no range on its "
                     "own streams overlaps")
        if o["begins_midway"]:
            tt.check(o["cause"] == "incomplete", f"OOM {o['index']} begins mid-way yet has cause {o['cause']}")
        tt.check(o["cause"] not in at.FALSE_IN_REAL_RUNS,
                 f"OOM {o['index']}: cause {o['cause']} ({o['cause_detail']}) in a real run with lost events; "
                 f"path {at.steps(o)}")
    tt.check(by_loss > 0, "no listed OOM overlaps a loss range: the loss did not reach the paths")
    tt.check(not set(s["causes"]) & set(at.FALSE_IN_REAL_RUNS), f"summary causes {s['causes']}")
    tt.ok(f"{by_loss} of {len(ooms)} listed OOMs overlap a loss range on their own streams, each incomplete "
          f"({elsewhere} overlap losses on other streams only); "
          f"causes of all {s['ooms_total']}: {s['causes']}")

    text = at.text_report(trace)
    first = text.splitlines()[0]
    tt.check(f"events lost: {lost['discarded_events']} discarded events" in first,
             f"the text report's first line does not state the loss: {first!r}")
    tt.check("the trace is not complete" in text, "the text report does not say the trace is not complete")
    summary = at.text_report(trace, "summary")
    tt.check(f"events lost: {lost['discarded_events']} discarded events" in summary.splitlines()[0]
             and "not complete" in summary, f"the text summary does not state the loss:\n{summary[:600]}")
    tt.ok("the text report and summary state the loss")
    print("test_loss: passed")


if __name__ == "__main__":
    main()
