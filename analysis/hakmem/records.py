"""The analysis's records as the report shapes them: an event the core kept, a thread's label, a process's OOM
numbers."""


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


class Numbers:
    """The OOM numbers of one process seen in the trace, as sorted disjoint ranges (the core keeps them so: they
    arrive nearly in order, so memory stays small however many there are)."""

    def __init__(self, ranges=None):
        self.ranges = ranges or []  # [first, last], sorted, disjoint, not adjacent (the core's)

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
