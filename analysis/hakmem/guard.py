"""Runs a trace-reading subcommand in a forked child, so that Babeltrace2 aborting on a damaged trace is a sentence.

Babeltrace2 2.0.4 checks some of what it reads from a trace with assertions that abort the whole process (seen: an
index entry pointing past the end of its stream file, `ds_file_mmap(): Assertion ... failed`). No Python code
can catch that, so the reading runs in a child: the parent waits for it, and when a crash signal ended it, says
in one line that the trace is unusable (exit status 2), quoting the assertion. Whatever else the child does is
passed on unchanged: its stdout is the parent's, its stderr (kept aside until it ends, so an abort's own lines
can be summarised) is relayed as written, its exit status is returned, and a Python traceback from the analysis
itself — a bug of hakmem-trace, not of the trace — is relayed as a traceback with status 1. A child ended by a
signal cannot remove its temporary folders (a stream copied up to its last whole packet, trace_input.read): the
parent does.
"""

import os
import re
import signal
import sys
import tempfile

from .trace_input import REASON_LIMIT, one_line

# Signals by which a library dies of what it read: the trace's fault, not the user's or the system's.
CRASH_SIGNALS = {signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP}
PR_SET_PDEATHSIG = 1


def run_isolated(func, trace):
    """func() (returning an exit status) in a child process; the child's status, or 2 and one sentence on stderr
    when a crash signal ended it while reading trace."""
    sys.stdout.flush()
    sys.stderr.flush()
    err = tempfile.TemporaryFile()  # no name: nothing left behind, and no deadlock on a full pipe
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _child(func, err, parent)  # never returns
    try:
        _, wstatus = os.waitpid(pid, 0)
    except KeyboardInterrupt:
        # Ctrl-C reached the child too (same process group) and it stops on its own; a SIGINT sent to this
        # process alone must not leave the child reading.
        _stop(pid)
        _relay(err)
        return 130
    except BaseException:
        _stop(pid)
        raise
    if os.WIFSIGNALED(wstatus):
        from .trace_input import remove_scratch
        remove_scratch(pid)  # a stream copy the child made (trace_input.repaired_copy) and could not remove
        sig = os.WTERMSIG(wstatus)
        text = _read(err)
        if sig in CRASH_SIGNALS:
            detail = _telling_line(text)
            print(f"hakmem-trace: babeltrace2 crashed reading {trace} ({signal.Signals(sig).name}"
                  + (f": {detail}" if detail else "") + "): the trace is truncated or corrupt",
                  file=sys.stderr, flush=True)
            return 2
        _write(text)
        print(f"hakmem-trace: the analysis of {trace} was ended by {_signame(sig)}", file=sys.stderr, flush=True)
        return 128 + sig
    _relay(err)
    return os.WEXITSTATUS(wstatus)


def _child(func, err, parent):
    status = 1
    try:
        _die_with(parent)
        try:
            import resource
            resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
        except (ImportError, ValueError, OSError):
            pass  # a core file of an abort on a corrupt trace helps nobody; but its absence is no reason to fail
        os.dup2(err.fileno(), 2)
        status = func()
        sys.stdout.flush()
        if not isinstance(status, int):
            status = 0 if status is None else 1
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 — a bug of hakmem-trace: its traceback, relayed by the parent
        import traceback
        traceback.print_exc()
        status = 1
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(status)  # never the parent's cleanup (atexit, buffered output) in the child


def _die_with(parent):
    """The child ends when the parent does (killed on a timeout, say): a child stuck in a damaged trace must not
    outlive it."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _stop(pid):
    try:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _read(err):
    err.seek(0)
    return err.read()


def _write(data):
    sys.stderr.flush()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(2, view):]
        except InterruptedError:
            continue
        except OSError:  # stderr closed: nobody to tell
            return


def _relay(err):
    _write(_read(err))


def _telling_line(data):
    """The last line of what the child wrote that says something (the assertion), without Babeltrace2's
    decoration, at most REASON_LIMIT characters."""
    for raw in reversed(data.decode(errors="replace").splitlines()):
        m = re.search(r"[A-Za-z0-9_./-]+\.(?:c|cpp|h):\d+:.*|\w.*", raw)
        if m:
            return one_line(m.group(0), REASON_LIMIT)
    return ""


def _signame(sig):
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
