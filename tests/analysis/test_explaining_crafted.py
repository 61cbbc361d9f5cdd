#!/usr/bin/python3
"""test_explaining_crafted.py — the explaining events of an OOM's decisions in orders a real schedule rarely
gives, fed to the analysis (paths.Analyzer, whose core takes crafted events too) as events, without a recording:

  late      A's expansion lost its race before the winner's chunk_expand is in the trace (the two threads raced to
            the tracer): the winner, emitted afterwards, still explains it
  claim     A's claim lost its race: of the other threads' claims on that chunk the one that found the same bitmap
            (not the newest) won it
  own       A itself took the last free slab of the chunk it later found full: nothing to explain
  reborn    a chunk retired and mapped again at the same address: the claim that filled the old one does not
            explain the new one's being full; the one that filled the new one does
  far       the filling claim lies CONTEXT_WINDOW * 4 events of other threads on the class back
  bounded   refills that end with a slab leave nothing waiting; memory stays as many slots as decisions of open
            refills, and CHUNKS_KEPT chunks per class

usage: test_explaining_crafted.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "analysis"))
from hakmem import catalogue, native, paths  # noqa: E402
from hakmem.records import Event  # noqa: E402
import analysistest as at  # noqa: E402

fail, check = at.tt.fail, at.tt.check

CLS, BS, FULL = 27, 32768, 0xFFFFFFFF
PID = 100
LIMITS = native.limits()  # the core's bounds
X, Y = 0x7F0000000000, 0x7F0000200000


class Feed:
    def __init__(self):
        self.a = paths.Analyzer()
        self.a.declared = {catalogue.full_name(e) for e in catalogue.EVENTS}
        self.ts = 1_000_000
        self.seq = {}

    def ev(self, tid, name, **fields):
        self.ts += 1000
        fields.setdefault("class_idx", CLS)
        fields.setdefault("block_size", BS)
        fields.setdefault("seq", self.seq.get(tid, 0))
        e = Event(name, self.ts, PID, tid, "crafted", fields)
        self.a.event(e)
        return e

    def enter(self, tid, chunk=X):
        self.seq[tid] = self.seq.get(tid, 0) + 1
        return self.ev(tid, "refill_enter", thread_chunk=0, current_chunk=chunk)

    def check(self, tid, chunk, bitmap, outcome):
        return self.ev(tid, "bitmap_check", chunk=chunk, bitmap=bitmap, full_mask=FULL, capacity=32,
                       active_slabs=bin(bitmap).count("1"), outcome=outcome)

    def expand(self, tid, outcome, chunk, waited=0):
        return self.ev(tid, "chunk_expand", outcome=outcome, chunk=chunk, chunk_count=2, waited=waited)

    def claimed_refill(self, tid, chunk, bitmap):
        self.enter(tid, chunk)
        c = self.check(tid, chunk, bitmap, "claimed")
        self.ev(tid, "refill_exit", slab=chunk + 0x100, result="claimed")
        return c

    def oom(self, tid):
        self.ev(tid, "mid_simple_choice", enabled=1, path="simple", why="option_on")
        self.expand(tid, "failed", Y)
        self.ev(tid, "superslab_alloc_fail", bytes=2 << 20, err=12, reason="injected")
        self.ev(tid, "refill_exit", slab=0, result="null")
        self.ev(tid, "oom", size=BS)

    def report(self):
        return self.a.finish()




def only_oom(report, tid):
    ooms = [o for o in report["ooms"] if o["vtid"] == tid]
    check(len(ooms) == 1, f"OOMs on {[o['vtid'] for o in report['ooms']]}, want one on {tid}")
    return ooms[0]


def explained(o):
    return [(c["vtid"], c["event"], c["fields"].get("outcome"), c["reason"], c["steps"]) for c in o["explaining"]]


def late():
    f = Feed()
    f.claimed_refill(2, X, FULL >> 1)            # tid 2 takes X's last free slab
    f.enter(1)
    f.check(1, X, FULL, "full")                  # step 2
    f.expand(1, "lost_race", Y, waited=1)        # step 3: A's event first ...
    f.expand(3, "new_chunk", Y)                  # ... the winner's after it
    f.check(1, Y, FULL, "full")                  # step 4: Y full: tid 4 filled it before this check, emitted after
    f.check(4, Y, FULL >> 1, "claimed")
    f.oom(1)
    got = explained(only_oom(f.report(), 1))
    want = [(2, "bitmap_check", "claimed", f"claimed the last free slab of chunk {X:#x}", [2]),
            (3, "chunk_expand", "new_chunk", "won the expansion race this path lost", [3]),
            (4, "bitmap_check", "claimed", f"claimed the last free slab of chunk {Y:#x}", [4])]
    check(got == want, f"late: explaining {got}, want {want}")


def claim():
    f = Feed()
    f.enter(1)
    f.check(2, X, 0x0000000F, "claimed")         # found 0x0f and won: the bitmap A's claim found
    f.check(5, X, 0x0000001F, "claimed")         # a later claim, from the bitmap after it
    f.check(1, X, 0x0000000F, "lost_race")       # step 2
    f.check(1, X, FULL, "full")                  # step 3: nobody's filling claim is in the trace (yet)
    f.oom(1)
    o = only_oom(f.report(), 1)
    got = explained(o)
    want = [(2, "bitmap_check", "claimed",
             f"claimed a slab of chunk {X:#x} first: this path's claim lost the race", [2])]
    check(got == want, f"claim: explaining {got}, want {want}")
    check(any(n.startswith(f"tid 2 claimed a slab of chunk {X:#x}") and "step 2" in n for n in o["notes"]),
          f"claim: notes {o['notes']}")


def own():
    f = Feed()
    f.claimed_refill(1, X, FULL >> 1)            # A itself takes X's last free slab
    f.enter(1)
    f.check(1, X, FULL, "full")
    f.oom(1)
    got = explained(only_oom(f.report(), 1))
    check(got == [], f"own: explaining {got}, want none")


def reborn():
    f = Feed()
    f.claimed_refill(2, X, FULL >> 1)            # the old X filled by tid 2
    f.expand(3, "new_chunk", X)                  # X retired and mapped again: a new chunk at that address
    f.claimed_refill(4, X, FULL >> 1)            # the new X filled by tid 4
    f.enter(1)
    f.check(1, X, FULL, "full")
    f.oom(1)
    got = explained(only_oom(f.report(), 1))
    want = [(4, "bitmap_check", "claimed", f"claimed the last free slab of chunk {X:#x}", [2])]
    check(got == want, f"reborn: explaining {got}, want {want}")


def far():
    f = Feed()
    f.claimed_refill(2, X, FULL >> 1)
    f.enter(1, Y)
    for _ in range(LIMITS["context_window"] * 4 // 3):
        f.claimed_refill(3, Y, 0x1)              # tid 3 takes a slab of Y and gives it back, again and again
    f.check(1, X, FULL, "full")
    f.oom(1)
    o = only_oom(f.report(), 1)
    check(not any(c["vtid"] == 2 for c in o["context"]), "far: tid 2's claim is in the meanwhile list")
    got = explained(o)
    want = [(2, "bitmap_check", "claimed", f"claimed the last free slab of chunk {X:#x}", [2])]
    check(got == want, f"far: explaining {got}, want {want}")
    check(o["explaining"][0]["offset_ns"] < 0, f"far: the claim's offset {o['explaining'][0]['offset_ns']}")


def bounded():
    f = Feed()
    for i in range(2000):
        tid = 10 + i % 7
        f.enter(tid)
        f.check(tid, X, FULL, "full")            # waits for a filling claim that never comes ...
        f.expand(tid, "lost_race", Y + (i << 21), waited=1)  # ... and for an expansion that never comes
        f.check(tid, Y + (i << 21), 0x1, "claimed")
        f.ev(tid, "refill_exit", slab=Y + 0x100, result="claimed")  # the refill ends with a slab
    waiting, refills, kept = f.a.core.explainers_state(PID, CLS)
    check(waiting == 0 and not refills, f"bounded: {waiting} slots wait, {refills} refills kept after they ended")
    check(kept <= LIMITS["chunks_kept"], f"bounded: {kept} chunks kept for one class, at most {LIMITS['chunks_kept']}")
    check(paths.DETAIL_PER_CAUSE == LIMITS["detail_per_cause"],
          f"paths.DETAIL_PER_CAUSE {paths.DETAIL_PER_CAUSE}, the core lists {LIMITS['detail_per_cause']} per cause")


def main():
    for scenario in (late, claim, own, reborn, far, bounded):
        scenario()
        print(f"ok: {scenario.__name__}", flush=True)
    print("test_explaining_crafted: passed")


if __name__ == "__main__":
    main()
