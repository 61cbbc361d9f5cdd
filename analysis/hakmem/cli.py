"""The hakmem-trace command line: one subcommand per job; unusable input is one sentence and exit status 2."""

import argparse
import json
import os
import sys

from . import record, timeline


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
    timeline.add_parser(sub)
    args = parser.parse_args(argv)
    if args.subcommand == "record":
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
    except (record.RecordError, TraceError) as e:
        print(f"hakmem-trace: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `hakmem-trace oom-paths TRACE | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
