"""The estimated live heap of one process at one instant, from the trace's sampled allocations, by call site, thread
or class; each OOM's own call stack; both as `hakmem-trace heap` and `oom-paths` give them.

The sampler (src/sampler.c) makes every allocated byte a sample point with probability 1/S: a block of n bytes is
sampled with probability p = 1 - exp(-n/S), so each sample stands for n/p bytes and 1/p blocks, whatever its size
(a large block is nearly always sampled and counts about once; a small one rarely, and counts for many). A sampled
block is live from its heap_sample to the heap_sample_free of the same pointer in the same process; a free with no
sample before it there is not counted (a fork child frees blocks its parent sampled). Addresses become
`function file:line` through hakmem.symbols, batched: one call for all the stacks of a report.
"""

import bisect
import collections
import math

from .records import thread_label
from .trace_input import TraceError

SCHEMA = "hakmem-trace-heap/1"
TOP_AT_OOM = 10        # sites listed under each OOM of oom-paths
LARGE = 255
GROUPINGS = ("site", "thread", "class")
NOT_RESOLVED = "not resolved"


# ---- addresses to frames ----

def resolve_stacks(aux_records, requests):
    """[(vpid, ts, frames innermost first)] -> one list of frame dicts per request (hakmem.symbols' Frame.to_json),
    innermost first. Without hakmem.symbols every frame is its address, "not resolved"."""
    return Resolver(aux_records)(requests)


class Resolver:
    """resolve_stacks for one report: the binaries read and the lines found are kept between its batches."""

    def __init__(self, aux_records):
        try:
            from . import symbols
        except ImportError:
            symbols = None
        self.symbolizer = symbols.Symbolizer(aux_records) if hasattr(symbols, "Symbolizer") else None

    def __call__(self, requests):
        if not requests:
            return []
        if self.symbolizer is None:
            return [[unresolved(a) for a in frames] for _, _, frames in requests]
        stacks = self.symbolizer.stacks([(vpid, list(frames), ts) for vpid, ts, frames in requests])
        return [[f.to_json() for f in frames] for frames in stacks]


def unresolved(addr):
    return {"addr": addr, "binary": None, "offset": None, "function": None, "file": None, "line": None,
            "problem": NOT_RESOLVED, "text": hex(addr)}


def problems_of(stacks):
    """The distinct problems of these frames, in the order first met."""
    seen = {}
    for stack in stacks:
        for f in stack:
            if f.get("problem"):
                seen.setdefault(f["problem"], None)
    return list(seen)


# ---- the samples ----

def weight(size, mean):
    """(bytes, blocks) one sample of size bytes stands for, with the sampler's mean interval."""
    if size <= 0:
        return 0.0, 0.0
    if mean <= 0:
        return float(size), 1.0  # every block sampled
    p = -math.expm1(-size / mean)
    return size / p, 1 / p


class Sample:
    __slots__ = ("ts", "vtid", "procname", "ptr", "size", "cls", "mean", "frames", "bytes", "blocks")


class Profile:
    """The heap_sample / heap_sample_free records of a trace, per process in time order."""

    def __init__(self, aux_records):
        self.events = collections.defaultdict(list)  # vpid -> [(ts, Sample) or (ts, ptr)], in time order
        self.samples = collections.Counter()          # vpid -> heap_sample count
        self.means = collections.defaultdict(collections.Counter)
        for r in aux_records:
            name, f, vpid = r["name"], r["fields"], r["vpid"]
            if name == "hakmem:heap_sample":
                s = Sample()
                s.ts, s.vtid, s.procname = r["ts"], r["vtid"], r["procname"]
                s.ptr, s.size, s.cls, s.mean = f.get("ptr", 0), f.get("size", 0), f.get("class_idx"), f.get("mean", 0)
                s.frames = tuple(f.get("frames") or ())
                s.bytes, s.blocks = weight(s.size, s.mean)
                self.events[vpid].append((s.ts, s))
                self.samples[vpid] += 1
                self.means[vpid][s.mean] += 1
            elif name == "hakmem:heap_sample_free":
                self.events[vpid].append((r["ts"], f.get("ptr", 0)))
        self.times = {vpid: [ts for ts, _ in evs] for vpid, evs in self.events.items()}

    def total_samples(self):
        return sum(self.samples.values())

    def mean(self, vpid):
        """The sampling interval most of the process's samples had (one run has one)."""
        common = self.means[vpid].most_common(1)
        return common[0][0] if common else None

    def stop_before(self, vpid, ts):
        """How many of the process's events happened before ts."""
        return bisect.bisect_left(self.times.get(vpid, []), ts)

    def end(self, vpid):
        return len(self.events.get(vpid, []))

    def peak(self, vpid):
        """(stop, ts): the number of events after which the estimated live total was highest, and that event's time."""
        live, total, best, at = {}, 0.0, 0.0, 0
        evs = self.events.get(vpid, [])
        for i, (ts, e) in enumerate(evs):
            total += self._apply(live, e)
            if total > best:
                best, at = total, i + 1
        return at, (evs[at - 1][0] if at else None)

    @staticmethod
    def _apply(live, e):
        """Apply one event to the live set; the change in estimated bytes."""
        if isinstance(e, Sample):
            old = live.get(e.ptr)
            live[e.ptr] = e
            return e.bytes - (old.bytes if old else 0.0)
        old = live.pop(e, None)
        return -old.bytes if old else 0.0

    def live_at(self, vpid, stops):
        """For each stop (a number of events, ascending), the samples live after that many of the process's
        events: [[Sample]] in allocation order."""
        live, out, i = {}, [], 0
        evs = self.events.get(vpid, [])
        for stop in stops:
            while i < stop:
                self._apply(live, evs[i][1])
                i += 1
            out.append(list(live.values()))
        return out


# ---- grouping ----

def groups(live, by, vpid, class_sizes):
    """Live samples -> {key: [bytes, blocks, {stack: bytes}, sample ts of each stack]} (stacks: site only)."""
    out = {}
    for s in live:
        if by == "site":
            key = s.frames
        elif by == "thread":
            key = f"tid {s.vtid} {thread_label(s.procname, vpid, s.vtid)}"
        else:
            key = class_key(s.cls, class_sizes)
        g = out.setdefault(key, [0.0, 0.0, collections.Counter(), {}])
        g[0] += s.bytes
        g[1] += s.blocks
        g[2][s.frames] += s.bytes
        g[3].setdefault(s.frames, s.ts)
    return out


def class_key(cls, class_sizes):
    if cls == LARGE:
        return "large path"
    size = class_sizes.get(cls)
    return f"class {cls} ({size} B)" if size else f"class {cls}"


def entries(grouped_list, by, vpid, resolve, limit=None):
    """Each grouping of grouped_list (one per instant) as sorted entries, the stacks of all resolved in one batch;
    returns ([entries per instant], problems)."""
    requests, index = [], {}
    if by == "site":
        for grouped in grouped_list:
            for frames, g in grouped.items():
                if frames not in index:
                    index[frames] = len(requests)
                    requests.append((vpid, g[3][frames], frames))
    resolved = resolve(requests)
    out = []
    for grouped in grouped_list:
        merged = {}
        for key, g in grouped.items():
            if by == "site":
                stack = resolved[index[key]]
                key = stack[0]["text"] if stack else "(no stack)"
            m = merged.setdefault(key, [0.0, 0.0, collections.Counter()])
            m[0] += g[0]
            m[1] += g[1]
            m[2].update(g[2])
        total = sum(m[0] for m in merged.values())
        listed = []
        for key, (b, blocks, stacks) in merged.items():
            e = {"key": key, "vpid": vpid, "bytes": round(b), "share": round(b / total, 4) if total else 0.0,
                 "blocks": round(blocks)}
            if by == "site":
                heaviest = min(stacks.items(), key=lambda kv: (-kv[1], kv[0]))[0]
                e["stack"] = resolved[index[heaviest]]
            listed.append(e)
        listed.sort(key=lambda e: (-e["bytes"], e["key"]))
        out.append((round(total), listed[:limit] if limit else listed))
    return out, problems_of(resolved)


# ---- the instant ----

def oom_instants(result, aux_records):
    """Every OOM the trace shows: [(ts, vpid, oom_no)] in time order, from the listed OOMs and, for those only
    counted, the call_stack just before each."""
    found = {}
    for o in result["ooms"]:
        found[(o["vpid"], o["oom_no"])] = o["time_ns"]
    for r in aux_records:
        if r["name"] == "hakmem:call_stack" and r["fields"].get("oom_no"):
            found.setdefault((r["vpid"], r["fields"]["oom_no"]), r["ts"])
    return sorted((ts, vpid, no) for (vpid, no), ts in found.items())


def choose(at, pid, result, profile, aux_records, name):
    """(vpid, stop, at-dict, problems) for --at and --pid; TraceError when there is no such instant."""
    problems = []
    if at == "first-oom" or at.startswith("oom:"):
        ooms = oom_instants(result, aux_records)
        if pid is not None:
            ooms = [o for o in ooms if o[1] == pid]
        whose = f" of pid {pid}" if pid is not None else ""
        if at == "first-oom":
            if not ooms:
                raise TraceError(f"{name} holds no OOM{whose}: ask for --at peak or --at end")
            ts, vpid, no = ooms[0]
        else:
            try:
                n = int(at[4:])
            except ValueError:
                raise TraceError(f"--at {at}: give oom:N with N an OOM's number (1, 2, ...)") from None
            same = [o for o in ooms if o[2] == n]
            if not same:
                raise TraceError(f"{name} holds no OOM numbered {n}{whose}")
            ts, vpid, no = same[0]
            if len(same) > 1:
                problems.append(f"OOM {n} is numbered in {len(same)} processes (pids "
                                f"{', '.join(str(o[1]) for o in same)}): the first in time, pid {vpid}'s, is shown")
        if not profile.samples[vpid]:
            raise TraceError(f"pid {vpid}, whose OOM {no} is asked for, has no heap samples in {name}")
        return vpid, profile.stop_before(vpid, ts), {"kind": "first-oom" if at == "first-oom" else "oom",
                                                    "oom_no": no, "vpid": vpid, "time_ns": ts}, problems
    if at not in ("peak", "end"):
        raise TraceError(f"--at {at}: first-oom, oom:N, peak or end")
    if pid is None:
        vpid = min(profile.samples, key=lambda v: (-profile.samples[v], v))
    elif not profile.samples[pid]:
        raise TraceError(f"pid {pid} has no heap samples in {name}")
    else:
        vpid = pid
    if at == "peak":
        stop, ts = profile.peak(vpid)
    else:
        stop = profile.end(vpid)
        ts = profile.events[vpid][-1][0] if stop else None
    return vpid, stop, {"kind": at, "oom_no": None, "vpid": vpid, "time_ns": ts}, problems


def class_sizes(result):
    """Class index -> block size, as the trace's refill events gave it."""
    out = {}
    for cls, c in result["summary"]["classes"].items():
        if c.get("block_size") and cls.isdigit():
            out[int(cls)] = c["block_size"]
    return out


def heap(result, aux, at="first-oom", by="site", pid=None, name="the trace"):
    """The `heap` report (schema hakmem-trace-heap/1) and, for the flame graph, the resolved stacks with their
    estimated bytes: (report, [(frames innermost first, bytes)])."""
    records = aux["records"]
    profile = Profile(records)
    if not profile.total_samples():
        raise TraceError(f"no heap samples in {name}: record with HAKMEM_TRACE_SAMPLE=BYTES in the program's "
                         "environment (hakmem-trace record --heap-profile)")
    if by not in GROUPINGS:
        raise TraceError(f"--by {by}: site, thread or class")
    vpid, stop, instant, problems = choose(at, pid, result, profile, records, name)
    live = profile.live_at(vpid, [stop])[0]
    grouped = groups(live, by, vpid, class_sizes(result))
    resolve = Resolver(records)
    [(total, listed)], resolution = entries([grouped], by, vpid, resolve)
    if aux.get("stacks_dropped"):
        problems.append(f"{aux['stacks_dropped']} call_stack event(s) beyond the analysis' bound were not kept")
    report = {"schema": SCHEMA, "at": instant, "by": by,
              "sampling": {"mean": profile.mean(vpid), "samples": profile.samples[vpid], "live_samples": len(live)},
              "total_bytes": total, "entries": listed, "problems": problems + resolution}
    return report, flame_stacks(live, vpid, resolve)


def flame_stacks(live, vpid, resolve):
    """One (resolved frames innermost first, estimated bytes) per distinct stack of the live samples."""
    by_stack, first = collections.Counter(), {}
    for s in live:
        by_stack[s.frames] += s.bytes
        first.setdefault(s.frames, s.ts)
    keys = sorted(by_stack)
    resolved = resolve([(vpid, first[k], k) for k in keys])
    return [(stack, by_stack[k]) for k, stack in zip(keys, resolved)]


# ---- oom-paths: each OOM's stack and the live heap when it struck ----

def add_to_ooms(ooms, aux):
    """Give every OOM report its `stack` (None: no call_stack event) and `live_heap` (None: no heap samples in
    the trace), with one resolver for all."""
    records = aux["records"]
    resolve = Resolver(records)
    stacks = {}
    for r in records:
        if r["name"] == "hakmem:call_stack" and r["fields"].get("oom_no"):
            stacks[(r["vpid"], r["vtid"], r["fields"]["oom_no"])] = r
    own = [stacks.get((o["vpid"], o["vtid"], o["oom_no"])) for o in ooms]
    requests = [(r["vpid"], r["ts"], tuple(r["fields"].get("frames") or ())) for r in own if r]
    resolved = iter(resolve(requests))
    for o, r in zip(ooms, own):
        o["stack"] = next(resolved) if r else None
    profile = Profile(records)
    if not profile.total_samples():
        for o in ooms:
            o["live_heap"] = None
        return
    by_vpid = collections.defaultdict(list)
    for i, o in enumerate(ooms):
        by_vpid[o["vpid"]].append(i)
    for vpid, idx in by_vpid.items():
        stops = [profile.stop_before(vpid, ooms[i]["time_ns"]) for i in idx]
        order = sorted(range(len(idx)), key=lambda k: stops[k])
        lives = profile.live_at(vpid, [stops[k] for k in order])
        grouped = [groups(live, "site", vpid, {}) for live in lives]
        listed, _ = entries(grouped, "site", vpid, resolve, limit=TOP_AT_OOM)
        for k, live, (total, top) in zip(order, lives, listed):
            ooms[idx[k]]["live_heap"] = {"total_bytes": total, "mean": profile.mean(vpid),
                                         "live_samples": len(live), "top": top}
