"""Trace input: the CTF trace under a folder checked and read with Babeltrace2, each event decoded by a read plan,
and the one sentence that says why a trace is unusable."""

import collections
import os

from . import catalogue

PREFIX = catalogue.PROVIDER + ":"
MALFORMED, PUBLIC = object(), object()
CTF_METADATA_MAGIC = 0x75D11D57
METADATA_HEADER = 37  # magic, uuid, checksum, content_size, packet_size, 3 schemes, major, minor
REASON_LIMIT = 240    # characters of a Babeltrace2 error quoted in a sentence
_BT2 = None
_NB = None


class TraceError(Exception):
    """Unusable input: one sentence for the user, exit status 2."""


def load_bt2():
    """The bt2 module, imported on first use (recording needs no Babeltrace2)."""
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
            load_bt2()
            from bt2 import native_bt
            nb = native_bt._native_bt
            for f in ("message_event_borrow_event_const", "event_borrow_class_const", "event_borrow_payload_field_const",
                      "event_borrow_common_context_field_const", "field_structure_borrow_member_field_by_index_const",
                      "field_integer_signed_get_value", "field_integer_unsigned_get_value", "field_string_get_value",
                      "message_event_borrow_default_clock_snapshot_const", "clock_snapshot_get_ns_from_origin",
                      "event_borrow_stream_const"):
                getattr(nb, f)
            _NB = nb
        except Exception:  # noqa: BLE001 — any other bt2 build: the public API only
            pass
    return _NB or None


class EventReader:
    """Decodes event messages of the catalogue: (name, ts, vpid, vtid, procname, fields), None (not a catalogue
    event) or MALFORMED (a catalogue event lacking a catalogue field). One read plan per event class."""

    def __init__(self):
        self._plans = {}                  # event class address -> how to read it (see _plan)

    def decode(self, msg):
        return self._decode_native(msg) if _native() is not None else self._decode(msg)

    def stream(self, msg):
        """The address of the stream an event message's event belongs to (as bt2's Stream.addr gives it)."""
        nb = _native()
        if nb is not None:
            return int(nb.event_borrow_stream_const(nb.message_event_borrow_event_const(msg._ptr)))
        return msg.event.stream.addr

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
        bt2 = load_bt2()
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


def read(path, analyzer):
    """Stream the trace(s) under path into analyzer.feed(); raise TraceError with one sentence when unusable."""
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
    # One source per flight-recorder snapshot: Babeltrace2 merges traces of one UUID into one, and snapshots of
    # one session share theirs, so their overlapping packets would become one stream's. Apart, they overlap as
    # traces, and the analysis feeds each event once.
    groups = collections.defaultdict(list)
    for d in dirs:
        groups[next((q for q in [Path(d), *Path(d).parents] if q.name.startswith("snapshot-")), None)].append(d)
    sources = [bt2.ComponentSpec.from_named_plugin_and_component_class("ctf", "fs", {"inputs": g})
               for g in groups.values()]
    try:
        for msg in bt2.TraceCollectionMessageIterator(sources):
            analyzer.feed(msg)
    except Exception as e:  # noqa: BLE001 — a damaged trace must still end in one sentence, never a traceback
        raise unreadable(path, e) from None


def unreadable(name, e):
    """The TraceError for an exception raised while the trace called name was read (by Babeltrace2, or by the
    analysis of what it read)."""
    if isinstance(e, load_bt2()._Error):
        reason = _bt2_reason(e)
        return TraceError(f"babeltrace2 cannot read {name}: the trace is truncated or corrupt"
                          + (f" ({reason})" if reason else ""))
    if isinstance(e, (ValueError, OSError, RecursionError, MemoryError)):
        return TraceError(f"cannot read {name}: {one_line(e)}")
    return TraceError(f"cannot analyse {name}: {type(e).__name__}: {one_line(e)}")


def check_usable(analyzer, name):
    """Raise TraceError when what was read of the trace called name cannot be analysed: events that do not match
    the catalogue, no hakmem event, or events without the context that tells threads apart."""
    if analyzer.malformed:
        event, n = analyzer.malformed.most_common(1)[0]
        raise TraceError(f"{name} does not match the hakmem event catalogue ({n} hakmem:{event} event(s) lack a "
                         "catalogue field): a corrupt trace, or one from another hakmem version")
    if analyzer.hakmem_events == 0:
        raise TraceError(f"no hakmem events in {name}: was the program run on libhakmem-trace.so, "
                         "with the hakmem events enabled?")
    if analyzer.no_thread_context:
        raise TraceError(f"{analyzer.no_thread_context} hakmem event(s) in {name} lack the vpid/vtid context, without "
                         "which one thread's refill cannot be told from another's: record with `hakmem-trace record`, "
                         "or add `lttng add-context -u -t vpid -t vtid -t procname` to the session")


def trace_dirs(p, path):
    """The folders under p holding a CTF trace (a `metadata` file), each checked first: Babeltrace2 2.0.4 never
    returns from a metadata file that ends inside a packet (a trace copied while written, or cut short)."""
    dirs, foreign = [], []
    try:
        found = sorted(m for m in p.rglob("metadata") if m.is_file())
    except OSError as e:
        raise TraceError(f"cannot search {path} for a trace: {one_line(e)}") from None
    for m in found:
        try:
            data = m.read_bytes()
        except OSError as e:
            raise TraceError(f"cannot read {m}: {one_line(e.strerror or e)}") from None
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
        causes = [one_line(c.message) for c in e]
    except Exception:  # noqa: BLE001 — only the text is needed
        causes = []
    if not causes:
        causes = [one_line(line) for line in str(e).splitlines() if line.strip()][-1:]
    named = [c for c in causes if "`" in c]
    return one_line((named or causes or [""])[0], REASON_LIMIT)


def one_line(e, limit=None):
    """str(e) on one line (its whitespace runs made single spaces), cut to limit characters with "..." if longer."""
    line = " ".join(str(e).split())
    return line if limit is None or len(line) <= limit else line[:limit - 3] + "..."
