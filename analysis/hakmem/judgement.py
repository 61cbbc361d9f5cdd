"""The OOM-path judgement: the final cause of a path that ended in NULL (the core finds the cause the path itself
shows, analysis/native/cause.c; losses and snapshot coverage are weighed here), the call, what other threads did."""

CAUSES = ("os_refused", "cap_reached", "injected", "expansion_bypassed", "bitmap_inconsistent", "incomplete")


def cause(rec, lost, declared):
    """The final cause: what the path shows (rec["structural"], the core's), unless events were lost in its window
    or the snapshot's coverage begins inside it."""
    if lost:
        return "incomplete", f"{lost} event(s) were lost while this path ran"
    if rec.get("coverage_detail"):
        return "incomplete", rec["coverage_detail"]
    return rec["structural"]


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

