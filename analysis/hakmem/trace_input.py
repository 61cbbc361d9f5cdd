"""Trace input: the CTF trace under a folder checked and read with Babeltrace2 into the analysis core, and the one
sentence that says why a trace is unusable."""

import collections
import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path

from . import native

CTF_METADATA_MAGIC = 0x75D11D57
METADATA_HEADER = 37  # magic, uuid, checksum, content_size, packet_size, 3 schemes, major, minor
REASON_LIMIT = 240    # characters of a Babeltrace2 error quoted in a sentence
_BT2 = None


class TraceError(Exception):
    """Unusable input: one sentence for the user, exit status 2."""


def load_bt2():
    """The bt2 module, imported on first use (recording needs no Babeltrace2)."""
    global _BT2
    if _BT2 is None:
        import bt2
        _BT2 = bt2
    return _BT2


def read(path, analyzer, group=None):
    """Stream the trace(s) under path into analyzer's core (only group's, one of groups(path), when given); raise
    TraceError with one sentence when unusable, or when path holds several hosts' or sessions' traces and no group
    is named: one core keys threads by (vpid, vtid), which two machines reuse."""
    if group is None:
        group = select(path)[1]
    dirs = group.dirs
    work = None  # where the copies of streams cut inside a packet go (made only for those)
    try:
        # One source per flight-recorder snapshot: Babeltrace2 merges traces of one UUID into one, and snapshots
        # of one session share theirs, so their overlapping packets would become one stream's. Apart, they
        # overlap as traces, and the analysis feeds each event once.
        sources = collections.defaultdict(list)
        for d in dirs:
            try:
                metadata = (Path(d) / "metadata").read_bytes()
            except OSError as e:
                raise TraceError(f"cannot read {d}/metadata: {one_line(e.strerror or e)}") from None
            found, repairs = check_streams(d, metadata)
            if repairs and work is None:
                work = tempfile.mkdtemp(prefix=scratch_prefix(os.getpid()))
            read_as = repaired_copy(d, repairs, work) if repairs else os.path.abspath(d)
            for loss in found:
                analyzer.losses.stream_lost(loss, os.path.join(read_as, os.path.basename(loss["stream"])))
            if repairs:
                analyzer.losses.read_as(read_as, os.path.abspath(d))
            sources[next((q for q in [Path(d), *Path(d).parents] if q.name.startswith("snapshot-")), None)].append(
                read_as)
        # The CTF source named, not auto-discovered: Babeltrace2 2.0.4's auto-discovery aborts the whole process
        # (a library precondition, "API function called while current thread has an error") when a metadata file
        # does not parse, where the source itself returns an error.
        # The analysis core is the graph's sink (native.run): no event goes through Python.
        try:
            native.run(list(sources.values()), analyzer.core)
        except native.CoreMissing as e:
            raise TraceError(str(e)) from None
        except Exception as e:  # noqa: BLE001 — a damaged trace must still end in one sentence, never a traceback
            if analyzer.core.failure():  # a value the core cannot take, said as the analysis says it
                raise TraceError(f"cannot read {path}: {analyzer.core.failure()}") from None
            raise unreadable(path, e) from None
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def scratch_prefix(pid):
    """The name of the temporary folders process pid makes while it reads (see remove_scratch)."""
    return f"hakmem-trace-read-{pid}-"


def remove_scratch(pid):
    """Remove what process pid left in its temporary folders: one that Babeltrace2 aborted (guard) could not."""
    for d in Path(tempfile.gettempdir()).glob(scratch_prefix(pid) + "*"):
        shutil.rmtree(d, ignore_errors=True)


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


class Group:
    """The traces of one recording session on one host: what one analysis core reads (see groups)."""

    def __init__(self, host, session, created, dirs):
        self.host, self.session, self.created, self.dirs = host, session, created, dirs
        self.folder = None  # the highest folder under the path given holding this group's traces only

    @property
    def label(self):
        return f"host {self.host or '?'}, session {self.session or '?'}"


ENV_FIELD = re.compile(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|-?\w+)\s*;')


def trace_env(data):
    """The env block of a trace's metadata (data: the file's bytes) as a dict of strings; {} without one."""
    text = metadata_text(data)
    m = re.search(r"\benv\s*\{(.*?)\}\s*;", text or "", re.S)
    if not m:
        return {}
    return {k: v[1:-1].replace('\\"', '"').replace("\\\\", "\\") if v.startswith('"') else v
            for k, v in ENV_FIELD.findall(m.group(1))}


def groups(path):
    """The traces under path by (host, session): [Group], by host then session. The key is the trace metadata's
    own env (hostname, trace_name, trace_creation_datetime: the session daemon writes them, and they go wherever
    the trace is copied), not the folder layout, which depends on the folder given (a relay's OUTPUT, one
    OUTPUT/HOST, a `record -o` folder with no host level at all). A flight recorder's snapshots, and a per-PID
    session's traces, share their session's env, so each session stays one group; a trace without an env is
    keyed by its absence."""
    if path is None or not str(path).strip():
        raise TraceError("no trace folder given (the path is empty)")
    p = Path(path)
    if not p.exists():
        raise TraceError(f"{path} does not exist")
    if not p.is_dir():
        raise TraceError(f"{path} is not a folder: give the folder `hakmem-trace record` wrote (or a snapshot-* "
                         "folder in it)")
    by_key = collections.defaultdict(list)
    for d in trace_dirs(p, path):
        try:
            env = trace_env((Path(d) / "metadata").read_bytes())
        except OSError as e:
            raise TraceError(f"cannot read {d}/metadata: {one_line(e.strerror or e)}") from None
        by_key[(env.get("hostname"), env.get("trace_name"), env.get("trace_creation_datetime"))].append(d)
    found = [Group(*key, dirs) for key, dirs in sorted(by_key.items(), key=lambda kv: tuple(k or "" for k in kv[0]))]
    names = collections.Counter((g.host, g.session) for g in found)
    for g in found:
        if names[(g.host, g.session)] > 1:  # one session name created twice on a host: tell them apart
            g.session = f"{g.session or '?'} created {g.created}"
        g.folder = _own_folder(p, g, found)
    return found


def _own_folder(top, group, found):
    """The highest folder under top (top itself for a lone group) that holds group's traces and no other's."""
    if len(found) == 1:
        return str(top)
    others = [Path(d) for g in found if g is not group for d in g.dirs]
    own = Path(os.path.commonpath(group.dirs))
    while own.parent != top and top in own.parents and not any(own.parent in o.parents for o in others):
        own = own.parent
    return str(own)


CHOICES_SHOWN = 10  # groups named in a sentence that lists them


def _choice(g):
    """The options that name group g: a missing hostname or session name (a trace without an env) as "?", which
    no hostname or lttng session name can be."""
    return (f"--host {shlex.quote(g.host if g.host is not None else '?')} "
            f"--session {shlex.quote(g.session if g.session is not None else '?')}")


def _choices(found):
    shown = ", ".join(_choice(g) for g in found[:CHOICES_SHOWN])
    return shown + (f", ... ({len(found)} in all)" if len(found) > CHOICES_SHOWN else "")


def several_groups(path, found):
    """The sentence that refuses a tree of several hosts or sessions to an analysis that reads one, naming each
    as the --host/--session that selects it (see select)."""
    return (f"{path} holds the traces of {len(found)} hosts or sessions; this command reads one at a time (two "
            f"machines reuse process and thread ids): choose one with {_choices(found)}")


def select(path, host=None, session=None):
    """(name, group): the one group of groups(path) that host and session name (None: any; "?" names a missing
    one), read exactly as that group's own folder would be: name is what the analysis calls it, the path given for
    a folder of one group, else the group's folder. TraceError when none or several match."""
    found = groups(path)
    if host is None and session is None:
        if len(found) > 1:
            raise TraceError(several_groups(path, found))
        return path, found[0]
    picked = [g for g in found
              if (host is None or host == (g.host if g.host is not None else "?"))
              and (session is None or session == (g.session if g.session is not None else "?"))]
    asked = " ".join(f"--{k} {shlex.quote(v)}" for k, v in (("host", host), ("session", session)) if v is not None)
    if not picked:
        raise TraceError(f"{path} holds no traces of {asked}; it holds {len(found)} host(s) or session(s): "
                         f"{_choices(found)}")
    if len(picked) > 1:
        raise TraceError(f"{asked} names {len(picked)} sessions in {path} (this command reads one at a time): "
                         f"choose one with {_choices(picked)}")
    return (path if len(found) == 1 else picked[0].folder), picked[0]


def add_group_options(p):
    """--host and --session on the argparse parser p of a command that reads one group (see select)."""
    p.add_argument("--host", metavar="HOSTNAME", help="in a relay's tree of several hosts or sessions: read the "
                                                       "traces of this host only (its trace metadata's hostname)")
    p.add_argument("--session", metavar="NAME", help="in such a tree: read this session's traces only (for a host "
                                                     "with several)")


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


# ---- the stream files: what lttng wrote against what is there ----
#
# Babeltrace2 2.0.4 (src.ctf.fs) reads a trace folder's stream files as it finds them. It skips an empty stream
# file without a word, never notices a stream file that is missing (an LTTng index file names it, nobody reads
# the index of a stream that is not there), and a stream file that ends inside a packet makes the whole trace
# fail to open ("Failed to index CTF stream file"). A packet missing inside a stream is a gap in its
# packet_seq_num, which it reports as discarded packets. So before reading, each trace folder's streams are
# checked here: its stream files against LTTng's index (index/NAME.idx: what was written) and against their own
# packet headers (what is there). An emptied or missing stream, and a stream cut short, are losses that the
# analysis counts and shows; a stream cut inside a packet is read up to its last whole packet, from a copy.

PACKET_MAGIC = 0xC1FC1FC1
INDEX_MAGIC = 0xC1F1DCC1
INDEX_FIELDS = ("offset", "packet_size", "content_size", "timestamp_begin", "timestamp_end", "events_discarded",
                "stream_id", "stream_instance_id", "packet_seq_num")  # big-endian u64 each (v1.1: all nine)
INDEX_MIN_ENTRY = 7 * 8  # an index 1.0 entry: no stream_instance_id, no packet_seq_num
# The packet header and the beginning of the packet context as lttng-ust (2.x, CTF 1.8) declares them: magic,
# uuid, stream_id, stream_instance_id, then timestamp_begin, timestamp_end, content_size, packet_size,
# packet_seq_num, all aligned as they come. Only a trace whose metadata declares exactly this is walked packet by
# packet here (its byte offsets below); any other is left to the index alone.
LTTNG_HEADER = ("uint32_t magic;", "uint8_t uuid[16];", "uint32_t stream_id;", "uint64_t stream_instance_id;")
LTTNG_CONTEXT = ("uint64_clock_monotonic_t timestamp_begin;", "uint64_clock_monotonic_t timestamp_end;",
                 "uint64_t content_size;", "uint64_t packet_size;", "uint64_t packet_seq_num;")
PACKET_OFFSETS = {"timestamp_begin": 32, "timestamp_end": 40, "content_size": 48, "packet_size": 56,
                  "packet_seq_num": 64}
PACKET_PREFIX = 72    # the bytes of a packet up to the end of packet_seq_num


def metadata_text(data):
    """The TSDL text of a well-formed metadata file (see metadata_problem), or None."""
    if data.startswith(b"/* CTF"):
        return data.decode(errors="replace")
    order = "little" if data[:4] == CTF_METADATA_MAGIC.to_bytes(4, "little") else "big"
    parts, off = [], 0
    while off + METADATA_HEADER <= len(data):
        content = int.from_bytes(data[off + 24:off + 28], order)
        size = int.from_bytes(data[off + 28:off + 32], order)
        if size <= 0 or size % 8:
            return None
        parts.append(data[off + METADATA_HEADER:off + content // 8])
        off += size // 8
    return b"".join(parts).decode(errors="replace")


class Layout:
    """What of a trace's metadata the stream check needs: the byte order, whether its packets are laid out as
    lttng-ust's (so that they can be walked), and the clock that turns packet timestamps into ns from origin."""

    def __init__(self, text):
        self.order, self.walkable, self.clock = "little", False, None
        if text is None:
            return
        flat = " ".join(text.split())
        m = re.search(r"\btrace\s*\{[^}]*?byte_order\s*=\s*(le|be|little|big|network)\b", flat)
        if m:
            self.order = "little" if m.group(1) in ("le", "little") else "big"
        header = re.search(r"packet\.header\s*:=\s*struct\s*\{([^}]*)\}", flat)
        context = re.search(r"struct\s+packet_context\s*\{([^}]*)\}", flat)
        self.walkable = bool(header and context
                             and header.group(1).strip().startswith(" ".join(LTTNG_HEADER))
                             and context.group(1).strip().startswith(" ".join(LTTNG_CONTEXT)))
        clock = re.search(r"\bclock\s*\{([^}]*)\}", flat)
        if clock:
            fields = dict(re.findall(r"(\w+)\s*=\s*(-?\d+)\s*;", clock.group(1)))
            try:
                freq = int(fields.get("freq", 1_000_000_000))
                if freq > 0:
                    self.clock = (freq, int(fields.get("offset_s", 0)), int(fields.get("offset", 0)))
            except ValueError:
                pass

    def ns(self, cycles):
        """A packet timestamp (clock cycles) as ns from origin, as Babeltrace2 computes it; None without a clock."""
        if self.clock is None or cycles is None:
            return None
        freq, offset_s, offset = self.clock
        return offset_s * 1_000_000_000 + (offset + cycles) * 1_000_000_000 // freq


def read_index(path):
    """LTTng's index of one stream file: a list of packets (dicts of INDEX_FIELDS, sizes in bits), or None when
    there is no index file or it is not one."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if len(data) < 16 or int.from_bytes(data[0:4], "big") != INDEX_MAGIC:
        return None
    entry = int.from_bytes(data[12:16], "big")
    if entry < INDEX_MIN_ENTRY:
        return None
    names = INDEX_FIELDS[:entry // 8]
    return [{k: int.from_bytes(data[o + 8 * i:o + 8 * i + 8], "big") for i, k in enumerate(names)}
            for o in range(16, len(data) - entry + 1, entry)]


def walk_packets(path, size, layout):
    """The stream file's packets as its own headers tell: ([(offset, bytes, timestamp_begin, timestamp_end,
    packet_seq_num)] of the whole packets, the offset where they end, the header fields of a packet cut short
    there (a dict, or None when fewer than PACKET_PREFIX bytes of it remain), whether the walk was stopped by a
    damaged header); None where the trace's packets are not laid out as lttng-ust's."""
    if not layout.walkable:
        return None
    packets, off, partial, damaged = [], 0, None, False
    try:
        with open(path, "rb") as f:
            while off < size:
                f.seek(off)
                head = f.read(PACKET_PREFIX)
                fields = None
                if len(head) == PACKET_PREFIX and int.from_bytes(head[0:4], layout.order) == PACKET_MAGIC:
                    fields = {k: int.from_bytes(head[o:o + 8], layout.order) for k, o in PACKET_OFFSETS.items()}
                if fields is None:
                    damaged = len(head) == PACKET_PREFIX
                    break
                bits, content = fields["packet_size"], fields["content_size"]
                if bits == 0 or bits % 8 or content > bits or bits // 8 < PACKET_PREFIX:
                    damaged = True
                    break
                if off + bits // 8 > size:
                    partial = fields
                    break
                packets.append((off, bits // 8, fields["timestamp_begin"], fields["timestamp_end"],
                                fields["packet_seq_num"]))
                off += bits // 8
    except OSError:
        return None
    return packets, off, partial, damaged


def check_streams(folder, metadata):
    """The stream files of one trace folder checked against LTTng's index and their own packet headers:
    (losses, repairs). losses: one dict per stream that lost packets the analysis must count (stream, kind —
    emptied, missing, cut_short, packets_missing —, packets (None: not known), begin_ns, end_ns (None: not
    known), readable_until_ns, and for a cut bytes and cut_at); repairs: {stream file: bytes to read} for the
    streams cut inside a packet. An index that does not read as one lttng wrote, or that disagrees with the
    packets that are there (a corrupt or stale one), is not believed."""
    layout = Layout(metadata_text(metadata))
    folder = Path(os.path.abspath(folder))  # streams named as Babeltrace2 names them
    try:
        files = {p.name: p for p in folder.iterdir()
                 if p.is_file() and p.name != "metadata" and not p.name.startswith(".")}
        index_dir = folder / "index"
        indexed = {p.name[:-4]: p for p in index_dir.iterdir() if p.is_file() and p.name.endswith(".idx")} \
            if index_dir.is_dir() else {}
    except OSError as e:
        raise TraceError(f"cannot list the stream files of {folder}: {one_line(e.strerror or e)}") from None
    losses, repairs = [], {}
    for name in sorted(set(files) | set(indexed), key=_stream_order):
        stream = str(folder / name)
        index = read_index(indexed[name]) if name in indexed else None
        if index is not None and not _consistent(index):
            index = None
        if name not in files:
            if index:
                losses.append(_lost_packets(stream, "missing", index, layout, None, len(index)))
            continue
        try:
            size = files[name].stat().st_size
        except OSError:
            continue
        if size == 0:
            if index is None or index:
                losses.append(_lost_packets(stream, "emptied", index or [], layout, None,
                                            len(index) if index else None))
            continue
        walk = walk_packets(files[name], size, layout)
        if walk is not None:
            packets, end, partial, damaged = walk
            if index and any((e["offset"], e["packet_size"] // 8, e.get("packet_seq_num", p[4])) != p[:2] + p[4:]
                             for e, p in zip(index, packets)):
                index = None
            if partial is not None and index:
                # A packet reaching past the end of the file: the file was cut short only if the index, written
                # as the packets were, says the file is longer; else its header is damaged.
                listed = {e["offset"]: e["packet_size"] for e in index}
                reach = max(e["offset"] + e["packet_size"] // 8 for e in index)
                damaged = reach <= size or listed.get(end, partial["packet_size"]) != partial["packet_size"]
            if damaged:
                continue  # a header that is not one: the file is corrupt, and Babeltrace2 says so
            # Packets the index lists that are not there: after the last one there (a stream cut short), before
            # the first (its beginning gone). A gap between two that are there is Babeltrace2's discarded packets.
            seqs = [p[4] for p in packets]
            if index and all("packet_seq_num" in e for e in index):
                tail = [e for e in index if not seqs or e["packet_seq_num"] > seqs[-1]]
                head = [e for e in index if seqs and e["packet_seq_num"] < seqs[0]]
            else:
                tail, head = [e for e in index or [] if e["offset"] >= end], []
            if head:
                losses.append(_lost_packets(stream, "packets_missing", head, layout, None, len(head)))
            if end < size:
                repairs[stream] = end
            if end < size or tail:
                readable = layout.ns(packets[-1][3]) if packets else None
                if tail:
                    loss = _lost_packets(stream, "cut_short", tail, layout, readable, len(tail))
                else:  # no index: the packet cut short, and whatever followed it
                    begin = layout.ns(partial["timestamp_begin"]) if partial else readable
                    loss = {"stream": stream, "kind": "cut_short", "packets": None, "begin_ns": begin,
                            "end_ns": None, "readable_until_ns": readable}
                loss["bytes"], loss["cut_at"] = size, end
                losses.append(loss)
            continue
        if index:  # packets not walkable: the index alone says how far the file should reach
            whole = [e for e in index if (e["offset"] + e["packet_size"] // 8) <= size]
            if len(whole) < len(index):
                end = max((e["offset"] + e["packet_size"] // 8 for e in whole), default=0)
                readable = layout.ns(whole[-1]["timestamp_end"]) if whole else None
                loss = _lost_packets(stream, "cut_short", index[len(whole):], layout, readable,
                                     len(index) - len(whole))
                loss["bytes"], loss["cut_at"] = size, end
                losses.append(loss)
                if end < size:
                    repairs[stream] = end
    return losses, repairs


def note_stream_losses(analyzer, folders):
    """For a reader that did not choose its input (the plugin's sink): the losses the stream check finds in the
    trace folders the streams read came from (a stream cut inside a packet never reaches it: Babeltrace2's
    source refuses the trace first)."""
    for folder in sorted(set(folders)):
        try:
            metadata = (Path(folder) / "metadata").read_bytes()
        except OSError:
            continue
        for loss in check_streams(folder, metadata)[0]:
            analyzer.losses.stream_lost(loss, loss["stream"])


def _consistent(index):
    """Whether an index reads as lttng writes one: packets back to back from offset 0, each of whole bytes with
    its content inside, sequence numbers rising, times in order."""
    off, seq, ts = 0, -1, 0
    for e in index:
        bits = e["packet_size"]
        if e["offset"] != off or bits <= 0 or bits % 8 or e["content_size"] > bits \
                or e["timestamp_begin"] > e["timestamp_end"] or e["timestamp_begin"] < ts \
                or e.get("packet_seq_num", seq + 1) <= seq:
            return False
        off += bits // 8
        seq, ts = e.get("packet_seq_num", seq + 1), e["timestamp_begin"]
    return True


def _stream_order(name):
    """Stream files in CPU order (hakmem_2 before hakmem_10)."""
    m = re.match(r"(.*?)(\d+)$", name)
    return (m.group(1), int(m.group(2)), "") if m else (name, -1, name)


def _lost_packets(stream, kind, entries, layout, readable, count):
    """A stream's loss of the packets its index lists in entries (count of them; None: not known)."""
    begins = [layout.ns(e["timestamp_begin"]) for e in entries]
    ends = [layout.ns(e["timestamp_end"]) for e in entries]
    return {"stream": stream, "kind": kind, "packets": count,
            "begin_ns": min(begins) if begins and None not in begins else readable,
            "end_ns": max(ends) if ends and None not in ends else None, "readable_until_ns": readable}


def repaired_copy(folder, repairs, work):
    """A folder under work that Babeltrace2 can read in place of folder: every file a symbolic link to the
    original except the stream files cut inside a packet, copied up to their last whole packet (without their
    index, so that Babeltrace2 indexes what is there). Returns its path."""
    folder, dest = Path(folder), Path(work) / f"trace-{len(list(Path(work).iterdir()))}"
    dest.mkdir()
    cut = {Path(s).name: n for s, n in repairs.items()}
    for p in folder.iterdir():
        if p.name in cut:
            with open(p, "rb") as src, open(dest / p.name, "wb") as dst:
                _copy(src, dst, cut[p.name])
        elif p.name == "index" and p.is_dir():
            (dest / "index").mkdir()
            for q in p.iterdir():
                if not (q.name.endswith(".idx") and q.name[:-4] in cut):
                    (dest / "index" / q.name).symlink_to(q.resolve())
        else:
            (dest / p.name).symlink_to(p.resolve())
    return str(dest)


def _copy(src, dst, n):
    """The first n bytes of src into dst, in the kernel where it can (a reflink or an in-kernel copy)."""
    done = 0
    try:
        while done < n:
            k = os.copy_file_range(src.fileno(), dst.fileno(), n - done)
            if k == 0:
                break
            done += k
        return
    except (OSError, AttributeError):
        pass
    src.seek(done)
    dst.seek(done)
    while done < n:
        chunk = src.read(min(1 << 20, n - done))
        if not chunk:
            break
        dst.write(chunk)
        done += len(chunk)
