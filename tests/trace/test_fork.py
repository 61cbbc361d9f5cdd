#!/usr/bin/python3
"""test_fork.py — a forked child's refills are recorded under the child's own vpid, the parent's under its own.

Records trace_fork_program (dlopen of libm, 4 allocating threads, fork without exec while they hold their
blocks; the child allocates 50000 blocks of 120 bytes) with `hakmem-trace record`, a real LTTng session, which
preloads libhakmem-trace.so and liblttng-ust-fork.so. Without the fork wrapper the child's events would carry the
parent's vpid; without the allocator's fork handlers the child would hang or fail.

usage: test_fork.py --lib libhakmem-trace.so --program trace_fork_program
"""
from collections import Counter

import tracetest as tt

WORKERS = 4
# trace_fork_program's workloads (keep in step with its #defines). A 64 KiB slab holds at most 512 blocks of 128
# bytes and 32 of 2048: blocks kept live at once need at least that many distinct slabs, so at least that many
# refills, less the one slab a heap may already hold for the class.
WORKER_MID_BLOCKS, MID_SIZE = 4000, 2048
CHILD_BLOCKS, CHILD_BLOCK_SIZE = 50000, 128  # malloc(120) is served by the 128-byte class
SLAB = 64 * 1024


def min_refills(blocks, block_size):
    per_slab = SLAB // block_size
    return -(-blocks // per_slab) - 1


def read_pid(path, who):
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError) as e:
        tt.fail(f"the {who} pid file {path} was not written correctly: {e}")


def main():
    args = tt.arguments(program="trace_fork_program")
    lib = args.lib

    work = tt.workdir()
    child_file, parent_file = work / "child.pid", work / "parent.pid"
    status, trace = tt.record([args.program, child_file, parent_file], lib=lib, output=work / "trace",
                              timeout=240)
    if status != 0:
        if tt.find_traces(trace):  # what the allocator reported before the failure, if anything
            for o in tt.read_trace(trace, names={"hakmem:oom"}).events[:5]:
                print(f"  recorded: {o}")
        tt.fail(f"trace_fork_program (or hakmem-trace record) exited with status {status}, want 0")
    parent, child = read_pid(parent_file, "parent"), read_pid(child_file, "child")
    tt.check(parent != child, f"parent and child wrote the same pid {parent}")
    tt.ok(f"program exited 0; parent pid {parent}, child pid {child}")

    t = tt.read_trace(trace)
    tt.check(t.discarded_events == 0, f"{t.discarded_events} events were discarded")
    tt.check(t.discarded_packets == 0, f"{t.discarded_packets} packets were discarded")
    refills = t.named("hakmem:refill_enter")
    by_pid = Counter(e["vpid"] for e in refills)
    tt.ok(f"{len(t.events)} events, none lost; refill_enter per vpid: {dict(by_pid)}")

    strangers = set(by_pid) - {parent, child}
    tt.check(not strangers, f"refill_enter events from vpids {sorted(strangers)}, neither parent nor child")

    # The child: its one thread (vtid = its pid) refilled the 128-byte class over and over, under its own vpid.
    want = min_refills(CHILD_BLOCKS, CHILD_BLOCK_SIZE)
    child_main = [e for e in refills
                  if e["vpid"] == child and e["vtid"] == child and e["block_size"] == CHILD_BLOCK_SIZE]
    tt.check(len(child_main) >= want,
             f"{len(child_main)} refill_enter events for 128-byte blocks with vpid = vtid = child pid {child}, "
             f"want at least {want} (its 50000 live blocks need that many slabs)")
    tt.check(all(e["vpid"] == child for e in t.events if e["vtid"] == child),
             f"events of the child's thread {child} carry another vpid: the fork wrapper did not take effect")
    tt.ok(f"child {child}: {len(child_main)} refills of its 128-byte class under its own vpid")

    # The parent: each of the 4 workers (a vtid of its own, not the main thread's) refilled the 2048-byte class.
    want = min_refills(WORKER_MID_BLOCKS, MID_SIZE)
    per_thread = Counter(e["vtid"] for e in refills
                         if e["vpid"] == parent and e["vtid"] != parent and e["block_size"] == MID_SIZE)
    busy = sorted(tid for tid, n in per_thread.items() if n >= want)
    tt.check(len(busy) >= WORKERS,
             f"refill_enter of 2048-byte blocks per parent thread: {dict(per_thread)}; want {WORKERS} threads "
             f"with at least {want} each (4000 live blocks each)")
    tt.check(child not in per_thread, "the child's pid appears as a thread of the parent")
    tt.ok(f"parent {parent}: workers {busy} refilled the 2048-byte class at least {want} times each")
    print("test_fork: passed")


if __name__ == "__main__":
    main()
