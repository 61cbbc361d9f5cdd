"""The OOM-path judgement: the cause a refill path that ended in NULL shows, and what other threads did meanwhile."""

from . import catalogue
from .records import PATH_LIMIT

CAUSES = ("os_refused", "cap_reached", "injected", "expansion_bypassed", "bitmap_inconsistent", "incomplete")
FAIL_CAUSE = {"os": "os_refused", "cap": "cap_reached", "injected": "injected"}
LARGE = catalogue.LARGE_CLASS


def declares(declared, event):
    """Whether the event names a trace declares (what its build compiled in) include event."""
    return catalogue.full_name(event) in declared


def decision_before(path, i):
    """The decision path[i] follows: the event before it, past the mid-simple choice (reported after the first
    check that did not claim, whatever came next)."""
    for e in reversed(path[:i]):
        if e.name != "mid_simple_choice":
            return e
    return None


def structural_cause(rec, declared):
    """The cause the path itself shows, before loss and snapshot coverage (known only later) are weighed."""
    path = rec["path"]
    names = [e.name for e in path]
    fails = [e for e in path if e.name == "superslab_alloc_fail"]
    if rec["cut"]:
        return "incomplete", f"the refill ran more than {PATH_LIMIT} events; the middle is not kept"
    large = rec["oom"].get("class_idx") == LARGE
    heapless = not large and rec["oom"].get("seq") == 0  # no refill ran: the thread's heap itself was refused
    decisions = not heapless and all(declares(declared, e) for e in ("refill_enter", "chunk_expand", "bitmap_check"))
    if rec["begins_midway"] and decisions and not large:
        return "incomplete", "the trace begins in the middle of this path (a snapshot, or lost events)"
    for b in (e for e in path if e.name == "bitmap_check"):
        if not b.get("chunk"):
            continue  # no chunk yet: the check reports a full mask and 0 active slabs, with nothing to claim
        bits, mask = b.get("bitmap"), b.get("full_mask")
        if bin(bits & mask).count("1") != b.get("active_slabs"):
            return "bitmap_inconsistent", (f"bitmap {bits:#010x} has {bin(bits & mask).count('1')} slabs in use "
                                           f"but active_slabs says {b.get('active_slabs')}")
        if b.get("outcome") == "full" and bits != mask:
            return "bitmap_inconsistent", f"bitmap {bits:#010x} shows free slabs, yet the claim found it full"
        if b.get("outcome") in ("claimed", "cap_refused") and bits == mask:
            return "bitmap_inconsistent", f"a slab was claimed from a full bitmap {bits:#010x}"
    if not large and decisions:
        # The cap refusing a free slab's pages ends a path without an expansion: a new chunk would need
        # committing just the same. Any other NULL without one is the seed's bug.
        cap_refused = any(e.name == "bitmap_check" and e.get("outcome") == "cap_refused" for e in path)
        if "chunk_expand" not in names and not cap_refused:
            return "expansion_bypassed", "the refill returned NULL without expand_superslab_head"
        for i, e in enumerate(path):
            if e.name == "superslab_alloc_fail":
                before = decision_before(path, i)
                after_expand = before is not None and before.name == "chunk_expand" and before.get("outcome") == "failed"
                after_claim = before is not None and before.name == "bitmap_check" and before.get("outcome") == "cap_refused"
                if not after_expand and not after_claim:
                    return "expansion_bypassed", ("superslab_allocate failed outside a chunk expansion "
                                                  "(called around expand_superslab_head)")
    if fails:
        last = fails[-1]
        cause = FAIL_CAUSE.get(last.get("reason"))
        if cause:
            before = decision_before(path, path.index(last))
            if large:
                what = "a large block's mapping"
            elif heapless:
                what = "the thread heap's own pages"
            elif before is not None and before.name == "bitmap_check":
                what = "a free slab's pages"
            else:
                what = "a new chunk's header"
            return cause, f"{last.get('bytes')} bytes refused ({what}), errno {last.get('err')}"
    if not declares(declared, "superslab_alloc_fail"):
        return "incomplete", "this trace was recorded without superslab_alloc_fail events"
    return "incomplete", "no refusal recorded on this path"


def cause(rec, lost, declared):
    """The final cause: what the path shows, unless events were lost in its window or the snapshot's coverage
    begins inside it."""
    if lost:
        return "incomplete", f"{lost} event(s) were lost while this path ran"
    if rec.get("coverage_detail"):
        return "incomplete", rec["coverage_detail"]
    return rec.get("structural") or structural_cause(rec, declared)


def call_text(f):
    """The allocation call an oom ended, as the program made it (a trace older than the call field: malloc)."""
    call, size, count = f.get("call", "malloc"), f.get("size"), f.get("count") or 1
    each = size // count if isinstance(size, int) and count else size
    align, old = f.get("align"), f.get("old_ptr")
    if call == "calloc":
        return f"calloc({count}, {each})"
    if call == "realloc":
        return f"realloc({old or 0:#x}, {size})"
    if call == "reallocarray":
        return f"reallocarray({old or 0:#x}, {count}, {each})"
    if call == "posix_memalign":
        return f"posix_memalign(&p, {align}, {size})"
    if call in ("aligned_alloc", "memalign"):
        return f"{call}({align}, {size})"
    if call in ("valloc", "pvalloc"):
        return f"{call}({size})"
    return f"malloc({size})"


def at(ns):
    return f"{'+' if ns >= 0 else '-'}{abs(ns) / 1000:.1f} µs"


def notes(rec):
    """What the other threads did that matters: who took the last free slab, who expanded (in the window), then
    who caused a decision of the path, however far back (the explaining events)."""
    out = []
    path = rec["path"]
    start = path[0].ts
    full_chunks = {e.get("chunk") for e in path if e.name == "bitmap_check" and e.get("outcome") == "full"}
    said = set()
    for e in rec["context"]:
        who = f"tid {e.vtid}"
        if e.name == "bitmap_check" and e.get("outcome") == "claimed" and e.get("chunk") in full_chunks \
                and e.get("active_slabs") == e.get("capacity") - 1:
            out.append(f"{who} claimed the last free slab of chunk {e.get('chunk'):#x} at +{(e.ts - start) / 1000:.1f} µs")
            said.add(id(e))
        elif e.name == "chunk_expand":
            out.append(f"{who} expanded the head at +{(e.ts - start) / 1000:.1f} µs: {e.get('outcome')}")
    for e, kind, chunk, steps in rec.get("explaining", ()):
        who, when = f"tid {e.vtid}", at(e.ts - start)
        which = ", ".join(str(n) for n in steps)
        if kind == "became_current":
            out.append(f"{who} won the expansion race this path lost (step {which}): its {e.get('outcome')} at "
                       f"{when} made chunk {chunk:#x} current")
        elif kind == "filled":
            if id(e) not in said:  # said above, from the window
                out.append(f"{who} claimed the last free slab of chunk {chunk:#x} at {when}")
        else:
            out.append(f"{who} claimed a slab of chunk {chunk:#x} at {when}, from the bitmap the claim of step "
                       f"{which} found: that claim lost the race")
    return out

