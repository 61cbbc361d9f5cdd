"""Loss accounting as the report gives it: the stream check's losses (streams emptied, missing, cut short) handed
to the core, which keeps every loss per stream and judges each refill's window against them
(analysis/native/losses.c), and the report's lost_events made from the core's ranges."""

import os


class Losses:
    """The stream check's losses of one analysis (trace_input.check_streams), told to its core. A stream is its
    file's name, as Babeltrace2 names the stream it reads from it."""

    def __init__(self, core):
        self.core = core
        self.damaged = []                 # the stream check's losses (dicts, see trace_input.check_streams)
        self._shown = {}                  # folder read in place of a damaged trace's folder -> that folder

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

    def stream_lost(self, loss, stream):
        """A loss the stream check found (loss["stream"] the file, stream the name Babeltrace2 gives the stream
        read from it)."""
        self.damaged.append(loss)
        self.core.stream_lost(stream, loss["begin_ns"], loss["end_ns"], loss["packets"])

    def report(self, ranges, first_ns=None, last_ns=None):
        """The report's lost_events from the core's ranges ([begin, end, count, kind, stream], in the order
        reported): totals by kind (a loss of unknown count counts 1), every range (one reaching to the end of the
        trace, or from its beginning, ends or begins with the trace's events: last_ns, first_ns) and the damaged
        streams."""
        def total(kind):
            return sum(1 if c is None else c for b, e, c, k, s in ranges if k == kind)

        def bounded(b, e):
            if b is None and e is None:
                return b, e
            return (first_ns if b is None else b), (max(b, last_ns or b) if e is None else e)

        out = []
        for b, e, c, k, s in ranges:
            b, e = bounded(b, e)
            out.append({"begin_ns": b, "end_ns": e, "count": c, "kind": k, "stream": self.name(s)})
        damaged = [{"stream": d["stream"], "kind": d["kind"], "packets": d["packets"],
                    "begin_ns": d["begin_ns"], "end_ns": d["end_ns"], "readable_until_ns": d["readable_until_ns"]}
                   | ({"bytes": d["bytes"], "cut_at": d["cut_at"]} if "cut_at" in d else {}) for d in self.damaged]
        return {"discarded_events": total("events"), "discarded_packets": total("packets"),
                "missing_packets": total("stream"), "damaged_streams": damaged, "ranges": out}
