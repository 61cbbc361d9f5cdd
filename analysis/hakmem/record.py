"""`hakmem-trace record`: run a command on libhakmem-trace.so under an LTTng session and keep the trace."""

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import catalogue

REPO = Path(__file__).resolve().parents[2]
LIB_NAME = "libhakmem-trace.so"
FORK_LIB = "liblttng-ust-fork.so.1"
CHANNEL = "hakmem"


class RecordError(Exception):
    """A sentence for the user; the command exits with status 2."""


def _lttng(*args, check=True, env=None):
    proc = subprocess.run(["lttng", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if check and proc.returncode != 0:
        raise RecordError(f"lttng {' '.join(args)} failed: {proc.stdout.strip()}")
    return proc


def find_trace_library(explicit=None):
    candidates = [explicit, os.environ.get("HAKMEM_TRACE_LIB"), REPO / "build" / "trace" / LIB_NAME,
                  Path("/usr/local/lib") / LIB_NAME, Path("/usr/lib") / LIB_NAME]
    for c in candidates:
        if c and Path(c).is_file():
            return str(Path(c).resolve())
    raise RecordError(f"{LIB_NAME} not found: build it (cmake --preset trace && cmake --build --preset trace) "
                      "or pass --lib / set HAKMEM_TRACE_LIB")


def find_fork_library():
    out = subprocess.run(["ldconfig", "-p"], stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        if line.strip().startswith(FORK_LIB) and "=>" in line:
            return line.split("=>", 1)[1].strip()
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"):
        p = Path(d) / FORK_LIB
        if p.exists():
            return str(p)
    raise RecordError(f"{FORK_LIB} not found: install liblttng-ust1 (Debian)")


def lock_path():
    """One recording at a time per user: a run stops the daemon it started even if another run uses it, and
    root has a single daemon (/var/run/lttng). Fixed path, whatever TMPDIR says."""
    return Path("/tmp") / f"hakmem-trace-lttng-{os.geteuid()}.lock"


class RecordingLock:
    """Holds lock_path() exclusively. A parent that already holds it (a benchmark timing runs with no daemon
    in between) passes its descriptor in HAKMEM_TRACE_LOCK_FD: locking the same open file again succeeds."""

    def __enter__(self):
        inherited = os.environ.get("HAKMEM_TRACE_LOCK_FD")
        self.fd = int(inherited) if inherited and inherited.isdigit() else None
        self.owned = self.fd is None
        if self.owned:
            self.fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"hakmem-trace: waiting for another recording to finish (lock {lock_path()})", file=sys.stderr)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.owned:
            os.close(self.fd)
        return False


class SessionDaemon:
    """Uses a reachable lttng-sessiond, or starts a private one and stops it (by its pid) afterwards."""

    def __init__(self):
        self.pid = None
        self.home = None

    def __enter__(self):
        if shutil.which("lttng") is None or shutil.which("lttng-sessiond") is None:
            raise RecordError("lttng / lttng-sessiond not found: install lttng-tools (Debian)")
        if _lttng("list", check=False).returncode == 0:
            return self
        if os.geteuid() != 0:
            # A user's daemon lives under $LTTNG_HOME: a private one gets a private home.
            self.home = tempfile.mkdtemp(prefix="hakmem-lttng-home-")
            os.environ["LTTNG_HOME"] = self.home
        proc = subprocess.run(["lttng-sessiond", "--daemonize"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise RecordError(f"could not start lttng-sessiond: {proc.stdout.strip()}")
        pidfile = (Path("/var/run/lttng") if os.geteuid() == 0 else Path(self.home) / ".lttng") / "lttng-sessiond.pid"
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                self.pid = int(pidfile.read_text().strip())
                break
            time.sleep(0.05)
        if self.pid is None:
            raise RecordError(f"lttng-sessiond started but wrote no {pidfile}")
        return self

    def __exit__(self, *exc):
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            for _ in range(200):
                if not Path(f"/proc/{self.pid}").exists() or _zombie(self.pid):
                    break
                time.sleep(0.05)
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)
            os.environ.pop("LTTNG_HOME", None)
        return False


def lttng_daemons():
    """(pid, comm) of the live (not zombie) lttng-sessiond / lttng-relayd / lttng-consumerd processes."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state = stat[stat.rindex(")") + 2:].split()[0]
        if comm.startswith("lttng-") and state != "Z":
            out.append((int(d.name), comm))
    return sorted(out)


def _zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _event_names(spec):
    if not spec:
        return [catalogue.full_name("*")]
    names = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        short = item.split(":", 1)[-1]
        if short != "*" and short not in catalogue.EVENTS:
            raise RecordError(f"unknown event '{item}'; the catalogue has: {', '.join(catalogue.EVENTS)}")
        names.append(catalogue.full_name(short))
    return names


def _exit_status(returncode):
    return 128 - returncode if returncode < 0 else returncode


def record(args):
    if not args.command:
        raise RecordError("nothing to run: hakmem-trace record [options] -- CMD ARGS...")
    # --no-preload: the command links the hakmem provider itself (or is recorded as is): nothing is preloaded.
    lib = None if args.no_preload else find_trace_library(args.lib)
    fork_lib = None if args.no_preload else find_fork_library()
    events = _event_names(args.events)
    if args.output:
        out = Path(args.output).resolve()
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
    else:
        out = Path(tempfile.mkdtemp(prefix="hakmem-trace-"))  # mode 0700
    name = f"hakmem-{os.getpid()}-{int(time.time())}"
    trigger = f"{name}-oom"
    with RecordingLock(), SessionDaemon():
        if args.set_url:
            _lttng("create", name, f"--set-url={args.set_url}")
        elif args.flight_recorder:
            _lttng("create", name, "--snapshot", f"--output={out}")
        else:
            _lttng("create", name, f"--output={out}")
        try:
            channel = ["enable-channel", "-u", "-s", name, CHANNEL, f"--subbuf-size={args.subbuf_size}",
                       f"--num-subbuf={args.num_subbuf}"]
            if not args.flight_recorder and not args.discard:
                # Blocking: the traced threads wait for buffer space instead of losing events.
                channel.append("--blocking-timeout=inf")
            _lttng(*channel)
            for ev in events:
                cmd = ["enable-event", "-u", "-s", name, "-c", CHANNEL, ev]
                if args.loglevel:
                    cmd.append(f"--loglevel={args.loglevel}")
                _lttng(*cmd)
            _lttng("add-context", "-u", "-s", name, "-c", CHANNEL, "-t", "vpid", "-t", "vtid", "-t", "procname")
            _lttng("start", name)
            if args.flight_recorder:
                _lttng("add-trigger", f"--name={trigger}", "--condition=event-rule-matches", "--type=user",
                       f"--name={catalogue.full_name('oom')}", "--action=snapshot-session", name,
                       "--rate-policy=once-after:1")
            env = dict(os.environ)
            if not args.no_preload:
                preload = [lib, fork_lib] + [p for p in env.get("LD_PRELOAD", "").split(":") if p]
                env["LD_PRELOAD"] = ":".join(preload)
            if not args.discard:
                env["LTTNG_UST_ALLOW_BLOCKING"] = "1"
            try:
                proc = subprocess.run(args.command, env=env)
                status = _exit_status(proc.returncode)
            except FileNotFoundError:
                print(f"hakmem-trace: {args.command[0]}: command not found", file=sys.stderr)
                status = 127
            _lttng("stop", name)
        finally:
            if args.flight_recorder:
                _lttng("remove-trigger", trigger, check=False)
            _lttng("destroy", name, check=False)
    if args.set_url:
        print(f"hakmem-trace: trace streamed to {args.set_url}", file=sys.stderr)
    elif args.flight_recorder:
        snaps = sorted(str(p) for p in out.glob("snapshot-*"))
        where = ", ".join(snaps) if snaps else f"{out} (no OOM fired, so no snapshot was taken)"
        print(f"hakmem-trace: snapshot in {where}", file=sys.stderr)
    else:
        print(f"hakmem-trace: trace in {out}", file=sys.stderr)
    return status


def add_parser(sub):
    p = sub.add_parser("record", help="run a command on libhakmem-trace.so and record its hakmem events",
                       description="Run CMD with libhakmem-trace.so preloaded under an LTTng session "
                                   "(starting a private lttng-sessiond if none is reachable) and keep the trace. "
                                   "Exits with CMD's status.")
    p.add_argument("-o", "--output", help="trace folder (default: a new private folder under $TMPDIR)")
    p.add_argument("--flight-recorder", action="store_true",
                   help="keep only recent history in memory and write a snapshot when an OOM fires")
    p.add_argument("--events", help="comma-separated catalogue events (default: all hakmem events)")
    p.add_argument("--loglevel", help="only events at this LTTng loglevel or more severe, e.g. TRACE_WARNING")
    p.add_argument("--set-url", help="stream to an lttng-relayd, e.g. net://collector")
    p.add_argument("--lib", help=f"path of {LIB_NAME} (default: build/trace, then installed)")
    p.add_argument("--no-preload", action="store_true",
                   help=f"preload nothing (neither {LIB_NAME} nor the fork wrapper): for a program that links "
                        "the hakmem provider itself, or to record one that does not use hakmem")
    p.add_argument("--discard", action="store_true",
                   help="never make the program wait for buffer space: events may be lost (and are reported)")
    p.add_argument("--subbuf-size", default="1M", help="LTTng sub-buffer size (default 1M)")
    p.add_argument("--num-subbuf", default="8", help="LTTng sub-buffers per CPU (default 8)")
    p.add_argument("command", nargs="*", metavar="CMD", help="the command to run, after --")
    p.set_defaults(func=record)
