"""Reads a hakmem trace once, in time order, and rebuilds the path of decisions behind every OOM.

Memory: one open refill per thread, a short window of recent events per size class (for what other threads
were doing), the reports of the first DETAIL_PER_CAUSE OOMs of each cause with their paths (the others are only
counted), and the loss ranges — not the trace.
"""

import bisect
import collections
import os

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
DETAIL_PER_CAUSE = 1000  # OOMs listed with their path and context per cause; the others are only counted
LARGE = catalogue.LARGE_CLASS
PREFIX = catalogue.PROVIDER + ":"
_BT2 = None


_NB = None
MALFORMED, PUBLIC = object(), object()


def _bt2():
    global _BT2
    if _BT2 is None:
        import bt2
        _BT2 = bt2
    return _BT2


def _native():
    """Babeltrace2's C functions as bt2 wraps them (bt2.native_bt._native_bt), or None where they are not found
    or HAKMEM_TRACE_BT2_OBJECTS=1 (then every event goes through the bt2 objects)."""
    global _NB
    if _NB is None:
        _NB = False
        if os.environ.get("HAKMEM_TRACE_BT2_OBJECTS") == "1":  # read through the bt2 objects only (a check)
            return None
        try:
            _bt2()
            from bt2 import native_bt
            nb = native_bt._native_bt
            for f in ("message_event_borrow_event_const", "event_borrow_class_const", "event_borrow_payload_field_const",
                      "event_borrow_common_context_field_const", "field_structure_borrow_member_field_by_index_const",
                      "field_integer_signed_get_value", "field_integer_unsigned_get_value", "field_string_get_value",
                      "message_event_borrow_default_clock_snapshot_const", "clock_snapshot_get_ns_from_origin"):
                getattr(nb, f)
            _NB = nb
        except Exception:  # noqa: BLE001 — any other bt2 build: the public API only
            pass
    return _NB or None


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
        self.malformed = collections.Counter()  # catalogue event -> events lacking a field (a foreign/corrupt trace)
        self.no_thread_context = 0        # hakmem events without the vtid context (paths cannot be told apart)
        self.loss_debt = {}               # stream -> discarded events a wrapped count still owes (see _discarded)
        self.stream_first = {}            # (trace, stream) -> beginning of its first packet in the trace (ns)
        self.vpid_trace = {}              # vpid -> the trace its events come from (for snapshot coverage)
        self._plans = {}                  # event class address -> how to read it (see _plan)
        self.trace_streams = collections.Counter()  # trace -> its streams (all announced before any event)
        self.trace_begun = collections.Counter()    # trace -> its streams whose first packet has been seen
        self._cover = None
        self._loss_begs = []              # timed loss ranges sorted by beginning: their beginnings ...
        self._loss_timed = []             # ... and (begin, end, count)
        self._loss_longest = 0            # the longest timed range (how far back a range may reach)
        self._loss_anywhere = [0, 0]      # count, ranges of losses without a time
        self.n_ooms = 0                   # every OOM, listed or not
        self.listed = collections.Counter()  # cause (as the path shows it) -> OOMs listed with their path
        # OOMs past DETAIL_PER_CAUSE of their cause are only counted, once their window can be judged: once the
        # trace has gone past it (a loss overlapping it has then been seen: Babeltrace2 delivers a loss at its
        # beginning) and every stream of their trace has begun (snapshot coverage). Until then they wait here.
        self.unlisted = 0
        self.unlisted_pending = collections.deque()  # (start, end, structural cause, large, trace)
        self.unlisted_causes = collections.Counter()

    # ---- input ----

    def feed(self, msg):
        bt2 = _bt2()
        if isinstance(msg, bt2._EventMessageConst):
            decoded = self._decode_native(msg) if _native() is not None else self._decode(msg)
            if decoded is None:  # not a catalogue event (another provider, or a hakmem event of another version)
                self.events += 1
                return
            if decoded is MALFORMED:  # a catalogue event lacking a catalogue field: not our catalogue's trace
                self.events += 1
                self.malformed[msg.event.name[len(PREFIX):]] += 1
                return
            short, ts, vpid, vtid, proc, fields = decoded
            if vtid is None or vpid is None:
                self.no_thread_context += 1
            if vpid not in self.vpid_trace:
                self.vpid_trace[vpid] = msg.event.stream.trace.addr
            self.event(Event(short, ts, vpid, vtid, proc, fields))
        elif isinstance(msg, bt2._PacketBeginningMessageConst):
            stream = msg.packet.stream
            key = (stream.trace.addr, stream.addr)
            if key not in self.stream_first:
                try:
                    self.stream_first[key] = msg.default_clock_snapshot.ns_from_origin
                except Exception:  # a stream class without packet beginning times
                    self.stream_first[key] = None
                self.trace_begun[key[0]] += 1
                self._cover = None
        elif isinstance(msg, bt2._StreamBeginningMessageConst):
            self.declared |= {ec.name for ec in msg.stream.cls.values()}
            self.trace_streams[msg.stream.trace.addr] += 1
        elif isinstance(msg, (bt2._DiscardedEventsMessageConst, bt2._DiscardedPacketsMessageConst)):
            self._discarded(msg, "events" if isinstance(msg, bt2._DiscardedEventsMessageConst) else "packets")

    def _decode(self, msg):
        """One event message through the bt2 API: (name, ts, vpid, vtid, procname, fields), None or MALFORMED."""
        ev = msg.event
        name = ev.name
        if not name.startswith(PREFIX):
            return None
        short = name[len(PREFIX):]
        spec = catalogue.EVENTS.get(short)
        if spec is None:
            return None
        payload = ev.payload_field
        fields = {}
        try:
            for k, kind in spec[1]:
                v = payload[k]
                if kind.startswith("enum:"):
                    labels = list(v.labels)
                    fields[k] = labels[0] if len(labels) == 1 else int(v)
                else:
                    fields[k] = int(v)
        except (KeyError, TypeError, AttributeError):  # no such field, or not an integer
            return MALFORMED
        ctx = ev.common_context_field
        try:
            vpid, vtid = int(ctx["vpid"]), int(ctx["vtid"])
        except (KeyError, TypeError):
            vpid = vtid = None
        try:
            proc = str(ctx["procname"])
        except (KeyError, TypeError):
            proc = None
        except UnicodeDecodeError:  # a damaged name
            proc = "?"
        return short, msg.default_clock_snapshot.ns_from_origin, vpid, vtid, proc, fields

    def _decode_native(self, msg):
        """The same as _decode, through Babeltrace2's C functions (bt2's own SWIG module) with a plan made once per
        event class: several times faster than building a bt2 object per field. A plan is only used after it
        decoded its class's first event exactly as _decode does; otherwise that class stays on _decode."""
        nb = _NB
        mp = msg._ptr
        evp = nb.message_event_borrow_event_const(mp)
        key = int(nb.event_borrow_class_const(evp))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(msg)
            if plan not in (None, MALFORMED, PUBLIC) and self._run_plan(nb, plan, mp, evp) != self._decode(msg):
                plan = self._plans[key] = PUBLIC
        if plan is PUBLIC:
            return self._decode(msg)
        if plan is None or plan is MALFORMED:
            return plan
        return self._run_plan(nb, plan, mp, evp)

    def _run_plan(self, nb, plan, mp, evp):
        short, members, ctx = plan
        borrow = nb.field_structure_borrow_member_field_by_index_const
        pf = nb.event_borrow_payload_field_const(evp)
        fields = {}
        for name, index, signed, labels in members:
            f = borrow(pf, index)
            v = nb.field_integer_signed_get_value(f) if signed else nb.field_integer_unsigned_get_value(f)
            fields[name] = labels.get(v, v) if labels is not None else v
        vpid = vtid = proc = None
        if ctx is not None:
            cf = nb.event_borrow_common_context_field_const(evp)
            vpid_i, vtid_i, proc_i = ctx
            if vpid_i is not None and vtid_i is not None:
                vpid = nb.field_integer_signed_get_value(borrow(cf, vpid_i))
                vtid = nb.field_integer_signed_get_value(borrow(cf, vtid_i))
            if proc_i is not None:
                try:
                    proc = nb.field_string_get_value(borrow(cf, proc_i))
                except UnicodeDecodeError:
                    proc = "?"
        status, ts = nb.clock_snapshot_get_ns_from_origin(nb.message_event_borrow_default_clock_snapshot_const(mp))
        if status != 0:
            raise OverflowError("a clock snapshot does not fit in nanoseconds from origin")
        return short, ts, vpid, vtid, proc, fields

    def _plan(self, msg):
        """How to read one event class: (name, [(field, index, signed, enum labels)], context indexes), or None
        (not a catalogue event), MALFORMED (a catalogue field missing or not an integer), PUBLIC (use _decode)."""
        bt2 = _bt2()
        try:
            ev = msg.event
            name = ev.name
            if not name.startswith(PREFIX) or catalogue.EVENTS.get(name[len(PREFIX):]) is None:
                return None
            short = name[len(PREFIX):]
            pfc = ev.cls.payload_field_class
            names = list(pfc.keys()) if pfc is not None else []
            members = []
            for field, kind in catalogue.EVENTS[short][1]:
                if field not in names:
                    return MALFORMED
                fc = pfc[field].field_class
                if not isinstance(fc, bt2._IntegerFieldClassConst):
                    return MALFORMED
                signed = isinstance(fc, bt2._SignedIntegerFieldClassConst)
                labels = None
                if isinstance(fc, bt2._EnumerationFieldClassConst):
                    by_value = collections.defaultdict(list)
                    for label, mapping in fc.items():
                        for r in mapping.ranges:
                            if r.upper - r.lower > 4096:
                                return PUBLIC
                            for v in range(r.lower, r.upper + 1):
                                by_value[v].append(label)
                    labels = {v: ls[0] for v, ls in by_value.items() if len(ls) == 1}
                members.append((field, names.index(field), signed, labels))
            ctx = None
            cfield = ev.common_context_field
            if cfield is not None:
                cnames = list(cfield.cls.keys())

                def index(field, want):
                    if field not in cnames or not isinstance(cfield.cls[field].field_class, want):
                        return None
                    return cnames.index(field)
                ctx = (index("vpid", bt2._SignedIntegerFieldClassConst),
                       index("vtid", bt2._SignedIntegerFieldClassConst),
                       index("procname", bt2._StringFieldClassConst))
                if None in ctx[:2] and ("vpid" in cnames or "vtid" in cnames):
                    return PUBLIC  # a context of unusual types: let the bt2 API read it
            return short, members, ctx
        except Exception:  # noqa: BLE001 — anything unexpected in the bindings: read this class the slow way
            return PUBLIC

    def _discarded(self, msg, kind):
        try:
            beg = msg.beginning_default_clock_snapshot.ns_from_origin
            end = msg.end_default_clock_snapshot.ns_from_origin
            if end < beg:
                beg, end = end, beg
        except Exception:  # no clock snapshots: the loss could be anywhere
            beg, end = None, None
        count = msg.count
        if kind == "events" and count is not None:
            # Babeltrace2 gives the difference of the tracer's per-stream counter between two packets, as an
            # unsigned 64-bit number. lttng-ust (2.13.5, discard mode, small sub-buffers) now and then closes a
            # packet that says 0 events discarded: the difference to it wraps around to 2**64 - N, and the next
            # packet's difference counts those N again. Carry the N over to the stream's next loss instead, and
            # let that loss cover both packets' time.
            stream = msg.stream.addr
            debt = self.loss_debt.get(stream)
            if count >= 1 << 63:
                owed = (1 << 64) - count
                if debt is None:
                    self.loss_debt[stream] = (owed, beg)
                else:
                    self.loss_debt[stream] = (debt[0] + owed, debt[1])
                return
            if debt is not None:
                owed, first_beg = debt
                take = min(owed, count)
                count -= take
                if owed > take:
                    self.loss_debt[stream] = (owed - take, first_beg)
                else:
                    del self.loss_debt[stream]
                if beg is not None and first_beg is not None:
                    beg = min(beg, first_beg)
        self.loss.append((beg, end, count, kind))
        n = 1 if count is None else count
        if beg is None:
            self._loss_anywhere[0] += n
            self._loss_anywhere[1] += 1
        else:
            i = bisect.bisect_right(self._loss_begs, beg)
            self._loss_begs.insert(i, beg)
            self._loss_timed.insert(i, (beg, end, n))
            self._loss_longest = max(self._loss_longest, end - beg)

    def event(self, ev):
        if self.unlisted_pending and ev.ts > self.unlisted_pending[0][1]:
            self._settle(ev.ts)
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
        self.n_ooms += 1
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
            if not self._has("refill_enter"):
                midway = False  # a failures-only build: no path has a recorded beginning to miss
        path = path + [oom]
        start = path[0].ts
        rec = {"key": key, "oom": oom, "path": path, "begins_midway": midway, "cut": cut,
               "trace": self.vpid_trace.get(key[0]), "number": self.n_ooms}
        cause, detail = self._structural_cause(rec)
        trace = rec["trace"]
        if self.listed[cause] >= DETAIL_PER_CAUSE:
            self.unlisted += 1
            self.unlisted_pending.append((start, oom.ts, cause, cls == LARGE, trace))
            return
        self.listed[cause] += 1
        # The newest CONTEXT_SHOWN events of other threads since the path began (the window is in time order).
        context = []
        for e in reversed(self.recent[cls]):
            if e.ts < start or len(context) == CONTEXT_SHOWN:
                break
            if (e.vpid, e.vtid) != key and e.ts <= oom.ts:
                context.append(e)
        context.reverse()
        rec["context"] = context
        rec["structural"] = (cause, detail)
        self.ooms.append(rec)

    # ---- judgement ----

    def _has(self, event):
        return catalogue.full_name(event) in self.declared

    def _structural_cause(self, rec):
        """The cause the path itself shows, before loss and snapshot coverage (known only later) are weighed."""
        path = rec["path"]
        names = [e.name for e in path]
        fails = [e for e in path if e.name == "superslab_alloc_fail"]
        if rec["cut"]:
            return "incomplete", f"the refill ran more than {PATH_LIMIT} events; the middle is not kept"
        large = rec["oom"].get("class_idx") == LARGE
        decisions = self._has("refill_enter") and self._has("chunk_expand") and self._has("bitmap_check")
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

    def _cause(self, rec, lost):
        """The final cause: what the path shows, unless events were lost in its window or the snapshot's coverage
        begins inside it."""
        if lost:
            return "incomplete", f"{lost} event(s) were lost while this path ran"
        if rec.get("coverage_detail"):
            return "incomplete", rec["coverage_detail"]
        return rec.get("structural") or self._structural_cause(rec)

    def _lost_in(self, start, end):
        """(events or packets lost, loss ranges) overlapping [start, end]: the ranges that began by end and had
        not ended before start (only those beginning within the longest range's length before start can)."""
        n, ranges = self._loss_anywhere
        i = bisect.bisect_right(self._loss_begs, end)
        floor = start - self._loss_longest
        while i > 0 and self._loss_begs[i - 1] >= floor:
            i -= 1
            b, e, c = self._loss_timed[i]
            if e >= start:
                n += c
                ranges += 1
        return (max(n, 1) if ranges else 0), ranges

    def _settle(self, now, final=False):
        """Count the waiting unlisted OOMs whose window the trace has gone past (all of them when final)."""
        cover = self._coverage()
        pending = self.unlisted_pending
        while pending and (final or pending[0][1] < now):
            start, end, cause, large, trace = pending[0]
            if not final and trace is not None and self.trace_begun[trace] < self.trace_streams[trace]:
                break  # a stream of this (snapshot) trace has not begun yet: its coverage is not known
            pending.popleft()
            if self._lost_in(start, end)[0]:
                cause = "incomplete"
            elif not large and cover.get(trace) is not None and start < cover[trace]:
                cause = "incomplete"
            self.unlisted_causes[cause] += 1

    def _coverage(self):
        """trace -> the time from which every stream (CPU buffer) of that trace holds its events. A snapshot keeps
        only the newest packets of each stream, so each begins at its own time and, before the latest of them,
        events that went to the other streams are missing. In a normal recording every stream begins before the
        program's first event, so this changes nothing."""
        if self._cover is None:
            cover = {}
            for (trace, _), first in self.stream_first.items():
                if first is not None and (trace not in cover or first > cover[trace]):
                    cover[trace] = first
            self._cover = cover
        return self._cover

    # ---- output ----

    def finish(self):
        ooms = []
        causes = collections.Counter()
        cover = self._coverage()
        for rec in self.ooms:
            oom, path = rec["oom"], rec["path"]
            start = path[0].ts
            lost, _ = self._lost_in(start, oom.ts)
            begins = cover.get(rec.get("trace"))
            if begins is not None and start < begins and oom.get("class_idx") != LARGE:
                rec["begins_midway"] = True
                rec["coverage_detail"] = ("the trace begins in the middle of this path: a CPU buffer of this "
                                          f"snapshot begins {(begins - start) / 1000:.1f} µs after the path's first "
                                          "event, so the events it held before are missing")
            cause, detail = self._cause(rec, lost)
            causes[cause] += 1
            vpid, vtid = rec["key"]
            ooms.append({
                "index": rec["number"], "vpid": vpid, "vtid": vtid, "procname": oom.procname,
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
        self._settle(None, final=True)
        causes.update(self.unlisted_causes)
        lost_events = sum(1 if c is None else c for b, e, c, k in self.loss if k == "events")
        lost_packets = sum(1 if c is None else c for b, e, c, k in self.loss if k == "packets")
        summary = {
            "events": self.events, "hakmem_events": self.hakmem_events,
            "first_ns": self.first_ts, "last_ns": self.last_ts,
            "classes": {str(c): cc.as_dict() for c, cc in sorted(self.classes.items(), key=lambda x: x[0] or 0)},
            "threads": [{"vpid": k[0], "vtid": k[1], "procname": v["procname"],
                         "thread": thread_label(v["procname"], k[0], k[1]), "ooms": v["ooms"]}
                        for k, v in sorted(self.threads.items(), key=lambda x: (x[0][0] or 0, x[0][1] or 0))],
            "causes": {c: causes[c] for c in CAUSES if causes[c]},
            "ooms_total": self.n_ooms,
            "ooms_unlisted": self.unlisted,
        }
        return {"schema": "hakmem-trace/1", "ooms": ooms, "summary": summary,
                "lost_events": {"discarded_events": lost_events, "discarded_packets": lost_packets,
                                "ranges": [{"begin_ns": b, "end_ns": e, "count": c, "kind": k}
                                           for b, e, c, k in self.loss]}}


def notes(rec):
    """What the other threads did that matters: who took the last free slab, who expanded."""
    out = []
    path = rec["path"]
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
    if path is None or not str(path).strip():
        raise TraceError("no trace folder given (the path is empty)")
    p = Path(path)
    if not p.exists():
        raise TraceError(f"{path} does not exist")
    if not p.is_dir():
        raise TraceError(f"{path} is not a folder: give the folder `hakmem-trace record` wrote (or a snapshot-* "
                         "folder in it)")
    dirs = trace_dirs(p, path)
    # The CTF source named, not auto-discovered: Babeltrace2 2.0.4's auto-discovery aborts the whole process (a
    # library precondition, "API function called while current thread has an error") when a metadata file does
    # not parse, where the source itself returns an error.
    source = bt2.ComponentSpec.from_named_plugin_and_component_class("ctf", "fs", {"inputs": dirs})
    a = analyzer or Analyzer()
    try:
        for msg in bt2.TraceCollectionMessageIterator(source):
            a.feed(msg)
    except bt2._Error as e:
        reason = _bt2_reason(e)
        raise TraceError(f"babeltrace2 cannot read {path}: the trace is truncated or corrupt"
                         + (f" ({reason})" if reason else "")) from None
    except (ValueError, OSError, RecursionError, MemoryError) as e:
        raise TraceError(f"cannot read {path}: {_one_line(e)}") from None
    except Exception as e:  # noqa: BLE001 — a damaged trace must still end in one sentence, never a traceback
        raise TraceError(f"cannot analyse {path}: {type(e).__name__}: {_one_line(e)}") from None
    if a.malformed:
        event, n = a.malformed.most_common(1)[0]
        raise TraceError(f"{path} does not match the hakmem event catalogue ({n} hakmem:{event} event(s) lack a "
                         "catalogue field): a corrupt trace, or one from another hakmem version")
    if a.hakmem_events == 0:
        raise TraceError(f"no hakmem events in {path}: was the program run on libhakmem-trace.so, "
                         "with the hakmem events enabled?")
    if a.no_thread_context:
        raise TraceError(f"{a.no_thread_context} hakmem event(s) in {path} lack the vpid/vtid context, without which "
                         "one thread's refill cannot be told from another's: record with `hakmem-trace record`, or "
                         "add `lttng add-context -u -t vpid -t vtid -t procname` to the session")
    return a.finish()


CTF_METADATA_MAGIC = 0x75D11D57
METADATA_HEADER = 37  # magic, uuid, checksum, content_size, packet_size, 3 schemes, major, minor


def trace_dirs(p, path):
    """The folders under p holding a CTF trace (a `metadata` file), each checked first: Babeltrace2 2.0.4 never
    returns from a metadata file that ends inside a packet (a trace copied while written, or cut short)."""
    dirs, foreign = [], []
    try:
        found = sorted(m for m in p.rglob("metadata") if m.is_file())
    except OSError as e:
        raise TraceError(f"cannot search {path} for a trace: {_one_line(e)}") from None
    for m in found:
        try:
            data = m.read_bytes()
        except OSError as e:
            raise TraceError(f"cannot read {m}: {_one_line(e.strerror or e)}") from None
        problem = metadata_problem(data)
        if problem == "foreign":
            foreign.append(m)
            continue
        if problem:
            raise TraceError(f"the trace in {m.parent} is unusable: its metadata {problem}")
        dirs.append(str(m.parent))
    if not dirs:
        raise TraceError(f"no LTTng trace under {path} (no CTF metadata file"
                         + (f"; {foreign[0]} is not CTF metadata)" if foreign else ")"))
    return dirs


def metadata_problem(data):
    """None for well-formed CTF metadata (text, or packets each whole), "foreign" for a file that is not CTF
    metadata at all, else what is wrong."""
    if not data:
        return "file is empty"
    if data.startswith(b"/* CTF"):
        return None
    head = data[:4]
    if head == CTF_METADATA_MAGIC.to_bytes(4, "little"):
        order = "little"
    elif head == CTF_METADATA_MAGIC.to_bytes(4, "big"):
        order = "big"
    elif len(data) < 4 and CTF_METADATA_MAGIC.to_bytes(4, "little").startswith(data):
        return "is cut short in its first packet header"
    else:
        return "foreign"
    off, n = 0, 0
    while off < len(data):
        n += 1
        if off + METADATA_HEADER > len(data):
            return f"is cut short in the header of packet {n}"
        if int.from_bytes(data[off:off + 4], order) != CTF_METADATA_MAGIC:
            return f"packet {n} has no metadata magic number (corrupt)"
        content = int.from_bytes(data[off + 24:off + 28], order)
        size = int.from_bytes(data[off + 28:off + 32], order)
        if size % 8 or size < METADATA_HEADER * 8 or not METADATA_HEADER * 8 <= content <= size:
            return f"packet {n} has impossible sizes (content {content} bits, packet {size} bits: corrupt)"
        if any(data[off + 32:off + 35]):
            return f"packet {n} claims compression, encryption or a checksum (corrupt)"
        if off + size // 8 > len(data):
            return f"is cut short in packet {n} ({len(data) - off} of its {size // 8} bytes present)"
        off += size // 8
    return None


def _bt2_reason(e):
    """The most telling cause of a Babeltrace2 error: the innermost one naming a file, else the innermost."""
    try:
        causes = [_one_line(c.message) for c in e]
    except Exception:  # noqa: BLE001 — only the text is needed
        causes = []
    if not causes:
        causes = [_one_line(line) for line in str(e).splitlines() if line.strip()][-1:]
    named = [c for c in causes if "`" in c]
    reason = (named or causes or [""])[0]
    return reason if len(reason) <= 240 else reason[:237] + "..."


def _one_line(e):
    return " ".join(str(e).split())


class TraceError(Exception):
    """Unusable input: one sentence for the user, exit status 2."""
