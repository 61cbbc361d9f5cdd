"""The streaming OOM-path analysis: reads a hakmem trace once, in time order, and rebuilds the path of decisions
behind every OOM.

Memory: one open refill per thread, a short window of recent events per size class (for what other threads
were doing), per class and chunk the last events that can explain another thread's decision (the expansion that
made the chunk current, the claim that took its last free slab, its last claims — see Explainers), the reports of
the first DETAIL_PER_CAUSE OOMs of each cause with their paths (the others are only counted), and the loss
ranges — not the trace. Reading the trace is in trace_input, losses and snapshot coverage
in losses, the causes in judgement.
"""

import collections

from . import catalogue, judgement, losses, trace_input
from .records import ClassCounters, Event, Numbers, OpenRefill, thread_label

CONTEXT_WINDOW = 512  # recent events kept per class for the "meanwhile" context
CONTEXT_SHOWN = 40    # context events reported per OOM
DETAIL_PER_CAUSE = 1000  # OOMs listed with their path and context per cause; the others are only counted
CHUNKS_KEPT = 256     # chunks per process and class whose explaining events are kept (the least recently seen go)
CLAIMS_KEPT = 8       # claims kept per chunk, by the bitmap they found (a lost claim names the one that won)
LARGE = catalogue.LARGE_CLASS

# What another thread's event explains in a path: the decision (event, outcome), the mark of its chunk that holds
# the explaining event, and the reason the report gives.
BECAME_CURRENT, FILLED, CLAIMED = "became_current", "filled", "claimed"
EXPLAINED = {("chunk_expand", "lost_race"): BECAME_CURRENT, ("bitmap_check", "full"): FILLED,
             ("bitmap_check", "lost_race"): CLAIMED}


def reason(kind, chunk):
    if kind == BECAME_CURRENT:
        return "won the expansion race this path lost"
    if kind == FILLED:
        return f"claimed the last free slab of chunk {chunk:#x}"
    return f"claimed a slab of chunk {chunk:#x} first: this path's claim lost the race"


class ChunkMarks:
    """A chunk's events that can explain another thread's decision: the last expansion that made it current (new
    or reused), the last claim that took its last free slab, and its last CLAIMS_KEPT claims by the bitmap each
    found. A new chunk at the same address starts afresh."""
    __slots__ = ("became_current", "filled", "claims")

    def __init__(self):
        self.became_current = self.filled = None
        self.claims = collections.OrderedDict()  # bitmap found -> the claim

    def find(self, kind, bitmap):
        if kind == BECAME_CURRENT:
            return self.became_current
        if kind == FILLED:
            return self.filled
        return self.claims.get(bitmap)


class Explainers:
    """For every decision of an open refill that another thread's event explains — an expansion that lost its
    race (the other thread's expansion that made the chunk it found current), a claim that found its chunk full
    (the claim that took the last free slab), a claim that lost its race (the claim that found the same bitmap
    and won) — the explaining event, however far back: looked up in the chunk's marks when the decision is seen,
    or, when its event is not in the trace yet (emitted after the decision's, the two threads racing to the
    tracer), the first matching one that comes while the refill is open. Memory: CHUNKS_KEPT chunks per process
    and class, and one slot per such decision of an open refill; per event O(1)."""

    def __init__(self):
        self.marks = collections.defaultdict(collections.OrderedDict)  # (vpid, class) -> chunk -> ChunkMarks
        self.open = {}      # (vpid, vtid) -> (its OpenRefill, [slot]); slot = [decision, kind, chunk, bitmap, found]
        self.waiting = collections.defaultdict(dict)  # (vpid, class, chunk, kind) -> {id(slot): (key, slot)}

    def _chunk(self, vpid, cls, chunk, create):
        od = self.marks[(vpid, cls)]
        m = od.get(chunk)
        if m is None:
            if not create:
                return None
            m = od[chunk] = ChunkMarks()
            if len(od) > CHUNKS_KEPT:
                od.popitem(last=False)
        else:
            od.move_to_end(chunk)
        return m

    def event(self, key, ref, ev, cls):
        """ev of thread key, in refill ref (None outside one), class cls: marks its chunk, fills the slots that
        waited for it, and gives its decision a slot when another thread's event explains it."""
        if ev.name not in ("bitmap_check", "chunk_expand"):
            return
        chunk, outcome = ev.get("chunk"), ev.get("outcome")
        if not isinstance(chunk, int) or not chunk:
            return  # no chunk (the class's first refill), or a damaged field
        vpid = key[0]
        mark = None
        if ev.name == "chunk_expand" and outcome in ("new_chunk", "reused_chained_chunk"):
            m = self._chunk(vpid, cls, chunk, True)
            if outcome == "new_chunk":
                m.filled = None
                m.claims.clear()
            m.became_current = ev
            mark = BECAME_CURRENT
        elif ev.name == "bitmap_check" and outcome == "claimed":
            m = self._chunk(vpid, cls, chunk, True)
            m.claims[ev.get("bitmap")] = ev
            m.claims.move_to_end(ev.get("bitmap"))
            if len(m.claims) > CLAIMS_KEPT:
                m.claims.popitem(last=False)
            self._fill(key, ev, (vpid, cls, chunk, CLAIMED))
            capacity = ev.get("capacity")
            if isinstance(capacity, int) and ev.get("active_slabs") == capacity - 1:
                m.filled = ev
                mark = FILLED
        if mark is not None:
            self._fill(key, ev, (vpid, cls, chunk, mark))
        kind = EXPLAINED.get((ev.name, outcome))
        if kind is None or ref is None or not ref.events or ref.events[-1] is not ev:
            return  # no decision another thread explains, or one past the path's limit (not in the path)
        entry = self.open.get(key)
        if entry is None or entry[0] is not ref:
            self.forget(key)
            entry = self.open[key] = (ref, [])
        slot = [ev, kind, chunk, ev.get("bitmap"), None]
        entry[1].append(slot)
        m = self._chunk(vpid, cls, chunk, False)
        found = m.find(kind, slot[3]) if m is not None else None
        if found is not None and (found.vpid, found.vtid) != key:
            slot[4] = found
        elif found is None:
            self.waiting[(vpid, cls, chunk, kind)][id(slot)] = (key, slot)

    def _fill(self, key, ev, where):
        """ev (of thread key) may be what slots waiting at where wait for: another thread's, and for a lost claim
        one that found the same bitmap."""
        waiting = self.waiting.get(where)
        if not waiting:
            return
        for sid, (k, slot) in list(waiting.items()):
            if k == key or (slot[1] == CLAIMED and slot[3] != ev.get("bitmap")):
                continue
            slot[4] = ev
            del waiting[sid]
        if not waiting:
            del self.waiting[where]

    def forget(self, key):
        """Thread key's refill ended (or another began): its slots wait no more."""
        entry = self.open.pop(key, None)
        if entry is None:
            return
        for slot in entry[1]:
            where = (key[0], slot[0].get("class_idx"), slot[2], slot[1])
            w = self.waiting.get(where)
            if w is not None and w.pop(id(slot), None) is not None and not w:
                del self.waiting[where]

    def take(self, key, ref):
        """The explaining events of ref's decisions, as (decision, kind, chunk, event), ref's slots forgotten."""
        entry = self.open.get(key)
        slots = entry[1] if entry is not None and entry[0] is ref else []
        self.forget(key)
        return [(s[0], s[1], s[2], s[4]) for s in slots if s[4] is not None]


class Analyzer:
    """Feed it bt2 messages (or Events) in time order; finish() returns the report."""

    def __init__(self):
        self.declared = set()             # event names the trace declares (what the recorded build compiled in)
        self.open = {}                    # (vpid, vtid) -> OpenRefill
        self.large_fail = {}              # (vpid, vtid) -> the large path's refusal and retries, awaiting oom
        self.memory_pending = {}          # (vpid, vtid) -> the census (oom_memory + oom_class_memory) awaiting oom
        self.last_memory = None           # the census of the last OOM, for the summary
        self.recent = collections.defaultdict(lambda: collections.deque(maxlen=CONTEXT_WINDOW))
        self.explainers = Explainers()
        self.ooms = []
        self.losses = losses.Losses()
        self.coverage = losses.Coverage()
        self.thread_streams = losses.ThreadStreams()  # thread -> the streams its latest events came from
        self.classes = collections.defaultdict(ClassCounters)
        self.threads = {}                 # (vpid, vtid) -> {"procname", "ooms"}
        self.events = 0
        self.hakmem_events = 0
        self.first_ts = self.last_ts = None
        self.malformed = collections.Counter()  # catalogue event -> events lacking a field (a foreign/corrupt trace)
        self.no_thread_context = 0        # hakmem events without the vtid context (paths cannot be told apart)
        self.vpid_trace = {}              # vpid -> the trace its events come from (for snapshot coverage)
        self.oom_numbers = collections.defaultdict(Numbers)  # vpid -> the process's OOM numbers in the trace
        self.exits = {}                   # vpid -> its exit totals (exit_totals, exit_class_totals)
        self.proc_refills = collections.Counter()  # (vpid, class) -> refill_enter events in the trace
        self.procnames = {}               # vpid -> procname
        self._last_of_thread = {}         # (vpid, vtid) -> (ts, [(name, fields)]) of its latest events
        self.duplicates = 0               # events read twice (overlapping snapshots), fed once
        self._reader = trace_input.EventReader()
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
        bt2 = trace_input.load_bt2()
        if isinstance(msg, bt2._EventMessageConst):
            decoded = self._reader.decode(msg)
            if decoded is None:  # not a catalogue event (another provider, or a hakmem event of another version)
                self.events += 1
                return
            if decoded is trace_input.MALFORMED:  # a catalogue event lacking a catalogue field: not our catalogue's
                self.events += 1
                self.malformed[msg.event.name[len(trace_input.PREFIX):]] += 1
                return
            short, ts, vpid, vtid, proc, fields = decoded
            if vtid is None or vpid is None:
                self.no_thread_context += 1
            if vpid not in self.vpid_trace:
                self.vpid_trace[vpid] = msg.event.stream.trace.addr
            if self._again(vpid, vtid, ts, short, fields):
                return
            self.thread_streams.saw((vpid, vtid), ts, self._reader.stream(msg))
            self.event(Event(short, ts, vpid, vtid, proc, fields))
        elif isinstance(msg, bt2._PacketBeginningMessageConst):
            self.coverage.packet_began(msg)
        elif isinstance(msg, bt2._PacketEndMessageConst):
            self.coverage.packet_ended(msg)
        elif isinstance(msg, bt2._StreamBeginningMessageConst):
            self.declared |= {ec.name for ec in msg.stream.cls.values()}
            self.coverage.stream_began(msg)
            self.losses.stream_began(msg)
        elif isinstance(msg, (bt2._DiscardedEventsMessageConst, bt2._DiscardedPacketsMessageConst)):
            self.losses.discarded(msg, "events" if isinstance(msg, bt2._DiscardedEventsMessageConst) else "packets")

    def _again(self, vpid, vtid, ts, name, fields):
        """Whether this event was fed already: snapshots of one run overlap (each holds the newest packets of every
        buffer when its cue came), and read together the same event comes once from each, one right after the
        other for its thread (the muxer orders by time; one thread's events never share a timestamp)."""
        if vtid is None:
            return False
        key = (vpid, vtid)
        last = self._last_of_thread.get(key)
        if last is not None and last[0] == ts:
            if (name, fields) in last[1]:
                self.events += 1
                self.duplicates += 1
                return True
            last[1].append((name, fields))
        else:
            self._last_of_thread[key] = (ts, [(name, fields)])
        return False

    def event(self, ev):
        if self.unlisted_pending and ev.ts > self.unlisted_pending[0][1]:
            self._settle(ev.ts)
        self.events += 1
        self.hakmem_events += 1
        if self.first_ts is None:
            self.first_ts = ev.ts
        self.last_ts = ev.ts
        key = (ev.vpid, ev.vtid)
        if ev.name in ("oom_memory", "oom_class_memory"):
            self._census(key, ev)
            return
        if ev.procname:
            self.procnames[ev.vpid] = ev.procname
        if ev.name in ("exit_totals", "exit_class_totals"):
            self._exit_totals(ev)
            return
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
        seq = ev.get("seq")
        if cls == LARGE or (seq == 0 and ev.name == "superslab_alloc_fail"):
            # Paths with no refill: a large block's mapping, or (seq 0) the pages of the thread's own heap. A
            # refusal begins one; the reclaim-and-retries after it follow (a retry that mapped the block leaves
            # a path that the next refusal replaces).
            if ev.name == "superslab_alloc_fail":
                self.large_fail[key] = [ev]
            elif ev.name == "reclaim_retry" and key in self.large_fail:
                self.large_fail[key].append(ev)
            return
        ref = self.open.get(key)
        if ev.name == "refill_enter":
            ref = self.open[key] = OpenRefill(seq, begins_midway=False)
        elif ref is None or ref.seq != seq:
            # Its refill_enter is not in the trace: a snapshot that starts here, or lost events.
            ref = self.open[key] = OpenRefill(seq, begins_midway=True)
        ref.add(ev)
        self.explainers.event(key, ref, ev, cls)
        if ev.name == "refill_exit" and ev.get("result") != "null":
            del self.open[key]
            self.explainers.forget(key)

    def _census(self, key, ev):
        """Where the memory was, emitted just before the thread's oom (census.c): kept until that oom."""
        if ev.name == "oom_memory":
            self.memory_pending[key] = {
                "seq": ev.get("seq"), "cap": ev.get("cap"), "committed": ev.get("committed"),
                "large": ev.get("large"), "tracer": ev.get("tracer"), "classes_expected": ev.get("classes"),
                "classes": []}
            return
        m = self.memory_pending.get(key)
        if m is not None and m["seq"] == ev.get("seq"):
            m["classes"].append({"class": ev.get("class_idx"), "block_size": ev.get("block_size"),
                                 "committed": ev.get("committed"), "live": ev.get("live"), "free": ev.get("free"),
                                 "holder_vtid": ev.get("holder_tid"), "holder_free": ev.get("holder_free")})

    def _exit_totals(self, ev):
        """What the process counted itself, at its exit (oom_report.c): how many OOMs and refills the trace
        should hold."""
        if ev.name == "exit_totals":
            self.exits[ev.vpid] = {"ooms": ev.get("ooms"), "refills": ev.get("refills"),
                                   "classes_expected": ev.get("classes"), "classes": {}}
            return
        e = self.exits.get(ev.vpid)
        if e is not None:
            e["classes"][ev.get("class_idx")] = {"refills": ev.get("refills"), "ooms": ev.get("ooms"),
                                                 "block_size": ev.get("block_size")}

    def _count(self, cc, ev):
        n = ev.name
        if n == "refill_enter":
            cc.refills += 1
            self.proc_refills[(ev.vpid, ev.get("class_idx"))] += 1
        elif n == "slab_adopt":
            cc.adoptions[ev.get("outcome")] += 1
        elif n == "reclaim_retry":
            cc.reclaims[ev.get("outcome")] += 1
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
        if oom.get("oom_no"):
            self.oom_numbers[key[0]].add(oom.get("oom_no"))
        self.threads[key]["ooms"] += 1
        memory = self.memory_pending.pop(key, None)
        if memory is not None and memory["seq"] == oom.get("seq"):
            memory["complete"] = len(memory["classes"]) == memory.pop("classes_expected")
            del memory["seq"]
            # The rest of what the program commits: thread heaps' own pages (and releases the OS refused).
            memory["other"] = max(0, (memory["committed"] or 0) - (memory["large"] or 0)
                                  - sum(c["committed"] or 0 for c in memory["classes"]))
            self.last_memory = memory
        else:
            memory = None
        self.n_ooms += 1
        cls = oom.get("class_idx")
        explaining = []
        if cls == LARGE or oom.get("seq") == 0:
            path, midway, cut = self.large_fail.pop(key, []), False, False
        else:
            ref = self.open.pop(key, None)
            explaining = self.explainers.take(key, ref)
            if ref is not None and ref.seq == oom.get("seq"):
                path, midway, cut = ref.events, ref.begins_midway, ref.cut
            else:
                path, midway, cut, explaining = [], True, False, []
            if not judgement.declares(self.declared, "refill_enter"):
                midway = False  # a failures-only build: no path has a recorded beginning to miss
        path = path + [oom]
        start = path[0].ts
        rec = {"key": key, "oom": oom, "path": path, "begins_midway": midway, "cut": cut,
               "trace": self.vpid_trace.get(key[0]), "number": self.n_ooms, "memory": memory,
               "streams": self.thread_streams.during(key, start, oom.ts)}
        cause, detail = judgement.structural_cause(rec, self.declared)
        trace = rec["trace"]
        if self.listed[cause] >= DETAIL_PER_CAUSE:
            self.unlisted += 1
            self.unlisted_pending.append((start, oom.ts, cause, cls == LARGE, trace, rec["streams"]))
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
        rec["explaining"] = self._explaining(path, explaining)
        rec["structural"] = (cause, detail)
        self.ooms.append(rec)

    @staticmethod
    def _explaining(path, found):
        """The explaining events of a path's decisions, each once per reason, in time order: [(event, kind,
        chunk, [the steps it explains])]."""
        step = {id(e): n for n, e in enumerate(path, 1)}
        out = {}
        for decision, kind, chunk, ev in found:
            entry = out.setdefault((id(ev), kind), (ev, kind, chunk, []))
            entry[3].append(step[id(decision)])
        return sorted(out.values(), key=lambda x: (x[0].ts, x[3][0]))

    def _settle(self, now, final=False):
        """Count the waiting unlisted OOMs whose window the trace has gone past (all of them when final)."""
        pending = self.unlisted_pending
        while pending and (final or pending[0][1] < now):
            start, end, cause, large, trace, streams = pending[0]
            if not final and trace is not None and not self.coverage.all_begun(trace):
                break  # a stream of this (snapshot) trace has not begun yet: its coverage is not known
            pending.popleft()
            if self.losses.judged(start, end, streams, cause)[0]:
                cause = "incomplete"
            elif not large and self.coverage.uncovered(trace, start, end) is not None:
                cause = "incomplete"
            self.unlisted_causes[cause] += 1

    # ---- output ----

    def finish(self):
        ooms = []
        causes = collections.Counter()
        for rec in self.ooms:
            oom, path = rec["oom"], rec["path"]
            start = path[0].ts
            lost, _ = self.losses.judged(start, oom.ts, rec["streams"], rec["structural"][0])
            begins = self.coverage.uncovered(rec.get("trace"), start, oom.ts)
            if begins is not None and oom.get("class_idx") != LARGE:
                rec["begins_midway"] = True
                rec["coverage_detail"] = ("the trace begins in the middle of this path: a CPU buffer of this "
                                          f"snapshot begins {(begins - start) / 1000:.1f} µs after the path's first "
                                          "event, so the events it held before are missing")
            cause, detail = judgement.cause(rec, lost, self.declared)
            causes[cause] += 1
            vpid, vtid = rec["key"]
            ooms.append({
                "index": rec["number"], "vpid": vpid, "vtid": vtid, "procname": oom.procname,
                "thread": thread_label(oom.procname, vpid, vtid), "time_ns": oom.ts,
                "class": oom.get("class_idx"), "block_size": oom.get("block_size"), "size": oom.get("size"),
                "seq": oom.get("seq"), "oom_no": oom.get("oom_no"), "call": judgement.call_text(oom.fields),
                "cause": cause, "cause_detail": detail,
                "begins_midway": rec["begins_midway"], "lost_events_in_window": lost,
                "path": [{"step": n, "event": e.name, "offset_ns": e.ts - start, "fields": dict(e.fields)}
                         for n, e in enumerate(path, 1)],
                "context": [{"offset_ns": e.ts - start, "vpid": e.vpid, "vtid": e.vtid,
                             "thread": thread_label(e.procname, e.vpid, e.vtid), "event": e.name,
                             "fields": dict(e.fields)} for e in rec["context"]],
                "explaining": [{"steps": steps, "reason": reason(kind, chunk), "offset_ns": e.ts - start,
                                "vpid": e.vpid, "vtid": e.vtid, "thread": thread_label(e.procname, e.vpid, e.vtid),
                                "event": e.name, "fields": dict(e.fields)}
                               for e, kind, chunk, steps in rec["explaining"]],
                "notes": judgement.notes(rec),
                "memory": rec["memory"],
            })
        self._settle(None, final=True)
        causes.update(self.unlisted_causes)
        summary = {
            "events": self.events, "hakmem_events": self.hakmem_events,
            "first_ns": self.first_ts, "last_ns": self.last_ts,
            "classes": {str(c): cc.as_dict() for c, cc in sorted(self.classes.items(), key=lambda x: x[0] or 0)},
            "threads": [{"vpid": k[0], "vtid": k[1], "procname": v["procname"],
                         "thread": thread_label(v["procname"], k[0], k[1]), "ooms": v["ooms"]}
                        for k, v in sorted(self.threads.items(), key=lambda x: (x[0][0] or 0, x[0][1] or 0))],
            "causes": {c: causes[c] for c in judgement.CAUSES if causes[c]},
            "ooms_total": self.n_ooms,
            "ooms_unlisted": self.unlisted,
            "memory_at_last_oom": self.last_memory,
            "processes": self._processes(),
            "events_read_twice": self.duplicates,
        }
        return {"schema": "hakmem-trace/1", "ooms": ooms, "summary": summary,
                "lost_events": self.losses.report(self.first_ts, self.last_ts)}


    def _processes(self):
        """Per process: the OOMs it numbered that the trace does not hold, and (from its exit totals) the OOMs
        after the last one seen and the refills per class the trace lacks."""
        out = []
        for vpid in sorted(set(self.oom_numbers) | set(self.exits), key=lambda v: v or 0):
            nums, ex = self.oom_numbers.get(vpid) or Numbers(), self.exits.get(vpid)
            known = max(nums.highest(), ex["ooms"] if ex else 0)
            p = {"vpid": vpid, "procname": self.procnames.get(vpid), "ooms_numbered": known,
                 "ooms_in_trace": sum(b - a + 1 for a, b in nums.ranges),
                 "ooms_not_in_trace": [list(r) for r in nums.missing(known)],
                 "exit_totals": ex is not None}
            if ex is not None:
                refills = {}
                for cls, c in sorted(ex["classes"].items()):
                    seen = self.proc_refills.get((vpid, cls), 0)
                    if c["refills"] != seen:
                        refills[str(cls)] = {"counted": c["refills"], "in_trace": seen}
                p["refills_not_in_trace"] = refills
                p["exit_totals_complete"] = len(ex["classes"]) == ex["classes_expected"]
            out.append(p)
        return out


def analyse(path, analyzer=None):
    """Stream the trace(s) under path through an Analyzer (a new one unless given); raise
    trace_input.TraceError with one sentence when unusable."""
    a = analyzer or Analyzer()
    trace_input.read(path, a)
    trace_input.check_usable(a, path)
    return a.finish()
