#!/usr/bin/python3
"""test_crafted.py — refill paths the real allocator cannot produce get the cause that names what is wrong.

seed_replay links the real `hakmem` provider (tracepoints/hakmem_tp.c, every event compiled in), does not use
hakmem, and is recorded as it is (`hakmem-trace record --no-preload`, a real LTTng session). One thread per
scenario emits an ordinary claimed refill and then a failing one (see seed_replay.c), and writes
"scenario vtid thread-name" to a file. `hakmem-trace oom-paths --json` must give exactly one OOM per scenario, on
its thread, with:
  seed            the seed's failure (no chunk_expand, superslab_alloc_fail os)   expansion_bypassed
  outside         superslab_alloc_fail after a successful expansion               expansion_bypassed
  bitmap_free     bitmap 0xfffffffe reported full                                 bitmap_inconsistent
  bitmap_active   active_slabs 30 for a full bitmap                               bitmap_inconsistent
  cap             a failed expansion under the cap                                cap_reached
  nochunk         the class's first refill, no chunk yet (chunk 0, active 0)      cap_reached
  ust             a failed expansion (os), thread named like lttng-ust's own      os_refused, labelled
and each path must be that refill alone (refill_enter .. oom, the claimed refill before it not mixed in).

usage: test_crafted.py --lib libhakmem-trace.so --replay seed_replay
"""
import analysistest as at

tt = at.tt
EXPECTED = {
    "seed": ("expansion_bypassed", "without expand_superslab_head"),
    "outside": ("expansion_bypassed", "outside a chunk expansion"),
    "bitmap_free": ("bitmap_inconsistent", "0xfffffffe"),
    "bitmap_active": ("bitmap_inconsistent", "active_slabs says 30"),
    "cap": ("cap_reached", "errno 12"),
    "nochunk": ("cap_reached", "errno 12"),
    "ust": ("os_refused", "errno 12"),
}
SEED_PATH = [e for e in tt.catalogue.OOM_PATH if e != "chunk_expand"]  # the seed's bug: no expansion on the way


def main():
    args = tt.arguments(replay="seed_replay (links the hakmem provider itself)")
    work = tt.workdir()
    tids = work / "tids"
    status, trace = tt.record([args.replay, tids], lib=args.lib, output=work / "trace", options=["--no-preload"],
                              timeout=120)
    tt.check(status == 0, f"seed_replay exited with status {status}")
    threads = {}
    for line in tids.read_text().splitlines():
        name, tid, comm = line.split(maxsplit=2)
        threads[name] = (int(tid), comm)
    tt.check(set(threads) == set(EXPECTED), f"seed_replay ran {sorted(threads)}, want {sorted(EXPECTED)}")

    report = at.oom_json(trace)
    ooms = report["ooms"]
    tt.check(len(ooms) == len(EXPECTED), f"{len(ooms)} OOMs, want {len(EXPECTED)}: {[o['vtid'] for o in ooms]}")
    by_vtid = {o["vtid"]: o for o in ooms}
    tt.check(len(by_vtid) == len(ooms), "two OOMs on one thread")
    for name, (cause, detail) in EXPECTED.items():
        tid, comm = threads[name]
        o = by_vtid.get(tid)
        tt.check(o is not None, f"no OOM on the {name} thread (tid {tid}); OOMs on {sorted(by_vtid)}")
        tt.check(o["cause"] == cause and detail in o["cause_detail"],
                 f"{name}: cause {o['cause']} ({o['cause_detail']}), want {cause} ({detail}...)")
        names = at.steps(o)
        tt.check(names[0] == "refill_enter" and names[-1] == "oom" and not o["begins_midway"],
                 f"{name}: the path is not refill_enter .. oom: {names}")
        tt.check(all(s["fields"].get("seq", o["seq"]) == o["seq"] for s in o["path"]),
                 f"{name}: the path mixes refills (seqs {[s['fields'].get('seq') for s in o['path']]})")
        tt.check(not any(s["event"] == "refill_exit" and s["fields"]["result"] == "claimed" for s in o["path"]),
                 f"{name}: the claimed refill before the failing one is in the path: {names}")
        tt.check(o["context"] == [], f"{name}: other threads' events in the window, but the threads ran one by one")
        tt.check(o["procname"] == comm, f"{name}: procname {o['procname']!r}, the thread's name is {comm!r}")
    seed = by_vtid[threads["seed"][0]]
    tt.check(at.steps(seed) == SEED_PATH, f"the seed's path {at.steps(seed)}, want {SEED_PATH}")
    fail = seed["path"][3]["fields"]
    tt.check(fail["err"] == 12 and fail["reason"] == "os", f"the seed's superslab_alloc_fail {fail}")
    check = seed["path"][1]["fields"]
    tt.check(check["bitmap"] == 0xFFFFFFFF and check["active_slabs"] == 32 and check["outcome"] == "full",
             f"the seed's bitmap_check {check}")
    tt.check(seed["path"][2]["fields"]["path"] == "simple", f"the seed's mid_simple_choice {seed['path'][2]}")
    free = by_vtid[threads["bitmap_free"][0]]["path"][1]["fields"]
    tt.check(free["bitmap"] == 0xFFFFFFFE and free["outcome"] == "full", f"bitmap_free's bitmap_check {free}")

    # lttng-ust's own threads are labelled: seed_replay names its ust thread as lttng-ust names its listeners.
    tid, comm = threads["ust"]
    tt.check(comm.endswith("-ust"), f"the ust scenario's thread is called {comm!r}")
    ust = by_vtid[tid]
    tt.check(ust["thread"] == f"{comm} (lttng-ust thread)", f"the -ust thread is labelled {ust['thread']!r}")
    others = [o["thread"] for o in ooms if o["vtid"] != tid]
    tt.check(not any("lttng-ust" in t for t in others), f"other threads labelled as lttng-ust's: {others}")
    row = [t for t in report["summary"]["threads"] if t["vtid"] == tid]
    tt.check(row and row[0]["thread"].endswith("(lttng-ust thread)"), f"summary thread row {row}")

    causes = report["summary"]["causes"]
    want = {"expansion_bypassed": 2, "bitmap_inconsistent": 2, "cap_reached": 2, "os_refused": 1}
    tt.check(causes == want, f"summary causes {causes}, want {want}")
    text = at.text_report(trace)
    for cause, n in want.items():
        tt.check(text.count(f"  cause: {cause} — ") == n, f"the text report gives {cause} "
                 f"{text.count(f'  cause: {cause} — ')} times, want {n}")
    tt.check("(lttng-ust thread)" in text, "the text report does not label the lttng-ust thread")
    tt.ok("the seed's failure is expansion_bypassed, the bad bitmaps bitmap_inconsistent, the others as recorded")
    print("test_crafted: passed")


if __name__ == "__main__":
    main()
