"""Loss accounting: when, on which stream and how many events and packets the tracer discarded or the trace's
files lost, which of them a refill's window must answer for, and from when a snapshot's every CPU buffer holds its
events."""

import bisect
import collections
import os


# Causes that accuse the allocator. Each rests on what a path does not hold (no chunk expansion before the NULL)
# or on one event contradicting the allocator's invariants: a loss on any stream in the window may have taken
# the events that would clear it (see Losses.judged).
ACCUSATIONS = ("expansion_bypassed", "bitmap_inconsistent")
RUNS_KEPT = 64        # per thread, the latest runs of consecutive events on one stream (see ThreadStreams)


class _Timeline:
    """The losses of one stream: timed ones sorted by beginning (so that those overlapping a window are found
    fast), those known only to begin (reaching to the end of the trace) or only to end (from its beginning),
    and the count of those without a time."""

    __slots__ = ("begs", "timed", "longest", "open", "anywhere")

    def __init__(self):
        self.begs, self.timed, self.longest, self.open, self.anywhere = [], [], 0, [], [0, 0]

    def add(self, beg, end, n):
        if beg is None and end is None:
            self.anywhere[0] += n
            self.anywhere[1] += 1
        elif beg is None or end is None:
            self.open.append((beg, end, n))
        else:
            i = bisect.bisect_right(self.begs, beg)
            self.begs.insert(i, beg)
            self.timed.insert(i, (beg, end, n))
            self.longest = max(self.longest, end - beg)

    def lost_in(self, start, end):
        """(count, ranges) of this stream's losses overlapping [start, end]: the timed ones that began by end and
        had not ended before start (only those beginning within the longest one's length before start can)."""
        n, ranges = self.anywhere
        i = bisect.bisect_right(self.begs, end)
        floor = start - self.longest
        while i > 0 and self.begs[i - 1] >= floor:
            i -= 1
            b, e, c = self.timed[i]
            if e >= start:
                n += c
                ranges += 1
        for b, e, c in self.open:
            if (b is None or b <= end) and (e is None or e >= start):
                n += c
                ranges += 1
        return n, ranges


class Losses:
    """The trace's losses, per stream: what Babeltrace2 reports as discarded events and packets, and what the
    stream check of trace_input found (streams emptied, missing, cut short). A stream is its file's name, as
    Babeltrace2 names the stream it reads from it (or its address, for a source that names none)."""

    def __init__(self):
        self.ranges = []                  # (begin_ns, end_ns, count, kind, stream), in the order reported
        self.damaged = []                 # the stream check's losses (dicts, see trace_input.check_streams)
        self._debt = {}                   # stream -> discarded events a wrapped count still owes (see discarded)
        self._lines = collections.defaultdict(_Timeline)  # stream -> its losses
        self._key = {}                    # Babeltrace2 stream address -> stream
        self._shown = {}                  # folder read in place of a damaged trace's folder -> that folder

    # ---- input ----

    def read_as(self, copy, folder):
        """The trace folder folder is read from copy (trace_input.repaired_copy): streams are named as in folder."""
        self._shown[os.path.join(copy, "")] = os.path.join(folder, "")

    def name(self, stream):
        """A stream as the report names it (its file in the trace folder the user gave)."""
        if isinstance(stream, str):
            for copy, folder in self._shown.items():
                if stream.startswith(copy):
                    return folder + stream[len(copy):]
        return stream

    def stream_began(self, msg):
        """A stream-beginning message: the stream its address stands for."""
        self._key[msg.stream.addr] = msg.stream.name or msg.stream.addr

    def _stream(self, stream):
        return self._key.get(stream.addr) or stream.name or stream.addr

    def stream_lost(self, loss, stream):
        """A loss the stream check found before reading (loss["stream"] the file, stream the name Babeltrace2 gives
        the stream read from it)."""
        self.damaged.append(loss)
        n = 1 if loss["packets"] is None else loss["packets"]
        self.ranges.append((loss["begin_ns"], loss["end_ns"], loss["packets"], "stream", stream))
        self._lines[stream].add(loss["begin_ns"], loss["end_ns"], max(n, 1))

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
        stream = self._stream(msg.stream)
        if kind == "events" and count is not None:
            # Babeltrace2 gives the difference of the tracer's per-stream counter between two packets, as an
            # unsigned 64-bit number. lttng-ust (2.13.5, discard mode, small sub-buffers) now and then closes a
            # packet that says 0 events discarded: the difference to it wraps around to 2**64 - N, and the next
            # packet's difference counts those N again. Carry the N over to the stream's next loss instead, and
            # let that loss cover both packets' time.
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
        self.ranges.append((beg, end, count, kind, stream))
        self._lines[stream].add(beg, end, 1 if count is None else count)

    # ---- judging a window ----

    def lost_in(self, start, end, streams=None):
        """(events or packets lost, loss ranges) overlapping [start, end] on the given streams (Babeltrace2 stream
        addresses, as ThreadStreams gives them), or on every stream when streams is None."""
        if streams is None:
            lines = self._lines.values()
        else:
            keys = {self._key.get(s, s) for s in streams}
            lines = [self._lines[k] for k in keys if k in self._lines]
        n = ranges = 0
        for line in lines:
            c, r = line.lost_in(start, end)
            n += c
            ranges += r
        return (max(n, 1) if ranges else 0), ranges

    def judged(self, start, end, streams, cause):
        """The losses that make a refill's path [start, end] incomplete, the path's structural cause being cause.

        A path is incomplete when a loss overlaps its window on its own streams: the streams the thread's events
        in that window came from (ThreadStreams.during). With per-UID buffers there is one stream per CPU, and a
        thread's events go to the stream of the CPU it runs on, so a loss elsewhere could only have taken its
        events if it ran on that CPU meanwhile and every event it emitted there was lost — the one case no trace
        can show. A path that shows its refusal (a superslab_alloc_fail on its own stream) keeps that cause even
        then: what a lost event elsewhere may have hidden cannot undo what the path holds. An accusation
        (ACCUSATIONS) rests on what the path lacks, which such a lost migration would explain, so for those every
        stream's losses count; and so they do where the thread's streams are not known (streams None)."""
        return self.lost_in(start, end, None if cause in ACCUSATIONS else streams)

    # ---- output ----

    def report(self, first_ns=None, last_ns=None):
        """The report's lost_events: totals by kind (a loss of unknown count counts 1), every range (one reaching
        to the end of the trace, or from its beginning, ends or begins with the trace's events: last_ns,
        first_ns) and the damaged streams."""
        def total(kind):
            return sum(1 if c is None else c for b, e, c, k, s in self.ranges if k == kind)

        def bounded(b, e):
            if b is None and e is None:
                return b, e
            return (first_ns if b is None else b), (max(b, last_ns or b) if e is None else e)

        ranges = []
        for b, e, c, k, s in self.ranges:
            b, e = bounded(b, e)
            ranges.append({"begin_ns": b, "end_ns": e, "count": c, "kind": k, "stream": self._shown_name(s)})
        damaged = [{"stream": d["stream"], "kind": d["kind"], "packets": d["packets"],
                    "begin_ns": d["begin_ns"], "end_ns": d["end_ns"], "readable_until_ns": d["readable_until_ns"]}
                   | ({"bytes": d["bytes"], "cut_at": d["cut_at"]} if "cut_at" in d else {}) for d in self.damaged]
        return {"discarded_events": total("events"), "discarded_packets": total("packets"),
                "missing_packets": total("stream"), "damaged_streams": damaged, "ranges": ranges}

    def _shown_name(self, stream):
        return self.name(stream) if isinstance(stream, str) else None


class ThreadStreams:
    """thread -> the streams its latest events came from, as runs of consecutive events on one stream (the times
    of a run's first and last event, its stream): the streams of a refill's window [start, end] are those of the
    runs that overlap it. Bounded: RUNS_KEPT runs per thread; a window reaching back past them has unknown
    streams (None: every stream)."""

    def __init__(self):
        self._runs = {}                   # (vpid, vtid) -> deque of [first ts, last ts, stream], oldest first

    def saw(self, key, ts, stream):
        runs = self._runs.get(key)
        if runs is None:
            runs = self._runs[key] = collections.deque(maxlen=RUNS_KEPT)
        if runs and runs[-1][2] == stream:
            runs[-1][1] = ts
        else:
            runs.append([ts, ts, stream])

    def during(self, key, start, end):
        """The streams of key's events in [start, end] (a frozenset), or None when they are not known."""
        runs = self._runs.get(key)
        if not runs:
            return None
        out = set()
        for first, last, stream in reversed(runs):
            if first <= end and last >= start:
                out.add(stream)
            if first <= start:
                return frozenset(out)
        return None if len(runs) == runs.maxlen else frozenset(out)


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
