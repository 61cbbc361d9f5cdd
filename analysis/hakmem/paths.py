"""Reads a hakmem trace once, in time order, and rebuilds the path of decisions behind every OOM.

Memory: one open refill per thread, a short window of recent events per size class (for what other threads
were doing), and the OOM reports themselves — not the trace.
"""

import collections

from . import catalogue

CAUSES = ("os_refused", "cap_reached", "injected", "expansion_bypassed", "bitmap_inconsistent", "incomplete")
FAIL_CAUSE = {"os": "os_refused", "cap": "cap_reached", "injected": "injected"}
CAUSE_TEXT = {
    "os_refused": "the OS refused the mapping (mmap failed)",
    "cap_reached": "HAKMEM_MAX_MEMORY refused the mapping",
    "injected": "HAKMEM_FAULT_SUPERSLAB made the mapping fail",
    "expansion_bypassed": "NULL without a chunk expansion: superslab_allocate was reached, or skipped, around "
                          "expand_superslab_head (the seed's bug)",
    "bitmap_inconsistent": "the chunk's bitmap contradicts itself (active slabs vs bits, or free bits whose "
                           "claims fail)",
    "incomplete": "the path cannot be told in full",
}
PATH_LIMIT = 256      # events kept per open refill (a refill looping on lost races is cut, and said to be)
CONTEXT_WINDOW = 512  # recent events kept per class for the "meanwhile" context
CONTEXT_SHOWN = 40    # context events reported per OOM
LARGE = catalogue.LARGE_CLASS


class Event:
    __slots__ = ("name", "ts", "vpid", "vtid", "procname", "fields")

    def __init__(self, name, ts, vpid, vtid, procname, fields):
        self.name, self.ts, self.vpid, self.vtid, self.procname, self.fields = name, ts, vpid, vtid, procname, fields

    def get(self, key, default=None):
        return self.fields.get(key, default)


def thread_label(procname, vpid, vtid):
    """lttng-ust's own threads are named after the program with a -ust suffix (truncated to 15 characters)."""
    name = procname or "?"
    if name.endswith("-ust") or name.startswith("lttng-ust"):
        return f"{name} (lttng-ust thread)"
    return name if vpid != vtid else f"{name} (main thread)"


class OpenRefill:
    __slots__ = ("seq", "events", "begins_midway", "cut")

    def __init__(self, seq, begins_midway):
        self.seq, self.events, self.begins_midway, self.cut = seq, [], begins_midway, False

    def add(self, ev):
        if len(self.events) < PATH_LIMIT:
            self.events.append(ev)
        else:
            self.cut = True


class ClassCounters:
    def __init__(self):
        self.refills = 0
        self.bitmap_checks = collections.Counter()
        self.mid_simple = collections.Counter()
        self.expansions = collections.Counter()
        self.failures = collections.Counter()
        self.ooms = 0
        self.block_size = None

    def as_dict(self):
        return {"block_size": self.block_size, "refills": self.refills, "bitmap_checks": dict(self.bitmap_checks),
                "mid_simple_choices": dict(self.mid_simple), "expansions": dict(self.expansions),
                "failures": dict(self.failures), "ooms": self.ooms}


class Analyzer:
    """Feed it bt2 messages (or Events) in time order; finish() returns the report."""

    def __init__(self):
        self.declared = set()             # event names the trace declares (what the recorded build compiled in)
        self.open = {}                    # (vpid, vtid) -> OpenRefill
        self.large_fail = {}              # (vpid, vtid) -> superslab_alloc_fail of the large path, awaiting oom
        self.recent = collections.defaultdict(lambda: collections.deque(maxlen=CONTEXT_WINDOW))
        self.ooms = []
        self.loss = []                    # (begin_ns, end_ns, count, kind)
        self.classes = collections.defaultdict(ClassCounters)
        self.threads = {}                 # (vpid, vtid) -> {"procname", "ooms"}
        self.events = 0
        self.hakmem_events = 0
        self.first_ts = self.last_ts = None

    # ---- input ----

    def feed(self, msg):
        import bt2
        if isinstance(msg, bt2._StreamBeginningMessageConst):
            self.declared |= {ec.name for ec in msg.stream.cls.values()}
        elif isinstance(msg, bt2._EventMessageConst):
            ev = msg.event
            if not ev.name.startswith(catalogue.PROVIDER + ":"):
                self.events += 1
                return
            ctx = ev.common_context_field
            fields = {}
            for k, v in ev.payload_field.items():
                labels = getattr(v, "labels", None)
                if labels is not None:
                    labels = list(labels)
                    fields[k] = labels[0] if len(labels) == 1 else int(v)
                else:
                    fields[k] = int(v)

            def ctx_get(key):
                try:
                    return ctx[key] if ctx is not None and key in ctx else None
                except (KeyError, TypeError):
                    return None
            vpid, vtid, proc = ctx_get("vpid"), ctx_get("vtid"), ctx_get("procname")
            self.event(Event(ev.name.split(":", 1)[1], msg.default_clock_snapshot.ns_from_origin,
                             int(vpid) if vpid is not None else None, int(vtid) if vtid is not None else None,
                             str(proc) if proc is not None else None, fields))
        elif isinstance(msg, (bt2._DiscardedEventsMessageConst, bt2._DiscardedPacketsMessageConst)):
            kind = "events" if isinstance(msg, bt2._DiscardedEventsMessageConst) else "packets"
            try:
                beg = msg.beginning_default_clock_snapshot.ns_from_origin
                end = msg.end_default_clock_snapshot.ns_from_origin
            except Exception:  # no clock snapshots: the loss could be anywhere
                beg, end = None, None
            self.loss.append((beg, end, msg.count, kind))

    def event(self, ev):
        self.events += 1
        self.hakmem_events += 1
        if self.first_ts is None:
            self.first_ts = ev.ts
        self.last_ts = ev.ts
        key = (ev.vpid, ev.vtid)
        th = self.threads.setdefault(key, {"procname": ev.procname, "ooms": 0})
        th["procname"] = ev.procname or th["procname"]
        cls = ev.get("class_idx")
        cc = self.classes[cls]
        if cc.block_size is None and ev.get("block_size") is not None:
            cc.block_size = ev.get("block_size")
        self._count(cc, ev)
        if ev.name != "oom":
            self.recent[cls].append(ev)

        if ev.name == "oom":
            self._oom(key, ev)
            return
        if cls == LARGE:
            if ev.name == "superslab_alloc_fail":
                self.large_fail[key] = ev
            return
        ref = self.open.get(key)
        seq = ev.get("seq")
        if ev.name == "refill_enter":
            ref = self.open[key] = OpenRefill(seq, begins_midway=False)
        elif ref is None or ref.seq != seq:
            # Its refill_enter is not in the trace: a snapshot that starts here, or lost events.
            ref = self.open[key] = OpenRefill(seq, begins_midway=True)
        ref.add(ev)
        if ev.name == "refill_exit" and ev.get("result") != "null":
            del self.open[key]

    def _count(self, cc, ev):
        n = ev.name
        if n == "refill_enter":
            cc.refills += 1
        elif n == "bitmap_check":
            cc.bitmap_checks[ev.get("outcome")] += 1
        elif n == "mid_simple_choice":
            cc.mid_simple[ev.get("path")] += 1
        elif n == "chunk_expand":
            cc.expansions[ev.get("outcome")] += 1
        elif n == "superslab_alloc_fail":
            cc.failures[ev.get("reason")] += 1
        elif n == "oom":
            cc.ooms += 1

    def _oom(self, key, oom):
        self.threads[key]["ooms"] += 1
        cls = oom.get("class_idx")
        if cls == LARGE:
            fail = self.large_fail.pop(key, None)
            path, midway, cut = ([fail] if fail else []), False, False
        else:
            ref = self.open.pop(key, None)
            if ref is not None and ref.seq == oom.get("seq"):
                path, midway, cut = ref.events, ref.begins_midway, ref.cut
            else:
                path, midway, cut = [], True, False
        path = path + [oom]
        start = path[0].ts
        context = [e for e in self.recent[cls]
                   if start <= e.ts <= oom.ts and (e.vpid, e.vtid) != key][-CONTEXT_SHOWN:]
        self.ooms.append({"key": key, "oom": oom, "path": path, "begins_midway": midway, "cut": cut,
                          "context": context})

    # ---- judgement ----

    def _has(self, event):
        return catalogue.full_name(event) in self.declared

    def _cause(self, rec, lost):
        path = rec["path"]
        names = [e.name for e in path]
        fails = [e for e in path if e.name == "superslab_alloc_fail"]
        if lost:
            return "incomplete", f"{lost} event(s) were lost while this path ran"
        if rec["cut"]:
            return "incomplete", f"the refill ran more than {PATH_LIMIT} events; the middle is not kept"
        large = rec["oom"].get("class_idx") == LARGE
        decisions = self._has("refill_enter") and self._has("chunk_expand") and self._has("bitmap_check")
        if rec["begins_midway"] and decisions and not large:
            return "incomplete", "the trace begins in the middle of this path (a snapshot, or lost events)"
        for b in (e for e in path if e.name == "bitmap_check"):
            bits, mask = b.get("bitmap"), b.get("full_mask")
            if bin(bits & mask).count("1") != b.get("active_slabs"):
                return "bitmap_inconsistent", (f"bitmap {bits:#010x} has {bin(bits & mask).count('1')} slabs in use "
                                               f"but active_slabs says {b.get('active_slabs')}")
            if b.get("outcome") == "full" and bits != mask:
                return "bitmap_inconsistent", f"bitmap {bits:#010x} shows free slabs, yet the claim found it full"
            if b.get("outcome") == "claimed" and bits == mask:
                return "bitmap_inconsistent", f"a slab was claimed from a full bitmap {bits:#010x}"
        if not large and decisions:
            if "chunk_expand" not in names:
                return "expansion_bypassed", "the refill returned NULL without expand_superslab_head"
            for i, e in enumerate(path):
                if e.name == "superslab_alloc_fail":
                    before = path[i - 1] if i else None
                    if before is None or before.name != "chunk_expand" or before.get("outcome") != "failed":
                        return "expansion_bypassed", ("superslab_allocate failed outside a chunk expansion "
                                                      "(called around expand_superslab_head)")
        if fails:
            last = fails[-1]
            cause = FAIL_CAUSE.get(last.get("reason"))
            if cause:
                return cause, f"{last.get('bytes')} bytes refused, errno {last.get('err')}"
        if not self._has("superslab_alloc_fail"):
            return "incomplete", "this trace was recorded without superslab_alloc_fail events"
        return "incomplete", "no refusal recorded on this path"

    def _lost_in(self, start, end):
        n = 0
        for beg, fin, count, _ in self.loss:
            if beg is None or (beg <= end and fin >= start):
                n += count if count is not None else 1
        return n

    # ---- output ----

    def finish(self):
        ooms = []
        for i, rec in enumerate(self.ooms, 1):
            oom, path = rec["oom"], rec["path"]
            start = path[0].ts
            lost = self._lost_in(start, oom.ts)
            cause, detail = self._cause(rec, lost)
            vpid, vtid = rec["key"]
            ooms.append({
                "index": i, "vpid": vpid, "vtid": vtid, "procname": oom.procname,
                "thread": thread_label(oom.procname, vpid, vtid), "time_ns": oom.ts,
                "class": oom.get("class_idx"), "block_size": oom.get("block_size"), "size": oom.get("size"),
                "seq": oom.get("seq"), "cause": cause, "cause_detail": detail,
                "begins_midway": rec["begins_midway"], "lost_events_in_window": lost,
                "path": [{"step": n, "event": e.name, "offset_ns": e.ts - start, "fields": dict(e.fields)}
                         for n, e in enumerate(path, 1)],
                "context": [{"offset_ns": e.ts - start, "vpid": e.vpid, "vtid": e.vtid,
                             "thread": thread_label(e.procname, e.vpid, e.vtid), "event": e.name,
                             "fields": dict(e.fields)} for e in rec["context"]],
                "notes": notes(rec),
            })
        lost_events = sum(c or 1 for b, e, c, k in self.loss if k == "events")
        lost_packets = sum(c or 1 for b, e, c, k in self.loss if k == "packets")
        summary = {
            "events": self.events, "hakmem_events": self.hakmem_events,
            "first_ns": self.first_ts, "last_ns": self.last_ts,
            "classes": {str(c): cc.as_dict() for c, cc in sorted(self.classes.items(), key=lambda x: x[0] or 0)},
            "threads": [{"vpid": k[0], "vtid": k[1], "procname": v["procname"],
                         "thread": thread_label(v["procname"], k[0], k[1]), "ooms": v["ooms"]}
                        for k, v in sorted(self.threads.items(), key=lambda x: (x[0][0] or 0, x[0][1] or 0))],
            "causes": dict(collections.Counter(o["cause"] for o in ooms)),
        }
        return {"schema": "hakmem-trace/1", "ooms": ooms, "summary": summary,
                "lost_events": {"discarded_events": lost_events, "discarded_packets": lost_packets,
                                "ranges": [{"begin_ns": b, "end_ns": e, "count": c, "kind": k}
                                           for b, e, c, k in self.loss]}}


def notes(rec):
    """What the other threads did that matters: who took the last free slab, who expanded."""
    out = []
    path, key = rec["path"], rec["key"]
    start = path[0].ts
    full_chunks = {e.get("chunk") for e in path if e.name == "bitmap_check" and e.get("outcome") == "full"}
    for e in rec["context"]:
        who = f"tid {e.vtid}"
        if e.name == "bitmap_check" and e.get("outcome") == "claimed" and e.get("chunk") in full_chunks \
                and e.get("active_slabs") == e.get("capacity") - 1:
            out.append(f"{who} claimed the last free slab of chunk {e.get('chunk'):#x} at +{(e.ts - start) / 1000:.1f} µs")
        elif e.name == "chunk_expand":
            out.append(f"{who} expanded the head at +{(e.ts - start) / 1000:.1f} µs: {e.get('outcome')}")
    return out


def analyse(path, analyzer=None):
    """Stream the trace(s) under path through an Analyzer; raise TraceError with one sentence when unusable."""
    import bt2
    from pathlib import Path
    p = Path(path)
    if not p.exists():
        raise TraceError(f"{path} does not exist")
    if not any(m.is_file() for m in p.rglob("metadata")):
        raise TraceError(f"no LTTng trace under {path} (no CTF metadata file)")
    try:
        a = analyzer or Analyzer()
        for msg in bt2.TraceCollectionMessageIterator(str(p)):
            a.feed(msg)
    except bt2._Error as e:
        first = str(e).strip().splitlines()
        raise TraceError(f"babeltrace2 cannot read {path}: the trace is truncated or corrupt"
                         + (f" ({first[-1].strip()[:160]})" if first else "")) from None
    except (ValueError, OSError, RecursionError) as e:
        raise TraceError(f"cannot read {path}: {e}") from None
    if a.hakmem_events == 0:
        raise TraceError(f"no hakmem events in {path}: was the program run on libhakmem-trace.so, "
                         "with the hakmem events enabled?")
    return a.finish()


class TraceError(Exception):
    """Unusable input: one sentence for the user, exit status 2."""
