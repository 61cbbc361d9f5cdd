"""The hakmem-trace command line: one subcommand per job; unusable input is one sentence and exit status 2."""

import argparse
import json
import os
import sys

from . import record, session, timeline, trace_input, watch


def _analysis(args):
    from . import paths
    return paths.analyse(args.trace)


def oom_paths(args):
    from . import report
    result = _analysis(args)
    print(json.dumps(result, indent=1) if args.json else report.oom_paths(result))
    return 0


def summary(args):
    from . import report
    result = _analysis(args)
    print(json.dumps(result["summary"] | {"lost_events": result["lost_events"]}, indent=1) if args.json
          else report.summary(result))
    return 0


def heap(args):
    from . import heap as heap_profile
    from . import paths, report, trace_input
    name, group = trace_input.select(args.trace, args.host, args.session)
    a = paths.Analyzer()
    trace_input.read(name, a, group)
    trace_input.check_usable(a, name)
    result = a.finish(stacks=False)
    out, stacks = heap_profile.heap(result, a.aux, at=args.at, by=args.by, pid=args.pid, name=name)
    if args.flamegraph:
        _flamegraph(out, stacks, args.flamegraph)
    print(json.dumps(out, indent=1) if args.json else report.heap(out))
    return 0


def _flamegraph(out, stacks, path):
    from .trace_input import TraceError
    try:
        from . import flamegraph
    except ImportError:
        raise TraceError("--flamegraph: this hakmem-trace has no flame graph renderer (hakmem/flamegraph.py)") from None
    at = out["at"]
    title = (f"live heap of pid {at['vpid']} at {at['kind']}" + (f" {at['oom_no']}" if at["oom_no"] else "")
             + f": {out['total_bytes']} bytes estimated")
    svg = flamegraph.render([([f["text"] for f in reversed(frames)], weight) for frames, weight in stacks], title)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(svg)
    except OSError as e:
        raise TraceError(f"cannot write {path}: {e.strerror or e}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hakmem-trace", description="Record and explain hakmem allocator traces.")
    sub = parser.add_subparsers(dest="subcommand", required=True)
    record.add_parser(sub)
    p = sub.add_parser("oom-paths", help="for every OOM: the thread, the path of decisions, what others did, why")
    p.add_argument("--json", action="store_true", help="the whole analysis as JSON (schema in README)")
    p.add_argument("trace", metavar="TRACE_DIR")
    p.set_defaults(func=oom_paths)
    p = sub.add_parser("summary", help="per class and per thread counts of every decision, and events lost")
    p.add_argument("--json", action="store_true")
    p.add_argument("trace", metavar="TRACE_DIR")
    p.set_defaults(func=summary)
    p = sub.add_parser("heap", help="the estimated live heap of one process at one instant, by call site, thread "
                                    "or class (from a recording with HAKMEM_TRACE_SAMPLE)")
    p.add_argument("--at", default="first-oom", metavar="first-oom|oom:N|peak|end",
                   help="just before the trace's first OOM (default), before the OOM numbered N, at the process's "
                        "estimated peak, or at the end")
    p.add_argument("--by", default="site", choices=("site", "thread", "class"))
    p.add_argument("--pid", type=int, help="the process (peak, end: default the one with the most samples)")
    p.add_argument("--json", action="store_true", help="one JSON object (schema hakmem-trace-heap/1, see README)")
    p.add_argument("--flamegraph", metavar="FILE.svg", help="also write the live heap as a flame graph")
    trace_input.add_group_options(p)
    p.add_argument("trace", metavar="TRACE_DIR")
    p.set_defaults(func=heap)
    timeline.add_parser(sub)
    watch.add_parser(sub)
    session.add_parser(sub)
    args = parser.parse_args(argv)
    if args.subcommand in ("record", "session", "watch"):
        # record and session read no trace; watch reads a relay's stream, not files, and asks the relay in
        # children of its own
        return _run(args)
    # Every other subcommand reads a trace: Babeltrace2 may abort on a damaged one (see guard).
    from . import guard
    return guard.run_isolated(lambda: _run(args), args.trace)


def _run(args):
    from .trace_input import TraceError
    try:
        status = args.func(args)
        sys.stdout.flush()  # here, where a reader that left is expected (below), not at exit
        return status
    except (record.RecordError, TraceError, watch.WatchError) as e:
        print(f"hakmem-trace: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `hakmem-trace oom-paths TRACE | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
