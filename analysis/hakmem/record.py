"""`hakmem-trace record`: run a command on libhakmem-trace.so under an LTTng session and keep the trace, or say why
none was recorded."""

import errno
import fcntl
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import catalogue
from . import command as command_check
from .output_folder import OutputFolder, OutputFolderError, holds_trace

REPO = Path(__file__).resolve().parents[2]
LIB_NAME = "libhakmem-trace.so"
FORK_LIB = "liblttng-ust-fork.so.1"
DL_LIB = "liblttng-ust-dl.so.1"
CHANNEL = "hakmem"
# What turns a stack's return addresses into binaries and offsets: lttng-ust's state dump (the binaries mapped
# when the program registers, their base addresses, build ids and debug links) and, with DL_LIB preloaded, every
# dlopen/dlclose after it. Enabled whatever --loglevel or --events say: without them no frame can be resolved.
ADDRESS_EVENTS = ("lttng_ust_statedump:*", "lttng_ust_dl:*", "lttng_ust_lib:*")
# The flight recorder's channel for them (not "hakmem_…": holds_trace() knows the hakmem channel by that prefix).
ADDRESS_CHANNEL = "maps"
# The heap profile's events: enabled only with --heap-profile or HAKMEM_TRACE_SAMPLE in the environment (the
# default and `*` leave them out), whatever --loglevel or --events say: the estimate needs every sample and free.
HEAP_EVENTS = ("heap_sample", "heap_sample_free")
# The events a failing call's stack precedes (call_stack rides with them when --events names one).
STACKED_EVENTS = ("oom", "superslab_alloc_fail")
STACK_EVENT = "call_stack"
DEFAULT_HEAP_INTERVAL = 524288
# A live session's timer: how often lttng flushes the buffers to the relay, so how long a live reader waits at most
# for an event (lttng's own default is 1 s).
DEFAULT_LIVE_TIMER_US = 200000
DEFAULT_LIVE_URL = "net://127.0.0.1"
NOTHING_RECORDED = "no trace recorded"  # how every line of a recording that left no trace begins


class RecordError(Exception):
    """A sentence for the user; the command exits with status 2."""


def _lttng(*args, check=True, env=None):
    # In a session of its own: a Ctrl-C at the terminal must not kill `lttng stop` or `lttng destroy` halfway.
    proc = subprocess.run(["lttng", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          start_new_session=True)
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


def find_ust_library(name):
    """One of lttng-ust's preloadable helpers (its fork or dl wrapper), where the dynamic linker would find it."""
    out = subprocess.run(["ldconfig", "-p"], stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        if line.strip().startswith(name) and "=>" in line:
            return line.split("=>", 1)[1].strip()
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"):
        p = Path(d) / name
        if p.exists():
            return str(p)
    raise RecordError(f"{name} not found: install liblttng-ust1 (Debian)")


def find_fork_library():
    return find_ust_library(FORK_LIB)


def find_dl_library():
    return find_ust_library(DL_LIB)


def lock_path():
    """One recording at a time per user: a run stops the daemon it started even if another run uses it, and
    root has a single daemon (/var/run/lttng). Fixed path, whatever TMPDIR says."""
    return Path("/tmp") / f"hakmem-trace-lttng-{os.geteuid()}.lock"


def open_lock_file():
    """lock_path() opened for flock, safely in a world-writable /tmp: never through a symbolic link (O_NOFOLLOW),
    created 0600, and only if it is a regular file of this user with one link (someone else's file, a link to
    another file or a FIFO put there first is refused, not used). A lock file of ours that others may read or
    write (an older hakmem-trace, a loose umask) is made 0600."""
    path = lock_path()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RecordError(f"{path} is a symbolic link: refusing to use it as the recording lock "
                              "(someone may be trying to make this user write elsewhere; remove it)") from None
        raise RecordError(f"cannot open the recording lock {path}: {e.strerror}") from None
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = "not a regular file"
    elif st.st_uid != os.geteuid():
        problem = f"owned by uid {st.st_uid}, not by this user ({os.geteuid()})"
    elif st.st_nlink != 1:
        problem = f"a file with {st.st_nlink} names (a hard link)"
    if problem:
        os.close(fd)
        raise RecordError(f"{path} is {problem}: refusing to use it as the recording lock (remove it)")
    if stat.S_IMODE(st.st_mode) != 0o600:
        os.fchmod(fd, 0o600)
    return fd


class RecordingLock:
    """Holds lock_path() exclusively. A parent that already holds it (a benchmark timing runs with no daemon
    in between, a test watching the daemons) passes its descriptor in HAKMEM_TRACE_LOCK_FD: locking the same
    open file again succeeds."""

    def __enter__(self):
        inherited = os.environ.get("HAKMEM_TRACE_LOCK_FD")
        self.fd = int(inherited) if inherited and inherited.isdigit() else None
        self.owned = self.fd is None
        if self.owned:
            self.fd = open_lock_file()
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"hakmem-trace: waiting for another recording to finish (lock {lock_path()})", file=sys.stderr)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            except BaseException:
                self.__exit__()
                raise
        return self

    def __exit__(self, *exc):
        if self.owned:
            os.close(self.fd)
        return False


class SessionDaemon:
    """Uses a reachable lttng-sessiond, or starts a private one and stops it afterwards, with every process it
    started (its lttng-consumerd and run-as helpers), on every path out — an error, a signal — not only success.

    The private daemon runs in the foreground as our own child (so its pid is known without a pid file, and it
    is reaped), in a session of its own (a Ctrl-C meant for the recording must not stop it before the trace is
    flushed; we stop it). Its helpers are noted before it is stopped and stopped in turn if they outlive it.
    (A umask would not make the trace private: lttng 2.13 creates trace folders 0770 and files 0660 whatever
    the daemon's umask; OutputFolder.make_private() does, after the recording.)"""

    START_TIMEOUT = 10
    STOP_TIMEOUT = 10

    def __init__(self):
        self.proc = None
        self.home = None
        self.log = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def __enter__(self):
        if shutil.which("lttng") is None or shutil.which("lttng-sessiond") is None:
            raise RecordError("lttng / lttng-sessiond not found: install lttng-tools (Debian)")
        if _lttng("list", check=False).returncode == 0:
            return self
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def _start(self):
        if os.geteuid() != 0:
            # A user's daemon lives under $LTTNG_HOME: a private one gets a private home.
            self.home = tempfile.mkdtemp(prefix="hakmem-lttng-home-")
            os.environ["LTTNG_HOME"] = self.home
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["lttng-sessiond"], stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.START_TIMEOUT
        while _lttng("list", check=False).returncode != 0:
            if self.proc.poll() is not None:
                raise RecordError(f"lttng-sessiond exited with status {self.proc.returncode} at start: "
                                  f"{self._log_tail()}")
            if time.monotonic() > deadline:
                raise RecordError(f"lttng-sessiond started but did not answer within {self.START_TIMEOUT} s: "
                                  f"{self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self):
        self.log.seek(0)
        lines = [line.strip() for line in self.log.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else "(nothing on its output)"

    def __exit__(self, *exc):
        self._stop()
        return False

    def _stop(self):
        if self.proc is not None:
            helpers = descendants(self.proc.pid)
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=self.STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            stop_processes(helpers, self.STOP_TIMEOUT)
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)
            os.environ.pop("LTTNG_HOME", None)
            self.home = None


def _stat_fields(pid):
    """(comm, state, ppid, start time) of a process from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return text[text.index("(") + 1:text.rindex(")")], rest[0], int(rest[1]), int(rest[19])


def descendants(pid):
    """[(pid, start time)] of the live processes descending from pid."""
    children = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            f = _stat_fields(d.name)
            if f is not None and f[1] != "Z":
                children.setdefault(f[2], []).append((int(d.name), f[3]))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out


def _alive(pid, start):
    f = _stat_fields(pid)
    return f is not None and f[1] != "Z" and f[3] == start  # the same process, not a reused pid


def stop_processes(procs, timeout):
    """SIGTERM, then after timeout SIGKILL, to each (pid, start time) still alive; wait until they are gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        left = [p for p in procs if _alive(*p)]
        for pid, _ in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            time.sleep(0.02)
            left = [p for p in left if _alive(*p)]
        if not left:
            return


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


def _known_events():
    # The stack and heap events by name even where the catalogue mirror does not list them yet.
    return list(catalogue.EVENTS) + [e for e in (STACK_EVENT, *HEAP_EVENTS) if e not in catalogue.EVENTS]


def _event_names(spec):
    """The hakmem events --events asks for (all of them by default, or for `*`), as full names, the heap
    profile's left out (--heap-profile adds them); call_stack is added to a list that names an event it precedes.
    Named one by one, never as `hakmem:*` with an exclusion: `lttng list SESSION` on a session with an exclusion
    kills lttng-sessiond 2.13.9 (its client thread faults in libc), and the recording with it."""
    shorts = []
    for item in (spec or "*").split(","):
        item = item.strip()
        if not item:
            continue
        short = item.split(":", 1)[-1]
        if short != "*" and short not in _known_events():
            raise RecordError(f"unknown event '{item}'; the catalogue has: {', '.join(_known_events())}")
        shorts += _known_events() if short == "*" else [short]
    names = []
    for short in shorts:
        if short not in HEAP_EVENTS and catalogue.full_name(short) not in names:
            names.append(catalogue.full_name(short))
    if any(catalogue.full_name(e) in names for e in STACKED_EVENTS) and catalogue.full_name(STACK_EVENT) not in names:
        names.append(catalogue.full_name(STACK_EVENT))
    return names


def _check_heap_events(spec, sampling):
    """--events naming a heap profile event without --heap-profile would record nothing of it: say so."""
    named = [item.strip() for item in (spec or "").split(",") if item.strip().split(":", 1)[-1] in HEAP_EVENTS]
    if named and not sampling:
        raise RecordError(f"{', '.join(named)} is recorded with --heap-profile[=BYTES], which turns sampling on")


def live_timer(value):
    """--live's value: None (not live), else the live timer in microseconds."""
    if value is None:
        return None
    if value is True:
        return DEFAULT_LIVE_TIMER_US
    if not value.isdigit() or int(value) == 0:
        raise RecordError(f"--live={value}: the live timer is a number of microseconds above 0, e.g. --live=200000")
    return int(value)


def sampling_in_environment():
    """Whether the command's environment already turns the sampler on (HAKMEM_TRACE_SAMPLE, the options table's
    way): its samples are then recorded as with --heap-profile, at the interval it gives (the library reads and
    checks the value)."""
    value = os.environ.get("HAKMEM_TRACE_SAMPLE", "").strip()
    return value not in ("", "0")


def heap_interval(value):
    """--heap-profile's mean sampling interval in bytes: None without the option, the default when given bare."""
    if value is None:
        return None
    if value is True:
        return DEFAULT_HEAP_INTERVAL
    text = str(value).strip()
    if not text.isdigit() or int(text) <= 0:
        raise RecordError(f"--heap-profile takes a positive number of bytes (the mean sampling interval), "
                          f"not '{value}'")
    return int(text)


def _exit_status(returncode):
    return 128 - returncode if returncode < 0 else returncode


class Interrupted(BaseException):
    """A signal ended the recording early (the command is stopped, the trace of what ran is kept)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class Signals:
    """SIGINT, SIGTERM and SIGHUP while a recording is set up or torn down: noted, never cutting the teardown short
    (the session must be destroyed and a private daemon stopped, whatever happens); while the command runs they
    end it (raised as Interrupted). A signal the caller ignores (nohup) stays ignored."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __enter__(self):
        self.pending = None
        self.raising = False
        self.saved = {}
        for sig in self.SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                self.saved[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.pending is None:
            self.pending = signum
        if self.raising:
            self.raising = False
            raise Interrupted(signum)

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        return False


def _run_command(command, executable, env, signals):
    """The command's exit status (128+N for signal N); on a signal to us, the command is ended first. A command
    that cannot be executed after all (runnable() found it, the exec still failed) is a RecordError: nothing ran."""
    if signals.pending:
        return None
    try:
        proc = subprocess.Popen(command, env=env)
    except OSError as e:
        raise RecordError(command_check.exec_failure(command[0], executable, e)) from None
    try:
        signals.raising = True
        if signals.pending:
            raise Interrupted(signals.pending)
        proc.wait()
    except Interrupted as e:
        _end_command(proc, e.signum)
    finally:
        signals.raising = False
    return _exit_status(proc.returncode)


def _end_command(proc, signum):
    """A Ctrl-C or a hangup reaches the command with us (one process group): it gets a second to end on its own;
    a signal sent to us alone is passed on. SIGKILL if it still runs after that."""
    steps = ((None, 1.0), (signum, 5.0)) if signum in (signal.SIGINT, signal.SIGHUP) else ((signum, 5.0),)
    for sig, wait in steps + ((signal.SIGKILL, 5.0),):
        if sig is not None and proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


class Run:
    """What happened to one recording: the command's status (None: it never ran), the RecordError that ended the
    session, the signal that interrupted it, and (flight recorder) whether a program registered with the session."""

    def __init__(self):
        self.status = None
        self.failure = None
        self.interrupted = None
        self.registered = False


def record(args):
    """Records args.command; its exit status. Prints where the trace is, or raises RecordError with
    nothing_recorded()'s sentence (exit status 2) after taking back the folder made for it — or, interrupted by a
    signal with nothing recorded, prints that sentence itself and returns 128+N."""
    if not args.command:
        raise nothing_recorded("nothing to run: hakmem-trace record [options] -- CMD ARGS...")
    try:
        # Before anything is set up: a command that cannot run costs no daemon, no session and no folder.
        executable = command_check.runnable(args.command[0])
        # --no-preload: the command links the hakmem provider itself (or is recorded as is): nothing is preloaded.
        lib = None if args.no_preload else find_trace_library(args.lib)
        helpers = [] if args.no_preload else [find_fork_library(), find_dl_library()]
        events = _event_names(args.events)
        args.live = live_timer(args.live)
        if args.live is not None and not args.set_url:
            args.set_url = DEFAULT_LIVE_URL
        if args.live is not None and args.flight_recorder:
            raise RecordError("--live and --flight-recorder exclude each other: a live session streams every event "
                              "to the relay, a flight recorder keeps them in memory until an OOM")
        args.heap_interval = heap_interval(getattr(args, "heap_profile", None))
        args.heap_events = args.heap_interval is not None or sampling_in_environment()
        _check_heap_events(args.events, args.heap_events)
        folder = OutputFolder.streamed() if args.set_url else OutputFolder.create(args.output)
    except (RecordError, command_check.CommandError, OutputFolderError) as e:
        raise nothing_recorded(e) from None
    name = f"hakmem-{os.getpid()}-{int(time.time())}"
    run = Run()
    try:
        try:
            with RecordingLock(), Signals() as signals:
                try:
                    with SessionDaemon():
                        _record_session(args, name, folder.path, events, lib, helpers, executable, signals, run)
                finally:
                    run.interrupted = signals.pending
                    folder.make_private()
        except RecordError as e:
            run.failure = e
        return _outcome(args, folder, executable, run)
    except BaseException:
        folder.remove_untraced(CHANNEL)  # whatever ended the recording, an empty folder is not left behind
        raise


def nothing_recorded(why):
    """The error of a recording that recorded nothing: `hakmem-trace: no trace recorded: WHY`, exit status 2."""
    return RecordError(f"{NOTHING_RECORDED}: {why}")


def _outcome(args, folder, executable, run):
    """Says what the recording left (one line on stderr) and returns the exit status; raises nothing_recorded()
    when it left no trace. Judged from the output folder, not from what was meant to happen."""
    if args.set_url:
        # Streamed: the relay's folder is not ours to look at; nothing was sent before the command ran.
        recorded = run.status is not None
        where = args.set_url
    else:
        recorded = folder.holds_trace(CHANNEL)
        where = str(folder.path)
    if run.interrupted is not None:
        signame = signal.Signals(run.interrupted).name
        # An lttng command that failed because of the interruption is not the news: the interruption is.
        if recorded:
            print(f"hakmem-trace: interrupted by {signame}; what was recorded is in {where}", file=sys.stderr)
        else:
            folder.remove_untraced(CHANNEL)
            print(f"hakmem-trace: {NOTHING_RECORDED}: interrupted by {signame}", file=sys.stderr)
        return 128 + run.interrupted
    if run.failure is not None:
        if recorded:
            raise RecordError(f"{run.failure}; what was recorded is in {where}")
        folder.remove_untraced(CHANNEL)
        raise nothing_recorded(run.failure)
    if args.set_url:
        print(f"hakmem-trace: trace streamed to {where}", file=sys.stderr)
        return run.status
    if recorded:
        if args.flight_recorder:
            where = ", ".join(sorted(str(p) for p in folder.path.glob("snapshot-*")))
            print(f"hakmem-trace: snapshot in {where}", file=sys.stderr)
        else:
            print(f"hakmem-trace: trace in {where}", file=sys.stderr)
        return run.status
    folder.remove_untraced(CHANNEL)
    if args.flight_recorder and run.registered:
        # The program was traced and no OOM fired: the flight recorder's history is thrown away, as asked.
        print("hakmem-trace: no OOM fired, so no snapshot was taken", file=sys.stderr)
        return run.status
    raise nothing_recorded(_why_unregistered(args, executable, run.status))


def _why_unregistered(args, executable, status):
    """Why a program that ran left no trace: it never registered with the session daemon (lttng writes a trace's
    metadata and streams once a traced program has), and what about it shows why."""
    why = "the program never registered with the session daemon"
    if args.no_preload:
        why += f" (with --no-preload it must link {LIB_NAME} itself)"
    elif command_check.statically_linked(executable):
        why += f": {args.command[0]} is statically linked, so LD_PRELOAD cannot load {LIB_NAME} into it"
    else:
        why += f" (is {LIB_NAME} loaded?)"
    if status:
        why += f"; its exit status was {status}"
    return why


def _record_session(args, name, out, events, lib, helpers, executable, signals, run):
    """Creates the session, runs the command in it (its status into run.status: None when a signal came before it
    could start), stops and destroys it."""
    trigger = f"{name}-oom"
    create_session(args, name, out)
    try:
        configure_session(args, name, events)
        _lttng("start", name)
        if args.flight_recorder:
            # Re-armed: a snapshot for every oom that cues one (oom_report.c: the first, then the first after a
            # quiet second), each its own snapshot-* folder; the analysis reads them together.
            _lttng("add-trigger", f"--name={trigger}", "--condition=event-rule-matches", "--type=user",
                   f"--name={catalogue.full_name('oom')}", "--filter=snapshot == 1",
                   "--action=snapshot-session", name, "--rate-policy=every:1")
        env = dict(os.environ, **traced_environment(args, None if args.no_preload else [lib, *helpers]))
        run.status = _run_command(args.command, executable, env, signals)
        if args.flight_recorder and run.status is not None:
            _final_snapshot(name, out)
        _lttng("stop", name)
        if args.flight_recorder and run.status is not None and not any(out.glob("snapshot-*")):
            run.registered = _registered_in_snapshot_session(name)
    finally:
        if args.flight_recorder:
            _lttng("remove-trigger", trigger, check=False)
        _lttng("destroy", name, check=False)


def create_session(args, name, out):
    """`lttng create` for what args ask: live, streamed to a relay, a flight recorder or a folder (out)."""
    if args.live is not None:
        # A live session: the relay keeps the trace and serves it, while it is written, to live readers.
        _lttng("create", name, f"--live={args.live}", f"--set-url={args.set_url}")
    elif args.set_url:
        _lttng("create", name, f"--set-url={args.set_url}")
    elif args.flight_recorder:
        _lttng("create", name, "--snapshot", f"--output={out}")
    else:
        _lttng("create", name, f"--output={out}")


def configure_session(args, name, events):
    """The created session's channels, events and contexts (not started yet)."""
    channel = ["enable-channel", "-u", "-s", name, CHANNEL, f"--subbuf-size={args.subbuf_size}",
               f"--num-subbuf={args.num_subbuf}"]
    if not args.flight_recorder and not args.discard:
        # Blocking: the traced threads wait for buffer space instead of losing events.
        channel.append("--blocking-timeout=inf")
    _lttng(*channel)
    address_channel = CHANNEL
    if args.flight_recorder:
        # lttng-ust dumps the binaries once, when the program registers (and again in a fork child), never at
        # a snapshot: in the ring buffer of the hakmem events the dump is overwritten long before an OOM (seen
        # with 4 KiB sub-buffers: no bin_info left in the snapshots). In a small channel of their own, which
        # only a program loading libraries by the thousand could fill, every snapshot keeps them.
        address_channel = ADDRESS_CHANNEL
        _lttng("enable-channel", "-u", "-s", name, address_channel, "--subbuf-size=64K", "--num-subbuf=4")
    _enable_events(args, name, events, address_channel)
    for channel in sorted({CHANNEL, address_channel}):
        _lttng("add-context", "-u", "-s", name, "-c", channel, "-t", "vpid", "-t", "vtid", "-t", "procname")


def traced_environment(args, preload, inherit=True):
    """The variables a traced program needs (to add to its environment): preload (the allocator first, since it
    must interpose malloc, then lttng-ust's fork and dl wrappers), before our own LD_PRELOAD if inherit; the heap
    profile's interval; blocking allowed unless --discard."""
    env = {}
    if preload:
        ours = os.environ.get("LD_PRELOAD", "") if inherit else ""
        env["LD_PRELOAD"] = ":".join([*map(str, preload)] + [p for p in ours.split(":") if p])
    if args.heap_interval is not None:
        env["HAKMEM_TRACE_SAMPLE"] = str(args.heap_interval)
    if not args.discard:
        env["LTTNG_UST_ALLOW_BLOCKING"] = "1"
    return env


def _enable_events(args, name, events, address_channel):
    """The hakmem events asked for (at --loglevel), the heap profile's only with --heap-profile, and the address
    events every stack needs (at any loglevel), in address_channel."""
    if events:
        cmd = ["enable-event", "-u", "-s", name, "-c", CHANNEL, ",".join(events)]
        if args.loglevel:
            cmd.append(f"--loglevel={args.loglevel}")
        _lttng(*cmd)
    if args.heap_events:
        _lttng("enable-event", "-u", "-s", name, "-c", CHANNEL, ",".join(catalogue.full_name(e) for e in HEAP_EVENTS))
    for ev in ADDRESS_EVENTS:
        _lttng("enable-event", "-u", "-s", name, "-c", address_channel, ev)


def _final_snapshot(name, out):
    """After the program's exit, once an OOM has fired: the history since the last cue, with the program's exit
    totals, as one more snapshot. The OOMs after the last cue are in it as far as the buffers still hold them, and
    the totals tell the analysis how many there were, so that none goes missing unsaid. (Per-user buffers outlive
    the process.) With no OOM there is nothing to keep: no snapshot, as before."""
    if not any(out.glob("snapshot-*")) and not _oom_fired(name):
        return
    _lttng("snapshot", "record", "-s", name)


def _oom_fired(name):
    """Whether the session's buffers hold an oom (a cue whose snapshot is not yet written, say): a probe
    snapshot into a private folder, read and removed."""
    probe = Path(tempfile.mkdtemp(prefix="hakmem-snapshot-probe-"))
    try:
        _lttng("snapshot", "record", "-s", name, f"file://{probe}")
        if not holds_trace(probe, CHANNEL):
            return False
        from . import trace_input
        bt2 = trace_input.load_bt2()
        oom = catalogue.full_name("oom")
        try:
            return any(isinstance(m, bt2._EventMessageConst) and m.event.name == oom
                       for m in bt2.TraceCollectionMessageIterator(str(probe)))
        except bt2._Error:
            return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def _registered_in_snapshot_session(name):
    """Whether a program registered with the snapshot session name: a snapshot session writes nothing until a
    snapshot is taken, so with no OOM an unused flight recorder and a program that never registered look alike.
    A snapshot into a private temporary folder tells them apart (it holds a trace only if the session has
    buffers, which the first registration makes), and is removed."""
    probe = Path(tempfile.mkdtemp(prefix="hakmem-snapshot-probe-"))
    try:
        _lttng("snapshot", "record", "-s", name, f"file://{probe}")
        return holds_trace(probe, CHANNEL)
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def add_parser(sub):
    p = sub.add_parser("record", help="run a command on libhakmem-trace.so and record its hakmem events",
                       description="Run CMD with libhakmem-trace.so (and lttng-ust's fork and dl wrappers) "
                                   "preloaded under an LTTng session (starting a private lttng-sessiond if none is "
                                   "reachable) and keep the trace, with lttng-ust's state dump and dlopen events "
                                   "(which map stack addresses to binaries). "
                                   "Exits with CMD's status; when nothing was recorded (CMD not found, a program "
                                   "that never registered with the session daemon, a failed lttng command) it "
                                   "says why in one line, removes the folder it made and exits with 2.")
    p.add_argument("-o", "--output", help="trace folder (default: a new private folder under $TMPDIR)")
    p.add_argument("--flight-recorder", action="store_true",
                   help="keep only recent history in memory and write a snapshot when an OOM fires")
    p.add_argument("--heap-profile", nargs="?", const=True, metavar="BYTES",
                   help="sample allocations by bytes, one sample per BYTES on average (default "
                        f"{DEFAULT_HEAP_INTERVAL}), for `hakmem-trace heap`: sets HAKMEM_TRACE_SAMPLE for CMD and "
                        "records heap_sample and heap_sample_free (as it does when HAKMEM_TRACE_SAMPLE is set "
                        "already)")
    p.add_argument("--no-preload", action="store_true",
                   help=f"preload nothing (neither {LIB_NAME} nor the fork and dl wrappers): for a program that links "
                        "the hakmem provider itself, or to record one that does not use hakmem")
    add_session_options(p)
    p.add_argument("command", nargs="*", metavar="CMD", help="the command to run, after --")
    p.set_defaults(func=record)


def add_session_options(p):
    """The options of what a session records, where it streams and which library is preloaded: record's and
    `session start`'s."""
    p.add_argument("--events", help="comma-separated catalogue events (default: all hakmem events but the heap "
                                     "profile's); call_stack comes with oom and superslab_alloc_fail")
    p.add_argument("--loglevel", help="only hakmem events at this LTTng loglevel or more severe, e.g. TRACE_WARNING "
                                      "(the state dump and the heap profile are recorded whatever it says)")
    p.add_argument("--set-url", help="stream to an lttng-relayd, e.g. net://collector")
    p.add_argument("--live", nargs="?", const=True, metavar="USEC",
                   help="a live session: stream to the lttng-relayd of --set-url (default "
                        f"{DEFAULT_LIVE_URL}), flushed every USEC microseconds (default {DEFAULT_LIVE_TIMER_US}), so "
                        "that live readers (babeltrace2's src.ctf.lttng-live) follow it while it runs")
    p.add_argument("--lib", help=f"path of {LIB_NAME} (default: build/trace, then installed)")
    p.add_argument("--discard", action="store_true",
                   help="never make the program wait for buffer space: events may be lost (and are reported)")
    p.add_argument("--subbuf-size", default="1M", help="LTTng sub-buffer size (default 1M)")
    p.add_argument("--num-subbuf", default="8", help="LTTng sub-buffers per CPU (default 8)")
