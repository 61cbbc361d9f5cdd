"""tracetest.py — shared helpers for the tests in tests/trace (run with /usr/bin/python3: bt2 imports only there).

    import tracetest as tt
    tt.require_tracing()                              # exit 77 (skipped) where lttng or bt2 is truly absent
    status, trace = tt.record(["prog", "arg"], lib=args.lib)
    events = tt.read_events(trace, names={"hakmem:refill_enter"})
    tt.check(tt.count_discarded(trace) == 0, "events were lost")

An event is a plain dict: name ("hakmem:oom"), ts (ns from origin), vpid, vtid, procname (None where the trace
has no such context), cpu_id, then the payload fields by name (integers as int, enumerations as their label
string; a payload field called name or ts would become field_name / field_ts). Event names may be given short
("oom") wherever a function takes them.

Temporary folders made by workdir() are removed when the test passes and kept (their path is printed) when it
fails. HAKMEM_KEEP_TRACES=1 keeps them always.
"""

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HAKMEM_TRACE = REPO / "analysis" / "hakmem-trace"
sys.path.insert(0, str(REPO / "analysis"))
from hakmem import catalogue  # noqa: E402  (the event catalogue, mirrored from tracepoints/hakmem_tp.h)
PYTHON = "/usr/bin/python3"
SKIP = 77

_workdirs = []
_failed = False


# ---- outcome ----

def fail(msg):
    """The test failed: one message, exit status 1."""
    global _failed
    _failed = True
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def skip(msg):
    """The test cannot run here (ctest's SKIP_RETURN_CODE 77)."""
    print(f"SKIP: {msg}", flush=True)
    sys.exit(SKIP)


def check(cond, msg):
    if not cond:
        fail(msg)


def ok(msg):
    print(f"ok: {msg}", flush=True)


# ---- environment ----

def arguments(**required):
    """Parse --lib (default $HAKMEM_TRACE_LIB) and the required options given as name=help; skip where tracing is
    not installed; return the arguments with args.lib resolved to an existing libhakmem-trace.so."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", help="libhakmem-trace.so (default $HAKMEM_TRACE_LIB)")
    for name, help_text in required.items():
        ap.add_argument("--" + name.replace("_", "-"), required=True, help=help_text)
    args = ap.parse_args()
    require_tracing()
    args.lib = trace_library(args.lib)
    return args


def require_tracing():
    """Skip where LTTng or the Babeltrace2 bindings are not installed (CI installs them: there the tests run)."""
    for tool in ("lttng", "lttng-sessiond"):
        if shutil.which(tool) is None:
            skip(f"{tool} not found (apt-get install lttng-tools liblttng-ust-dev)")
    try:
        import bt2  # noqa: F401
    except ImportError:
        skip(f"the bt2 module does not import in {sys.executable} (apt-get install python3-bt2; run with {PYTHON})")


def trace_library(explicit=None):
    """libhakmem-trace.so: the path given, else $HAKMEM_TRACE_LIB; failing (not skipping) when it does not exist."""
    lib = explicit or os.environ.get("HAKMEM_TRACE_LIB")
    if not lib:
        fail("no libhakmem-trace.so given: pass --lib PATH or set HAKMEM_TRACE_LIB")
    if not Path(lib).is_file():
        fail(f"{lib} does not exist: build the trace preset (cmake --build --preset trace)")
    return str(Path(lib).absolute())


def compiled_events():
    """Short names of the events the library under test compiles in: $HAKMEM_TRACE_COMPILED_EVENTS (set by
    tests/trace/CMakeLists.txt, comma-separated), else the whole catalogue."""
    spec = os.environ.get("HAKMEM_TRACE_COMPILED_EVENTS")
    if not spec:
        return set(catalogue.EVENTS)
    names = {n.strip() for n in spec.split(",") if n.strip()}
    unknown = names - set(catalogue.EVENTS)
    if unknown:
        fail(f"HAKMEM_TRACE_COMPILED_EVENTS names events not in the catalogue: {sorted(unknown)}")
    return names


def workdir(prefix="hakmem-tracetest-"):
    """A new private temporary folder, removed at exit if the test passed."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    _workdirs.append(d)
    return d


@atexit.register
def _cleanup():
    keep = _failed or os.environ.get("HAKMEM_KEEP_TRACES") == "1"
    for d in _workdirs:
        if keep:
            print(f"(kept {d})", flush=True)
        else:
            shutil.rmtree(d, ignore_errors=True)


# ---- the command ----

def cli(*args, timeout=300):
    """`hakmem-trace ARGS...`'s standard output; the test fails unless it exits 0."""
    out = subprocess.run([PYTHON, str(HAKMEM_TRACE), *map(str, args)], capture_output=True, text=True,
                         timeout=timeout)
    check(out.returncode == 0, f"hakmem-trace {' '.join(map(str, args))}: exit {out.returncode}: {out.stderr[-500:]}")
    return out.stdout


# ---- recording ----

def record(command, *, lib=None, output=None, options=(), env=None, timeout=None):
    """Run `hakmem-trace record [options] -o OUTPUT -- command...`; return (returncode, trace_dir).

    returncode is hakmem-trace's exit status: the command's own (128+N for a signal), 2 when hakmem-trace
    itself could not record. trace_dir is the folder given to -o (a new workdir() when output is None);
    with --flight-recorder it holds snapshot-* folders, with --set-url nothing. hakmem-trace's and the
    command's output go to this process's stdout/stderr. On timeout (seconds) hakmem-trace gets SIGINT,
    which stops its session (and the daemon it started) before the test fails. hakmem-trace itself
    serialises recordings of one user (its lock file); ctest's RESOURCE_LOCK keeps tests of one run apart.
    """
    trace_dir = Path(output) if output is not None else workdir("hakmem-trace-")
    argv = [PYTHON, str(HAKMEM_TRACE), "record", "--lib", trace_library(lib), "-o", str(trace_dir),
            *options, "--", *[str(c) for c in command]]
    print("+ " + " ".join(argv), flush=True)
    proc = subprocess.Popen(argv, env=env)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        fail(f"hakmem-trace record did not finish within {timeout} s: {' '.join(map(str, command))}")
    return rc, trace_dir


def refill_paths(events):
    """The decisions of each refill, by (vpid, vtid, seq), in trace order: the events carrying a seq but the oom, the
    census, the exit totals and the stacks (call_stack has the seq of the refusal or OOM it precedes)."""
    import collections
    paths = collections.defaultdict(list)
    for e in events:
        if not e["name"].startswith("hakmem:oom") and e["name"] != "hakmem:call_stack" and "seq" in e:
            paths[(e["vpid"], e["vtid"], e["seq"])].append(e)
    return paths


def find_traces(root):
    """The CTF traces under root: every folder holding a `metadata` file, sorted."""
    return sorted({p.parent for p in Path(root).rglob("metadata") if p.is_file()})


# ---- reading ----

class Trace:
    """What read_trace() found: events (list of dicts), discarded_events, discarded_packets."""

    def __init__(self):
        self.events = []
        self.discarded_events = 0
        self.discarded_packets = 0

    def named(self, name):
        """The events called name ("hakmem:oom", or just "oom")."""
        name = full_name(name)
        return [e for e in self.events if e["name"] == name]


def full_name(name):
    """"oom" -> "hakmem:oom"; a name with a provider stays as it is."""
    return name if ":" in name else catalogue.full_name(name)


def _value(field):
    import bt2
    if hasattr(field, "labels"):  # enumeration (before integer: it is one too)
        labels = list(field.labels)
        if len(labels) == 1:
            return labels[0]
        return "|".join(sorted(labels)) if labels else int(field)
    if isinstance(field, bt2._IntegerFieldConst):
        return int(field)
    if isinstance(field, bt2._StringFieldConst):
        return str(field)
    if isinstance(field, bt2._RealFieldConst):
        return float(field)
    if isinstance(field, bt2._StructureFieldConst):
        return {k: _value(v) for k, v in field.items()}
    if isinstance(field, bt2._ArrayFieldConst):
        return [_value(v) for v in field]
    if isinstance(field, bt2._BoolFieldConst):
        return bool(field)
    return str(field)


def event_dict(msg):
    """One bt2 event message as a plain dict."""
    ev = msg.event
    d = {"name": ev.name, "ts": msg.default_clock_snapshot.ns_from_origin,
         "vpid": None, "vtid": None, "procname": None, "cpu_id": None}
    ctx = ev.common_context_field
    if ctx is not None:
        for k, v in ctx.items():
            d[k] = _value(v)
    try:
        pctx = ev.packet.context_field
        if pctx is not None and "cpu_id" in pctx:
            d["cpu_id"] = int(pctx["cpu_id"])
    except bt2_errors():
        pass
    if ev.payload_field is not None:
        for k, v in ev.payload_field.items():
            if k in ("name", "ts"):
                k = "field_" + k
            d[k] = _value(v)
    return d


def bt2_errors():
    import bt2
    return (bt2._Error, AttributeError, KeyError)


def read_trace(path, names=None):
    """Every event (only those whose name is in `names`, if given) and the loss counts of the trace(s) under path.

    Works for a session folder, a snapshot folder or a relayd output folder (every CTF trace found below path is
    read, merged in time order). Discarded-events and discarded-packets messages are counted (a count the tracer
    does not know counts as 1): snapshots routinely start with lost packets.
    """
    import bt2
    path = Path(path)
    if names is not None:
        names = {full_name(n) for n in names}
    if not find_traces(path):
        fail(f"no CTF trace (no metadata file) under {path}")
    t = Trace()
    try:
        for msg in bt2.TraceCollectionMessageIterator(str(path)):
            if isinstance(msg, bt2._EventMessageConst):
                if names is None or msg.event.name in names:
                    t.events.append(event_dict(msg))
            elif isinstance(msg, bt2._DiscardedEventsMessageConst):
                t.discarded_events += msg.count if msg.count is not None else 1
            elif isinstance(msg, bt2._DiscardedPacketsMessageConst):
                t.discarded_packets += msg.count if msg.count is not None else 1
    except bt2._Error as e:
        fail(f"babeltrace2 could not read {path}: {e}")
    return t


def read_events(path, names=None):
    """The events of the trace(s) under path as a list of dicts, in time order."""
    return read_trace(path, names).events


def count_discarded(path, packets=False):
    """Discarded events in the trace(s) under path (with packets=True: discarded packets)."""
    t = read_trace(path, names=())
    return t.discarded_packets if packets else t.discarded_events


# ---- processes ----

from hakmem.record import lttng_daemons  # noqa: E402,F401  (re-exported for the tests)
