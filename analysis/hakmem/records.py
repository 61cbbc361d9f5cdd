"""The analysis's records: a decoded event, a refill being followed (bounded), a class's counters, a thread's label."""

import bisect
import collections

PATH_LIMIT = 256      # events kept per open refill (a refill looping on lost races is cut, and said to be)


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
        self.adoptions = collections.Counter()
        self.reclaims = collections.Counter()
        self.bitmap_checks = collections.Counter()
        self.mid_simple = collections.Counter()
        self.expansions = collections.Counter()
        self.failures = collections.Counter()
        self.ooms = 0
        self.block_size = None

    def as_dict(self):
        return {"block_size": self.block_size, "refills": self.refills, "bitmap_checks": dict(self.bitmap_checks),
                "mid_simple_choices": dict(self.mid_simple), "expansions": dict(self.expansions),
                "failures": dict(self.failures), "adoptions": dict(self.adoptions), "reclaims": dict(self.reclaims),
                "ooms": self.ooms}


class Numbers:
    """The OOM numbers of one process seen in the trace, as sorted disjoint ranges: they arrive nearly in order,
    so memory stays small however many there are."""

    def __init__(self):
        self.ranges = []  # [first, last], sorted, disjoint, not adjacent

    def add(self, n):
        r = self.ranges
        i = bisect.bisect_right(r, [n, float("inf")])  # ranges starting at or before n end before index i
        if i and r[i - 1][1] >= n:
            return False  # seen already (the same OOM in two snapshots)
        if i and r[i - 1][1] == n - 1:
            r[i - 1][1] = n
            if i < len(r) and r[i][0] == n + 1:
                r[i - 1][1] = r[i][1]
                del r[i]
        elif i < len(r) and r[i][0] == n + 1:
            r[i][0] = n
        else:
            r.insert(i, [n, n])
        return True

    def missing(self, last):
        """The ranges of 1..last not seen."""
        out, nxt = [], 1
        for a, b in self.ranges:
            if a > nxt:
                out.append((nxt, min(a - 1, last)))
            nxt = max(nxt, b + 1)
            if nxt > last:
                break
        if nxt <= last:
            out.append((nxt, last))
        return [(a, b) for a, b in out if a <= b]

    def highest(self):
        return self.ranges[-1][1] if self.ranges else 0
