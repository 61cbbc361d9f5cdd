#!/usr/bin/python3
"""test_oom_paths.py — every OOM of a capped 4-thread run is in the trace, on the thread that got the NULL, behind
the full chain of refill decisions with matching fields, and nothing was lost.

Usage: test_oom_paths.py --lib LIBHAKMEM_TRACE --workload TRACE_OOM_WORKLOAD --mid-simple 0|1
In a build with only some events (HAKMEM_TRACE_COMPILED_EVENTS), only those may appear in the trace.
"""
import collections
import os

import tracetest as tt
from hakmem import catalogue

CAP = "16M"          # the tracer's own allocations are not charged to it (src/tracer.c)
REFUSALS = 3         # NULLs each of the workload's 4 threads waits for
CLASS, BLOCK = 4, 128
FULL = 0xFFFFFFFF


CHUNK_HEADER = {8192}                 # what a new chunk commits
SLAB_PAGES = {65536, 65536 - 8192}     # a slab's pages (slab 0 shares its first 8 KiB with the header)


def subsequence(names, wanted):
    it = iter(names)
    return all(any(n == w for n in it) for w in wanted)


def check_path(oom, path, simple):
    names = [e["name"].split(":", 1)[1] for e in path]
    order = catalogue.OOM_PATH if "chunk_expand" in names else [n for n in catalogue.OOM_PATH if n != "chunk_expand"]
    tt.check(subsequence(names, order),
             f"OOM on vtid {oom['vtid']} (seq {oom['seq']}): path {names} lacks the order {order}")
    for e in path:
        tt.check(e["class_idx"] == CLASS and e["block_size"] == BLOCK,
                 f"{e['name']} of the OOM path reports class {e['class_idx']}/{e['block_size']}")
    by = collections.defaultdict(list)
    for e in path:
        by[e["name"].split(":", 1)[1]].append(e)
    mid = by["mid_simple_choice"][0]
    tt.check(mid["enabled"] == int(simple) and mid["path"] == ("simple" if simple else "multi_stage"),
             f"mid_simple_choice {mid} with HAKMEM_TINY_MID_REFILL_SIMPLE={int(simple)}")
    # The cap counts committed memory, so it refuses either a new chunk's header (a full chunk, a failed
    # expansion) or the pages of a free slab of the current chunk (a claim refused): each refusal is one
    # superslab_alloc_fail right after the decision it ends.
    for i, e in enumerate(path):
        if e["name"] != "hakmem:superslab_alloc_fail":
            continue
        before = next(b for b in reversed(path[:i]) if b["name"] != "hakmem:mid_simple_choice")
        if before["name"] == "hakmem:chunk_expand":
            tt.check(before["outcome"] == "failed", f"superslab_alloc_fail after {before}")
            tt.check(any(b["bitmap"] == FULL and b["full_mask"] == FULL and b["active_slabs"] == 32
                         and b["outcome"] == "full" for b in by["bitmap_check"]),
                     f"an expansion without a bitmap_check that saw a full chunk: {by['bitmap_check']}")
            want = CHUNK_HEADER
        else:
            tt.check(before["name"] == "hakmem:bitmap_check" and before["outcome"] == "cap_refused"
                     and before["bitmap"] != FULL, f"superslab_alloc_fail after {before}")
            want = SLAB_PAGES
        tt.check(e["err"] == 12 and e["reason"] == "cap" and e["bytes"] in want,
                 f"superslab_alloc_fail {e}: want errno 12, reason cap, {sorted(want)} bytes")
    tt.check(by["superslab_alloc_fail"], f"no refusal on the path {names}")
    tt.check(by["refill_exit"][-1]["result"] == "null", f"refill_exit {by['refill_exit'][-1]}")
    tt.check(oom["size"] == BLOCK, f"oom size {oom['size']}")


def check_stacks(events):
    """Every refusal and every OOM comes right after its thread's stack: the oom's with its number, the refusal's
    with oom_no 0, the same refill seq, and the same stack (one call of the workload's, below the library)."""
    last = {}
    stacks = set()
    for e in events:
        name = e["name"].split(":", 1)[1]
        if name in ("superslab_alloc_fail", "oom"):
            before = last.get(e["vtid"])
            tt.check(before is not None and before["name"] == "hakmem:call_stack" and before["seq"] == e["seq"]
                     and before["oom_no"] == (e["oom_no"] if name == "oom" else 0),
                     f"{name} (seq {e['seq']}) on vtid {e['vtid']} follows {before} instead of its stack")
            tt.check(len(before["frames"]) >= 2, f"a stack of {len(before['frames'])} frames: {before}")
            stacks.add(tuple(before["frames"][:1]))
        last[e["vtid"]] = e
    tt.check(len(stacks) == 1, f"the workload allocates from one call site, but the stacks begin at {stacks}")


def main():
    args = tt.arguments(workload="trace_oom_workload", mid_simple="HAKMEM_TINY_MID_REFILL_SIMPLE: 0 or 1")
    tt.check(args.mid_simple in ("0", "1"), f"--mid-simple {args.mid_simple}: 0 or 1")
    simple = args.mid_simple == "1"
    compiled = tt.compiled_events()
    full = compiled == set(catalogue.EVENTS)

    log = tt.workdir() / "nulls.log"
    env = dict(os.environ, HAKMEM_MAX_MEMORY=CAP, HAKMEM_TINY_MID_REFILL_SIMPLE=args.mid_simple)
    status, trace = tt.record([args.workload, log, REFUSALS], lib=args.lib, env=env, timeout=300)
    tt.check(status == 0, f"the workload exited with status {status}")
    nulls = [line.split() for line in log.read_text().splitlines()]
    tt.check(len(nulls) == 4 * REFUSALS, f"the workload logged {len(nulls)} NULLs, want {4 * REFUSALS}")
    tt.check(all(n[1] == str(BLOCK) and n[2] == "12" for n in nulls), f"NULLs without ENOMEM: {nulls}")

    t = tt.read_trace(trace)
    tt.check(t.discarded_events == 0, f"{t.discarded_events} events were discarded")
    names = {e["name"] for e in t.events if e["name"].startswith("hakmem:")}  # not lttng-ust's address events
    stray = {n for n in names if n.split(":", 1)[1] not in compiled}
    tt.check(not stray, f"events compiled out of this build appear in the trace: {stray}")
    ooms = t.named("hakmem:oom")
    tt.check(sorted(str(o["vtid"]) for o in ooms) == sorted(n[0] for n in nulls),
             f"OOM events on vtids {sorted(o['vtid'] for o in ooms)}, NULLs on {sorted(n[0] for n in nulls)}")

    if full:
        by_refill = tt.refill_paths(t.events)
        for oom in ooms:
            path = by_refill[(oom["vpid"], oom["vtid"], oom["seq"])] + [oom]
            check_path(oom, path, simple)
    else:
        fails = t.named("hakmem:superslab_alloc_fail")
        tt.check(len(fails) >= len(ooms), f"{len(ooms)} OOMs but {len(fails)} superslab_alloc_fail events")
    if "call_stack" in compiled:
        check_stacks(t.events)
    tt.ok(f"{len(ooms)} OOMs, each on the thread that got the NULL"
          + (", each behind its full decision path" if full else
             f"; only {sorted(compiled)} recorded"))


if __name__ == "__main__":
    main()
