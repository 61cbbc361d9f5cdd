"""The hakmem-trace command line: one subcommand per job; unusable input is one sentence and exit status 2."""

import argparse
import sys

from . import record


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hakmem-trace", description="Record and explain hakmem allocator traces.")
    sub = parser.add_subparsers(dest="subcommand", required=True)
    record.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except record.RecordError as e:
        print(f"hakmem-trace: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
