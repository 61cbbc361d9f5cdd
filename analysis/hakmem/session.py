"""`hakmem-trace session start|stop`: a recording session for programs started elsewhere (a service under systemd),
living on a reachable lttng-sessiond from start to stop, instead of around one command as `record` does.

`start` sets the session up as `record` would (the same events, loglevel, channel and contexts; live, streamed or
to a folder) and prints, one VAR=VALUE per line on stdout, the environment a program needs to be traced in it: an
EnvironmentFile for a systemd unit, or lines for its Environment=. Programs that run before the session starts
register with the session daemon anyway and are traced from the start on. `stop` stops and destroys it: the relay
(or the folder) keeps the trace.

The session daemon must outlive this command, so none is started here (record's private one dies with the
recording): without a reachable one, `start` says so in one sentence.
"""

import shutil
import sys
from pathlib import Path

from . import record
from .record import RecordError, _lttng

DEFAULT_NAME = "hakmem-service"


def _reachable_daemon():
    if shutil.which("lttng") is None:
        raise RecordError("lttng not found: install lttng-tools (Debian)")
    if _lttng("list", check=False).returncode != 0:
        raise RecordError("no lttng-sessiond is reachable: a service's session needs one that outlives this "
                          "command (start it with `lttng-sessiond --daemonize`, or its systemd unit, as the user "
                          "the service runs as or as root)")


def _exists(name):
    return _lttng("list", name, check=False).returncode == 0


def start(args):
    name = args.name
    events = record._event_names(args.events)
    args.live = record.live_timer(args.live)
    if args.live is not None and not args.set_url:
        args.set_url = record.DEFAULT_LIVE_URL
    if not args.set_url and not args.output:
        raise RecordError("where should the trace go? give --live (a live session on a relay), --set-url URL or "
                          "-o DIR")
    if args.set_url and args.output:
        raise RecordError("-o DIR and --set-url/--live exclude each other: the trace goes to a folder or to a relay")
    # What record's session setup reads and a service's session has no use for.
    args.flight_recorder, args.heap_interval, args.heap_events = False, None, False
    preload = [record.find_trace_library(args.lib), record.find_fork_library(), record.find_dl_library()]
    _reachable_daemon()
    if _exists(name):
        raise RecordError(f"a session named {name} exists already: stop it first (hakmem-trace session stop {name})")
    out = Path(args.output).resolve() if args.output else None
    record.create_session(args, name, out)
    try:
        record.configure_session(args, name, events)
        _lttng("start", name)
    except BaseException:
        _lttng("destroy", name, check=False)
        raise
    for key, value in record.traced_environment(args, preload, inherit=False).items():
        print(f"{key}={value}")
    where = f"live to {args.set_url}" if args.live is not None else (args.set_url or str(out))
    print(f"hakmem-trace: session {name} started ({where}); run the programs to trace with the environment above, "
          f"and stop it with `hakmem-trace session stop {name}`", file=sys.stderr)
    return 0


def stop(args):
    _reachable_daemon()
    if not _exists(args.name):
        raise RecordError(f"the session daemon has no session named {args.name}")
    _lttng("stop", args.name)
    _lttng("destroy", args.name)
    print(f"hakmem-trace: session {args.name} stopped and destroyed; its trace stays where it was sent",
          file=sys.stderr)
    return 0


def add_parser(sub):
    p = sub.add_parser("session", help="a recording session for programs started elsewhere (services): start, "
                                       "stop")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = actions.add_parser("start", help="create and start the session; print the environment its programs need",
                           description="Create and start a session on the reachable lttng-sessiond, recording as "
                                       "`record` does, and print VAR=VALUE lines (LD_PRELOAD, ...) that a program "
                                       "must be started with to be traced in it.")
    s.add_argument("--name", default=DEFAULT_NAME, help=f"session name (default {DEFAULT_NAME})")
    s.add_argument("-o", "--output", help="trace folder, for a session that streams to no relay")
    record.add_session_options(s)
    s.set_defaults(func=start)
    t = actions.add_parser("stop", help="stop and destroy the session (the trace stays)")
    t.add_argument("--name", default=DEFAULT_NAME, help=f"session name (default {DEFAULT_NAME})")
    t.set_defaults(func=stop)
