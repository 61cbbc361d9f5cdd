"""Loss accounting: when and how many events and packets the tracer discarded, and from when a snapshot's every
CPU buffer holds its events."""

import bisect
import collections


class Losses:
    """The trace's loss ranges, kept sorted by beginning so that the losses overlapping a window are found fast."""

    def __init__(self):
        self.ranges = []                  # (begin_ns, end_ns, count, kind), in the order Babeltrace2 reported them
        self._debt = {}                   # stream -> discarded events a wrapped count still owes (see discarded)
        self._begs = []                   # timed loss ranges sorted by beginning: their beginnings ...
        self._timed = []                  # ... and (begin, end, count)
        self._longest = 0                 # the longest timed range (how far back a range may reach)
        self._anywhere = [0, 0]           # count, ranges of losses without a time

    def discarded(self, msg, kind):
        """A discarded-events or discarded-packets message (kind "events" or "packets")."""
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
            debt = self._debt.get(stream)
            if count >= 1 << 63:
                owed = (1 << 64) - count
                if debt is None:
                    self._debt[stream] = (owed, beg)
                else:
                    self._debt[stream] = (debt[0] + owed, debt[1])
                return
            if debt is not None:
                owed, first_beg = debt
                take = min(owed, count)
                count -= take
                if owed > take:
                    self._debt[stream] = (owed - take, first_beg)
                else:
                    del self._debt[stream]
                if beg is not None and first_beg is not None:
                    beg = min(beg, first_beg)
        self.ranges.append((beg, end, count, kind))
        n = 1 if count is None else count
        if beg is None:
            self._anywhere[0] += n
            self._anywhere[1] += 1
        else:
            i = bisect.bisect_right(self._begs, beg)
            self._begs.insert(i, beg)
            self._timed.insert(i, (beg, end, n))
            self._longest = max(self._longest, end - beg)

    def lost_in(self, start, end):
        """(events or packets lost, loss ranges) overlapping [start, end]: the ranges that began by end and had
        not ended before start (only those beginning within the longest range's length before start can)."""
        n, ranges = self._anywhere
        i = bisect.bisect_right(self._begs, end)
        floor = start - self._longest
        while i > 0 and self._begs[i - 1] >= floor:
            i -= 1
            b, e, c = self._timed[i]
            if e >= start:
                n += c
                ranges += 1
        return (max(n, 1) if ranges else 0), ranges

    def report(self):
        """The report's lost_events: totals by kind (a loss of unknown count counts 1) and every range."""
        lost_events = sum(1 if c is None else c for b, e, c, k in self.ranges if k == "events")
        lost_packets = sum(1 if c is None else c for b, e, c, k in self.ranges if k == "packets")
        return {"discarded_events": lost_events, "discarded_packets": lost_packets,
                "ranges": [{"begin_ns": b, "end_ns": e, "count": c, "kind": k} for b, e, c, k in self.ranges]}


class Coverage:
    """trace -> the time from which every stream (CPU buffer) of that trace holds its events. A snapshot keeps
    only the newest packets of each stream, so each begins at its own time and, before the latest of them,
    events that went to the other streams are missing. In a normal recording every stream begins before the
    program's first event, so this changes nothing."""

    def __init__(self):
        self.stream_first = {}            # (trace, stream) -> beginning of its first packet in the trace (ns)
        self.trace_streams = collections.Counter()  # trace -> its streams (all announced before any event)
        self.trace_begun = collections.Counter()    # trace -> its streams whose first packet has been seen
        self.trace_end = {}               # trace -> the end of its latest packet (ns)
        self._cover = None

    def stream_began(self, msg):
        self.trace_streams[msg.stream.trace.addr] += 1

    def packet_began(self, msg):
        stream = msg.packet.stream
        key = (stream.trace.addr, stream.addr)
        if key not in self.stream_first:
            try:
                self.stream_first[key] = msg.default_clock_snapshot.ns_from_origin
            except Exception:  # a stream class without packet beginning times
                self.stream_first[key] = None
            self.trace_begun[key[0]] += 1
            self._cover = None

    def packet_ended(self, msg):
        try:
            end = msg.default_clock_snapshot.ns_from_origin
        except Exception:  # a stream class without packet end times
            return
        trace = msg.packet.stream.trace.addr
        if end > self.trace_end.get(trace, end - 1):
            self.trace_end[trace] = end

    def uncovered(self, trace, start, end):
        """None when some trace holds every stream's events over [start, end] (the OOM's own trace, or another
        snapshot of the same run: a flight recorder writes one per cue); else when the OOM's trace begins to."""
        cover = self.begins()
        mine = cover.get(trace)
        if mine is None or start >= mine:
            return None
        for t, begins in cover.items():
            if t != trace and begins <= start and self.trace_end.get(t, -1) >= end:
                return None
        return mine

    def all_begun(self, trace):
        """Whether every stream of trace has begun (before that, its coverage is not known)."""
        return self.trace_begun[trace] >= self.trace_streams[trace]

    def begins(self):
        """trace -> the time from which all its streams hold events."""
        if self._cover is None:
            cover = {}
            for (trace, _), first in self.stream_first.items():
                if first is not None and (trace not in cover or first > cover[trace]):
                    cover[trace] = first
            self._cover = cover
        return self._cover
