"""Babeltrace2 plugin "hakmem": the hakmem-trace analyses as sink components of a babeltrace2 graph.

    babeltrace2 --plugin-path=analysis TRACE_DIR -c sink.hakmem.oom-paths            # = hakmem-trace oom-paths
    babeltrace2 --plugin-path=analysis TRACE_DIR -c sink.hakmem.oom-paths -p json=yes # = hakmem-trace oom-paths --json
    babeltrace2 --plugin-path=analysis TRACE_DIR -c sink.hakmem.summary [-p json=yes] # = hakmem-trace summary [--json]

Each sink feeds every message it consumes into the same analysis core as the command line (hakmem.paths.Analyzer,
whose native core the command runs as its graph's sink; here each message is handed to it through ctypes) and
prints the same text (hakmem.report) or the same JSON, so the two outputs are identical byte for byte. Needs the
Python plugin provider (Debian: libbabeltrace2-python-plugin-provider) and the Python that babeltrace2 embeds
(the system python3, where bt2 imports).

Unusable input ends as in hakmem-trace, through the same functions (hakmem.trace_input.check_usable and
unreadable): one sentence on stderr (prefixed "sink.hakmem.NAME: " instead of "hakmem-trace: ") and exit status 2
— no hakmem events, events that do not match the catalogue, events without the vpid/vtid context, a source that
fails in the middle of the trace, an analysis error. DIR in the sentence is the babeltrace2 argument holding the
streams read. Babeltrace2 2.0.4 offers a sink no way to choose the process's exit status, nor a finalize call:
the sink prints when its upstream iterator ends, and for unusable input ends the process itself with
os._exit(2), stdout and stderr flushed. A missing folder, or a trace the source cannot even open (truncated,
corrupt, no metadata), fails in babeltrace2's own source component before the sink runs: babeltrace2's error
text and exit status 1.
"""

import json
import os
import sys

import bt2

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from hakmem import paths, report, trace_input  # noqa: E402

bt2.register_plugin(__name__, "hakmem", description="hakmem allocator trace analyses (OOM paths, summary)",
                    author="hakmem", license="see the hakmem repository")

EXIT_UNUSABLE = 2  # hakmem-trace's status for unusable input


def _bool_param(params, name):
    if params is None or name not in params:
        return False
    v = params[name]
    if isinstance(v, bt2._BoolValueConst):
        return bool(v)
    if isinstance(v, (bt2._StringValueConst, str)):
        s = str(v).lower()
        if s in ("yes", "true", "on", "1"):
            return True
        if s in ("no", "false", "off", "0"):
            return False
    if isinstance(v, bt2._IntegerValueConst):
        return int(v) != 0
    raise ValueError(f"parameter {name!r}: a boolean (yes/no) is expected, not {v!r}")


def _input_names(stream_files):
    """What the user named as input, for the error sentence: the babeltrace2 arguments (from /proc/self/cmdline)
    that are existing paths holding one of the streams read; else the trace folders themselves."""
    dirs = sorted({os.path.dirname(f) for f in stream_files})
    named = []
    try:
        with open("/proc/self/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        argv = []
    for arg in argv[1:]:
        if arg.startswith("-") or not os.path.exists(arg) or arg in named:
            continue
        real = os.path.realpath(arg)
        if any(os.path.realpath(d) == real or os.path.realpath(d).startswith(real.rstrip("/") + "/") for d in dirs):
            named.append(arg)
    if named:
        return ", ".join(named)
    return ", ".join(dirs) if dirs else "the input"


class _AnalysisSink:
    """Common part of the sinks (a mixin: bt2 wants _UserSinkComponent among a component class's direct bases):
    one input port, every message into an Analyzer, the rendering when the input ends."""

    def __init__(self, config, params, obj):
        self._port = self._add_input_port("in")
        self._json = _bool_param(params, "json")
        self._analyzer = paths.Analyzer()
        self._stream_files = set()
        self._it = None
        self._done = False

    def _user_graph_is_configured(self):
        self._it = self._create_message_iterator(self._port)

    def _user_consume(self):
        try:
            msg = next(self._it)
        except StopIteration:
            # Babeltrace2 2.0.4 never calls a Python sink's _user_finalize: the end of the input is the moment.
            if not self._done:
                self._done = True
                self._finish()
            raise
        except bt2._Error as e:  # the source could not read the trace
            self._unusable(trace_input.unreadable(self._name(), e))
        if isinstance(msg, bt2._StreamBeginningMessageConst) and msg.stream.name:
            self._stream_files.add(msg.stream.name)
        try:
            self._analyzer.feed(msg)
        except Exception as e:  # noqa: BLE001 — as the CLI: one sentence, never a traceback
            self._unusable(trace_input.unreadable(self._name(), e))

    def _name(self):
        return _input_names(self._stream_files)

    def _unusable(self, err):
        """The sentence on stderr and exit status 2, as hakmem-trace (the graph cannot return a status itself)."""
        sys.stdout.flush()
        print(f"sink.hakmem.{self._NAME}: {err}", file=sys.stderr, flush=True)
        os._exit(EXIT_UNUSABLE)

    def _finish(self):
        a = self._analyzer
        try:
            trace_input.note_stream_losses(a, (os.path.dirname(f) for f in self._stream_files))
            trace_input.check_usable(a, self._name())
            result = a.finish()
        except trace_input.TraceError as e:
            self._unusable(e)
        print(self._render(result), flush=True)

    def _render(self, result):
        raise NotImplementedError


@bt2.plugin_component_class
class OomPathsSink(_AnalysisSink, bt2._UserSinkComponent, name="oom-paths"):
    """For every OOM: the thread, the path of decisions, what other threads did, why (= hakmem-trace oom-paths).

    Parameter: json (boolean, -p json=yes): the whole analysis as JSON (= hakmem-trace oom-paths --json).
    """
    _NAME = "oom-paths"

    def _render(self, result):
        return json.dumps(result, indent=1) if self._json else report.oom_paths(result)


@bt2.plugin_component_class
class SummarySink(_AnalysisSink, bt2._UserSinkComponent, name="summary"):
    """Per class and per thread counts of every decision, and events lost (= hakmem-trace summary).

    Parameter: json (boolean, -p json=yes): the same as JSON (= hakmem-trace summary --json).
    """
    _NAME = "summary"

    def _render(self, result):
        if self._json:
            return json.dumps(result["summary"] | {"lost_events": result["lost_events"]}, indent=1)
        return report.summary(result)
