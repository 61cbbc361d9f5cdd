"""The analysis core (analysis/native, built as hakmem-analysis-core.so): found, loaded with ctypes, and run as the
sink of a Babeltrace2 graph. Every event is read and judged there, at the speed Babeltrace2 decodes; Python only
shapes its result (paths.Analyzer.finish)."""

import ctypes
import json
import os
from pathlib import Path

LIB_NAME = "hakmem-analysis-core.so"
REPO = Path(__file__).resolve().parents[2]
# Where a build puts it (one per preset; any will do: the core does not depend on how hakmem was built), then where
# `cmake --install` puts it (next to the libraries).
PRESETS = ("trace", "release", "trace-failures", "debug", "asan", "tsan")
_LIB = None
_PLUGIN = None
# The catalogue events the core also passes through whole (aux_events.c), and its field kinds (enum hk_aux_kind).
AUX_HAKMEM = ("call_stack", "heap_sample", "heap_sample_free")
AUX_INT, AUX_UINT, AUX_STR, AUX_SEQ = range(4)


class CoreMissing(Exception):
    """The core library is not built: a sentence for the user."""


def library_path():
    """The core library: $HAKMEM_ANALYSIS_CORE, a build tree's (the newest), or an installed one."""
    explicit = os.environ.get("HAKMEM_ANALYSIS_CORE")
    if explicit:
        if not Path(explicit).is_file():
            raise CoreMissing(f"HAKMEM_ANALYSIS_CORE={explicit}: no such file")
        return str(Path(explicit).resolve())
    built = [p for p in (REPO / "build" / d / LIB_NAME for d in PRESETS) if p.is_file()]
    if built:
        return str(max(built, key=lambda p: p.stat().st_mtime).resolve())
    # Installed (cmake --install): this package in PREFIX/share/hakmem/analysis/hakmem, the core in PREFIX/lib (or
    # PREFIX/lib/<multiarch>); then the system's library folders.
    prefixes = [*Path(__file__).resolve().parents[1:6], Path("/usr/local"), Path("/usr")]
    for p in prefixes:
        for found in [p / "lib" / LIB_NAME, *sorted((p / "lib").glob(f"*/{LIB_NAME}"))]:
            if found.is_file():
                return str(found.resolve())
    raise CoreMissing(f"{LIB_NAME} not found: build it (cmake --preset trace && cmake --build --preset trace) or "
                      "set HAKMEM_ANALYSIS_CORE")


def _lib():
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(library_path())
        lib.hk_core_new.restype = ctypes.c_void_p
        lib.hk_core_new.argtypes = [ctypes.c_int64]
        lib.hk_core_free.argtypes = [ctypes.c_void_p]
        lib.hk_core_message.restype = ctypes.c_int
        lib.hk_core_message.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.hk_core_failure.restype = ctypes.c_char_p
        lib.hk_core_failure.argtypes = [ctypes.c_void_p]
        lib.hk_core_stream_lost.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int64,
                                            ctypes.c_int, ctypes.c_int64, ctypes.c_int, ctypes.c_int64]
        lib.hk_core_result.restype = ctypes.c_void_p
        lib.hk_core_result.argtypes = [ctypes.c_void_p]
        lib.hk_core_free_string.argtypes = [ctypes.c_void_p]
        lib.hk_core_event.restype = ctypes.c_int
        lib.hk_core_event.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                      ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p),
                                      ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int),
                                      ctypes.POINTER(ctypes.c_char_p)]
        lib.hk_core_aux_event.restype = ctypes.c_int
        lib.hk_core_aux_event.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64,
                                          ctypes.c_int64, ctypes.c_char_p, ctypes.c_int,
                                          ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_int),
                                          ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_char_p),
                                          ctypes.POINTER(ctypes.POINTER(ctypes.c_int64)),
                                          ctypes.POINTER(ctypes.c_int64)]
        lib.hk_core_declare.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.hk_core_explainers_state.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                                 ctypes.POINTER(ctypes.c_int64)]
        lib.hk_core_limits.argtypes = [ctypes.POINTER(ctypes.c_int64)]
        lib.hk_core_ooms_waiting.restype = ctypes.c_int64
        lib.hk_core_ooms_waiting.argtypes = [ctypes.c_void_p]
        lib.hk_core_take_ooms.restype = ctypes.c_void_p
        lib.hk_core_take_ooms.argtypes = [ctypes.c_void_p]
        _LIB = lib
    return _LIB


class Core:
    """One analysis: fed messages (the graph's sink, or feed() from a Python sink), then asked for its result."""

    def __init__(self, timeline_buckets=0):
        self._lib = _lib()
        self.ptr = self._lib.hk_core_new(int(timeline_buckets))
        if not self.ptr:
            raise MemoryError("cannot allocate the analysis core")
        self._result = None

    def __del__(self):
        if getattr(self, "ptr", None):
            self._lib.hk_core_free(self.ptr)
            self.ptr = None

    def feed(self, msg):
        """One bt2 message (a Python sink's): its native message handed to the core."""
        if self._lib.hk_core_message(self.ptr, int(msg._ptr)) != 0:
            raise ValueError(self.failure())

    def event(self, name, ts, vpid, vtid, procname, fields):
        """A crafted event (a test's, not read from a trace): fields by name, integers or enumeration labels (a
        stack's `frames` a list of integers). A catalogue event by its short name; lttng-ust's state dump and dl
        events by their full names. Stacks and heap samples go both to the analysis and through it (aux)."""
        if ":" in name:
            self._aux_event(name, ts, vpid, vtid, procname, fields)
            return
        if name in AUX_HAKMEM:
            self._aux_event(f"hakmem:{name}", ts, vpid, vtid, procname, fields)
            fields = {k: v for k, v in fields.items() if not isinstance(v, (list, tuple))}
        n = len(fields)
        keys = (ctypes.c_char_p * n)(*(k.encode() for k in fields))
        ints = [v if isinstance(v, int) else 0 for v in fields.values()]
        values = (ctypes.c_int64 * n)(*(v - (1 << 64) if v >= 1 << 63 else v for v in ints))
        uns = (ctypes.c_int * n)(*(v >= 1 << 63 for v in ints))
        labels = (ctypes.c_char_p * n)(*(v.encode() if isinstance(v, str) else None for v in fields.values()))
        if self._lib.hk_core_event(self.ptr, name.encode(), ts, vpid, vtid, procname.encode() if procname else None,
                                   n, keys, values, uns, labels) != 0:
            raise ValueError(f"not a catalogue event: {name}")

    def _aux_event(self, name, ts, vpid, vtid, procname, fields):
        n = len(fields)
        keys = (ctypes.c_char_p * n)(*(k.encode() for k in fields))
        kinds, ints, strs, seqs, lens = [], [], [], [], []
        for v in fields.values():
            if isinstance(v, str):
                kinds.append(AUX_STR)
            elif isinstance(v, (list, tuple)):
                kinds.append(AUX_SEQ)
            else:
                kinds.append(AUX_UINT if v >= 1 << 63 else AUX_INT)
            ints.append(_i64(v) if isinstance(v, int) else 0)
            strs.append(v.encode() if isinstance(v, str) else None)
            seq = list(v) if isinstance(v, (list, tuple)) else []
            seqs.append((ctypes.c_int64 * max(len(seq), 1))(*(_i64(x) for x in seq)))
            lens.append(len(seq))
        seq_ptrs = (ctypes.POINTER(ctypes.c_int64) * n)(*(ctypes.cast(a, ctypes.POINTER(ctypes.c_int64))
                                                         for a in seqs))
        if self._lib.hk_core_aux_event(self.ptr, name.encode(), ts, vpid, vtid,
                                       procname.encode() if procname else None, n, keys,
                                       (ctypes.c_int * n)(*kinds), (ctypes.c_int64 * n)(*ints),
                                       (ctypes.c_char_p * n)(*strs), seq_ptrs, (ctypes.c_int64 * n)(*lens)) != 0:
            raise ValueError(f"not an event the core passes through: {name}")

    def declare(self, name):
        """An event name the trace would declare (crafted input)."""
        self._lib.hk_core_declare(self.ptr, name.encode())

    def explainers_state(self, vpid, cls):
        """(slots waiting, refills holding slots, chunks kept for vpid's class cls): the explainers' memory."""
        out = (ctypes.c_int64 * 3)()
        self._lib.hk_core_explainers_state(self.ptr, vpid, cls, out)
        return tuple(out)

    def failure(self):
        return self._lib.hk_core_failure(self.ptr).decode(errors="replace")

    def stream_lost(self, stream, begin, end, packets):
        self._lib.hk_core_stream_lost(self.ptr, os.fsencode(stream), begin is not None, begin or 0,
                                      end is not None, end or 0, packets is not None, packets or 0)

    def result(self):
        """The core's analysis (result.c), computed once, when the input has ended."""
        if self._result is None:
            self._result = self._json(self._lib.hk_core_result(self.ptr))
        return self._result

    def take_ooms(self):
        """While the input goes on (a live session): the OOMs listed since the last take (result.c's
        hk_core_take_ooms: n_ooms, unlisted, declared, ooms, aux), which the core then lets go; None when there
        are none."""
        if not self._lib.hk_core_ooms_waiting(self.ptr):
            return None
        return self._json(self._lib.hk_core_take_ooms(self.ptr))

    def _json(self, p):
        try:
            return json.loads(ctypes.string_at(p).decode(errors="replace"))
        finally:
            self._lib.hk_core_free_string(p)


def limits():
    """The core's bounds, by name (analyzer.h, explainers.h, cause.h, aux_events.h)."""
    out = (ctypes.c_int64 * 8)()
    _lib().hk_core_limits(out)
    return dict(zip(("context_window", "context_shown", "detail_per_cause", "chunks_kept", "claims_kept",
                     "path_limit", "oom_stacks_kept", "refusal_stacks_kept"), out))


def _i64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _plugin():
    """The core as Babeltrace2 plugin `hakmem_native` (the same file ctypes loaded)."""
    global _PLUGIN
    if _PLUGIN is None:
        import bt2
        found = bt2.find_plugins_in_path(library_path(), recurse=False)
        plugin = next((p for p in found or () if p.name == "hakmem_native"), None)
        if plugin is None:
            raise CoreMissing(f"{library_path()} holds no Babeltrace2 plugin hakmem_native")
        _PLUGIN = plugin
    return _PLUGIN


def run(groups, core):
    """The graph source.ctf.fs (one per group of trace folders) -> filter.utils.muxer -> sink.hakmem_native.core,
    run to its end. Raises what Babeltrace2 raises."""
    import bt2
    graph = bt2.Graph()
    ctf = bt2.find_plugin("ctf").source_component_classes["fs"]
    utils = bt2.find_plugin("utils")
    muxer = graph.add_component(utils.filter_component_classes["muxer"], "muxer")
    sink = graph.add_component(_plugin().sink_component_classes["core"], "core", {"core": core.ptr})
    sources = [graph.add_component(ctf, f"source-{i}", {"inputs": g}) for i, g in enumerate(groups)]
    n = 0
    for src in sources:
        for port in src.output_ports.values():
            graph.connect_ports(port, muxer.input_ports[f"in{n}"])
            n += 1
    graph.connect_ports(muxer.output_ports["out"], sink.input_ports["in"])
    graph.run()
