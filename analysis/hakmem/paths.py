"""The OOM-path analysis, as the report gives it: the native core (analysis/native, see native.py) reads the trace
once, in time order, and rebuilds the path of decisions behind every OOM; this module shapes what it found.

The core's memory: one open refill per thread, a window of recent events per size class (for what other threads
were doing), per class and chunk the last events that can explain another thread's decision (the expansion that
made the chunk current, the claim that took its last free slab, its last claims), the reports of the first
DETAIL_PER_CAUSE OOMs of each cause with their paths (the others are only counted), and the loss ranges — not the
trace. Reading the trace is in trace_input, the stream check's losses in losses, the final causes and notes in
judgement.
"""

import collections

from . import catalogue, fleet, heap, judgement, losses, native, trace_input
from .records import Event, Numbers, thread_label

DETAIL_PER_CAUSE = 1000  # OOMs listed with their path per cause: the core's HK_DETAIL_PER_CAUSE, which the report
                         # names (tests/analysis/test_explaining_crafted.py checks that the two agree)
LARGE = catalogue.LARGE_CLASS


def reason(kind, chunk):
    if kind == "became_current":
        return "won the expansion race this path lost"
    if kind == "filled":
        return f"claimed the last free slab of chunk {chunk:#x}"
    return f"claimed a slab of chunk {chunk:#x} first: this path's claim lost the race"


class Analyzer:
    """The native core's analysis of one trace: fed by trace_input.read (the core as the graph's sink) or message by
    message (feed, for a Python sink); finish() returns the report."""

    def __init__(self, timeline_buckets=0):
        self.core = native.Core(timeline_buckets)
        self.losses = losses.Losses(self.core)

    def feed(self, msg):
        self.core.feed(msg)

    def event(self, ev):
        """A crafted Event (tests), analysed as if read from a trace."""
        self.core.event(ev.name, ev.ts, ev.vpid, ev.vtid, ev.procname, ev.fields)

    # ---- what check_usable asks (the input has ended) ----

    @property
    def malformed(self):
        return collections.Counter(dict(self.core.result()["malformed"]))

    @property
    def hakmem_events(self):
        return self.core.result()["hakmem_events"]

    @property
    def no_thread_context(self):
        return self.core.result()["no_thread_context"]

    @property
    def declared(self):
        return set(self.core.result()["declared"])

    @declared.setter
    def declared(self, names):
        """What a crafted input's trace would declare (tests)."""
        for name in names:
            self.core.declare(name)

    @property
    def aux(self):
        """What the core passed through whole: stacks, heap samples, the state dump (aux_events.h)."""
        return self.core.result().get("aux") or {"records": [], "duplicates": 0, "stacks_dropped": 0}

    # ---- output ----

    def finish(self, stacks=True):
        """The report; with stacks, each OOM's call stack and the live heap when it struck (heap.add_to_ooms)."""
        r = self.core.result()
        ooms, causes = reports(r["ooms"], set(r["declared"]))
        if stacks:
            heap.add_to_ooms(ooms, self.aux)
        causes.update({c: n for c, n in r["unlisted_causes"].items() if n})
        classes = {}
        for cls, block_size, refills, n_ooms, counts in sorted(r["classes"], key=lambda c: c[0] or 0):
            classes[str(cls)] = {"block_size": block_size, "refills": refills} | {
                k: {key: n for key, n in v} for k, v in counts.items()} | {"ooms": n_ooms}
        summary = {
            "events": r["events"], "hakmem_events": r["hakmem_events"],
            "first_ns": r["first_ns"], "last_ns": r["last_ns"],
            "classes": classes,
            "threads": [{"vpid": vpid, "vtid": vtid, "procname": proc, "thread": thread_label(proc, vpid, vtid),
                         "ooms": n} for vpid, vtid, proc, n in sorted(r["threads"], key=lambda t: (t[0] or 0,
                                                                                                 t[1] or 0))],
            "causes": {c: causes[c] for c in judgement.CAUSES if causes[c]},
            "ooms_total": r["n_ooms"],
            "ooms_unlisted": r["unlisted"],
            "memory_at_last_oom": r["memory_at_last_oom"],
            "processes": self._processes(r),
            "events_read_twice": r["duplicates"],
        }
        return {"schema": "hakmem-trace/1", "ooms": ooms, "summary": summary,
                "lost_events": self.losses.report(r["ranges"], r["first_ns"], r["last_ns"])}

    @staticmethod
    def _processes(r):
        """Per process: the OOMs it numbered that the trace does not hold, and (from its exit totals) the OOMs
        after the last one seen and the refills per class the trace lacks."""
        numbers = {vpid: Numbers([list(p) for p in zip(flat[::2], flat[1::2])]) for vpid, flat in r["numbers"]}
        exits = {vpid: {"ooms": ooms, "refills": refills, "classes_expected": expected,
                        "classes": {c: {"refills": cr, "ooms": co, "block_size": bs} for c, cr, co, bs in classes}}
                 for vpid, ooms, refills, expected, classes in r["exits"]}
        proc_refills = {(vpid, cls): n for vpid, cls, n in r["proc_refills"]}
        procnames = dict(r["procnames"])
        out = []
        for vpid in sorted(set(numbers) | set(exits), key=lambda v: v or 0):
            nums, ex = numbers.get(vpid) or Numbers(), exits.get(vpid)
            known = max(nums.highest(), ex["ooms"] if ex else 0)
            p = {"vpid": vpid, "procname": procnames.get(vpid), "ooms_numbered": known,
                 "ooms_in_trace": sum(b - a + 1 for a, b in nums.ranges),
                 "ooms_not_in_trace": [list(r) for r in nums.missing(known)],
                 "exit_totals": ex is not None}
            if ex is not None:
                refills = {}
                for cls, c in sorted(ex["classes"].items()):
                    seen = proc_refills.get((vpid, cls), 0)
                    if c["refills"] != seen:
                        refills[str(cls)] = {"counted": c["refills"], "in_trace": seen}
                p["refills_not_in_trace"] = refills
                p["exit_totals_complete"] = len(ex["classes"]) == ex["classes_expected"]
            out.append(p)
        return out


def _event_maker():
    """The core's events (lists) as Events, one object per native event (notes() tells them apart by id)."""
    made = {}

    def ev(e):
        got = made.get(e[6])
        if got is None:
            got = made[e[6]] = Event(e[0], e[1], e[2], e[3], e[4], e[5])
        return got
    return ev


def reports(raw_ooms, declared):
    """The core's OOMs (result.c's oom()) as the report lists them, and their causes counted: the final judgement
    (judgement.cause) against the events the trace declares."""
    ooms = []
    causes = collections.Counter()
    for o in raw_ooms:
        ev = _event_maker()
        path = [ev(e) for e in o["path"]]
        oom = path[-1]
        start = path[0].ts
        rec = {"path": path, "context": [ev(e) for e in o["context"]], "begins_midway": o["begins_midway"],
               "explaining": [(ev(e), kind, chunk, steps) for e, kind, chunk, steps in o["explaining"]],
               "structural": (o["cause"], o["detail"])}
        lost, begins = o["lost"], o["coverage_begins"]
        if begins is not None and oom.get("class_idx") != LARGE:
            rec["begins_midway"] = True
            rec["coverage_detail"] = ("the trace begins in the middle of this path: a CPU buffer of this "
                                      f"snapshot begins {(begins - start) / 1000:.1f} µs after the path's first "
                                      "event, so the events it held before are missing")
        cause, detail = judgement.cause(rec, lost, declared)
        causes[cause] += 1
        vpid, vtid = o["vpid"], o["vtid"]
        ooms.append({
            "index": o["number"], "vpid": vpid, "vtid": vtid, "procname": oom.procname,
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
            "memory": o["memory"],
        })
    return ooms, causes


def analyse(path, analyzer=None, group=None):
    """Stream the trace(s) under path through an Analyzer (a new one unless given); raise
    trace_input.TraceError with one sentence when unusable. A folder of several hosts' or sessions' traces (a
    relay's tree, trace_input.groups) is analysed a group at a time, each by a core of its own, into one combined
    report (fleet.combine); with an analyzer given, only group (one of trace_input.groups(path)) is read, and
    without one such a folder is refused (trace_input.read)."""
    if analyzer is not None:
        trace_input.read(path, analyzer, group)
        trace_input.check_usable(analyzer, path)
        return analyzer.finish()
    found = trace_input.groups(path)
    if len(found) == 1:
        a = Analyzer()
        trace_input.read(path, a, found[0])
        trace_input.check_usable(a, path)
        return a.finish()
    parts, skipped = [], []
    for g in found:
        a = Analyzer()
        trace_input.read(path, a, g)
        if a.hakmem_events == 0:  # another tool's session on the same relay: said, not fatal
            skipped.append((g, "no hakmem events"))
            continue
        trace_input.check_usable(a, f"{g.folder} ({g.label})")
        parts.append((g, a.finish()))
        del a  # one core at a time: a relay's tree can hold many sessions
    if not parts:
        trace_input.check_usable(Analyzer(), path)  # the sentence for no hakmem event at all
    return fleet.combine(parts, skipped)
