#!/usr/bin/python3
"""test_record_hygiene.py — `hakmem-trace record` leaves no daemon and nothing others can write, however it ends.

The test holds the recording lock itself (and hands its descriptor to hakmem-trace in HAKMEM_TRACE_LOCK_FD, as the
benchmark does), so no other recording starts or stops a daemon while it compares. For each way a recording can
end, it notes the live lttng-sessiond / lttng-consumerd / lttng-relayd / lttng-runas processes (pid and start
time) before, while the program runs, and after, and asserts:
  - no lttng process that was not there before is alive after (the private lttng-sessiond record started, its
    consumer daemons and run-as helpers are all gone), and none of those seen during the recording survives;
  - the output folder (-o, created by record) has mode 0700, and nothing under it is group- or world-writable;
  - the lock file is a regular file of ours, mode 0600;
  - hakmem-trace's exit status, and a readable trace with hakmem events where a trace was due.
The program (trace_hygiene_program) allocates, then says it is ready on one FIFO and blocks on another, so the
test acts mid-recording without sleeping: it releases the program to exit 0, releases it to abort(), sends
SIGINT to the whole process group (a Ctrl-C at the terminal), or SIGTERM to hakmem-trace alone. One more
recording fails in setup after the daemon started (an invalid --subbuf-size makes `lttng enable-channel` fail):
one line, status 2, and the empty output folder it made removed again.
Then open_lock_file() is checked on a lock path in a private folder: a symbolic link there (dangling or not), a
FIFO, a hard link, a file of another user are refused and left untouched, a 0666 file of ours becomes 0600, and a
new one is created 0600 under umask 0.

usage: test_record_hygiene.py --lib libhakmem-trace.so --program trace_hygiene_program
"""
import fcntl
import os
import signal
import stat
import subprocess
import sys
import threading

import tracetest as tt
from hakmem import record

TIMEOUT = 120


def daemons():
    """{(pid, start time): comm} of the live lttng processes."""
    out = {}
    for pid, comm in tt.lttng_daemons():
        f = record._stat_fields(pid)
        if f is not None:
            out[(pid, f[3])] = comm
    return out


def alive(procs):
    now = daemons()
    return {p: c for p, c in procs.items() if p in now}


def check_private(out, what):
    mode = stat.S_IMODE(out.stat().st_mode)
    tt.check(mode == 0o700, f"{what}: the output folder {out} has mode {mode:o}, want 700")
    loose = []
    for path in out.rglob("*"):
        st = path.lstat()
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o022:
            loose.append(f"{stat.S_IMODE(st.st_mode):o} {path}")
    tt.check(not loose, f"{what}: group- or world-writable under {out}: {loose[:5]}")


def check_lock(what):
    st = os.lstat(record.lock_path())
    tt.check(stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o600,
             f"{what}: the lock file {record.lock_path()} is mode {st.st_mode:o}, uid {st.st_uid}: want a regular "
             "file of ours, mode 600")


class Recording:
    """hakmem-trace record of the hygiene program, in a process group of its own; stderr collected."""

    def __init__(self, args, work, name, lock, options=()):
        self.out = work / name / "trace"
        (work / name).mkdir()
        self.ready, self.go = work / name / "ready", work / name / "go"
        os.mkfifo(self.ready)
        os.mkfifo(self.go)
        env = dict(os.environ, HAKMEM_TRACE_LOCK_FD=str(lock))
        for k in [k for k in env if k.startswith("HAKMEM_") and k not in ("HAKMEM_TRACE_LOCK_FD", "HAKMEM_TRACE_LIB")]:
            del env[k]
        argv = [tt.PYTHON, str(tt.HAKMEM_TRACE), "record", "--lib", args.lib, "-o", str(self.out), *options, "--",
                args.program, str(self.ready), str(self.go)]
        print("+ " + " ".join(argv), flush=True)
        self.proc = subprocess.Popen(argv, env=env, pass_fds=(lock,), stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.err = []
        self.reader = threading.Thread(target=lambda: self.err.append(self.proc.stderr.read()), daemon=True)
        self.reader.start()

    def wait_ready(self):
        """Blocks until the program says it runs (opening the FIFO waits for it); fails if record ends first."""
        result = {}

        def opener():
            with open(self.ready, "rb") as f:
                result["byte"] = f.read(1)
        t = threading.Thread(target=opener, daemon=True)
        t.start()
        while t.is_alive():
            t.join(0.2)
            if self.proc.poll() is not None and t.is_alive():
                # record ended without running the program: unblock our open() with a writer of our own
                with open(self.ready, "wb"):
                    pass
                t.join()
                tt.fail(f"hakmem-trace record ended (status {self.proc.returncode}) before the program was ready: "
                        f"{self.stderr()}")
        tt.check(result.get("byte") == b"r", f"the program wrote {result.get('byte')!r} to its READY FIFO")

    def release(self, byte):
        with open(self.go, "wb") as f:
            f.write(byte)

    def finish(self):
        try:
            rc = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            tt.fail(f"hakmem-trace record did not finish within {TIMEOUT} s")
        self.reader.join(10)
        return rc

    def stderr(self):
        self.reader.join(10)
        return b"".join(self.err).decode(errors="replace")

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def scenario(args, work, lock, name, act, want_status, want_trace=True, options=(), program_runs=True):
    before = daemons()
    rec = Recording(args, work, name, lock, options)
    try:
        during = {}
        if program_runs:
            rec.wait_ready()
            during = {p: c for p, c in daemons().items() if p not in before}
            act(rec)
        rc = rec.finish()
    finally:
        if rec.proc.poll() is None:
            rec.kill()
    err = rec.stderr()
    sys.stdout.write(err)
    tt.check(rc == want_status, f"{name}: hakmem-trace exited with {rc}, want {want_status}; stderr: {err[-1500:]}")
    tt.check("Traceback" not in err, f"{name}: a Python traceback:\n{err}")
    left = {p: c for p, c in daemons().items() if p not in before}
    tt.check(not left, f"{name}: lttng processes started by the recording are still alive: {left}")
    tt.check(not alive(during), f"{name}: of those seen during the recording, alive: {alive(during)}")
    started = sorted(set(during.values()))
    foreign = sorted(set(before.values()))
    if program_runs:
        check_private(rec.out, name)
    else:  # nothing was recorded: the folder record made for it is gone again
        tt.check(not rec.out.exists(), f"{name}: {rec.out} was left behind: {sorted(rec.out.rglob('*'))}")
    check_lock(name)
    if want_trace:
        tt.check(tt.find_traces(rec.out), f"{name}: no trace in {rec.out}")
        t = tt.read_trace(rec.out)
        # The program's refills are events where the build compiles them in (not in trace-failures: it never fails).
        tt.check(t.events or "refill_enter" not in tt.compiled_events(),
                 f"{name}: the trace in {rec.out} holds no event")
        tt.check(all(e["name"].startswith("hakmem:") for e in t.events), f"{name}: foreign events in the trace")
    how = (f"started and stopped {', '.join(started)}" if started else
           f"used the running {', '.join(foreign)}" if foreign else "started no daemon")
    tt.ok(f"{name}: status {rc}, {how}; nothing left alive; "
          + ("output folder 0700, nothing writable by others" if program_runs else "no output folder left"))
    return err


def lock_file_checks(work):
    """open_lock_file() on a lock path in a private folder, for each thing an attacker could put there first."""
    d = work / "lockcheck"
    d.mkdir(mode=0o700)
    path = d / "the.lock"
    saved = record.lock_path
    record.lock_path = lambda: path
    try:
        def refused(what, setup, untouched):
            setup()
            try:
                fd = record.open_lock_file()
            except record.RecordError as e:
                tt.check(str(path) in str(e), f"{what}: the refusal does not name the file: {e}")
            else:
                os.close(fd)
                tt.fail(f"{what}: open_lock_file() accepted it")
            untouched()
            for p in list(d.iterdir()):
                p.unlink()

        target = d / "victim"
        refused("a dangling symbolic link", lambda: path.symlink_to(target),
                lambda: tt.check(not target.exists(), "a dangling symlink's target was created"))

        def victim():
            target.write_bytes(b"precious")
            target.chmod(0o644)
            path.symlink_to(target)
        refused("a symbolic link to a file", victim,
                lambda: tt.check(target.read_bytes() == b"precious" and stat.S_IMODE(target.stat().st_mode) == 0o644,
                                 "the symlink's target was changed"))
        refused("a FIFO", lambda: os.mkfifo(path), lambda: None)

        def hard():
            target.write_bytes(b"precious")
            os.link(target, path)
        refused("a hard link", hard, lambda: tt.check(target.read_bytes() == b"precious", "the target changed"))
        if os.geteuid() == 0:
            def foreign():
                path.write_bytes(b"")
                os.chown(path, 65534, 65534)
            refused("a file of another user", foreign, lambda: tt.check(path.stat().st_uid == 65534, "chowned"))

        path.write_bytes(b"")
        path.chmod(0o666)
        fd = record.open_lock_file()
        os.close(fd)
        tt.check(stat.S_IMODE(path.stat().st_mode) == 0o600, "a 0666 lock file of ours was not made 0600")
        path.unlink()
        old = os.umask(0)
        try:
            fd = record.open_lock_file()
        finally:
            os.umask(old)
        os.close(fd)
        tt.check(stat.S_IMODE(path.stat().st_mode) == 0o600, "a new lock file under umask 0 is not 0600")
    finally:
        record.lock_path = saved
    tt.ok("open_lock_file refuses symbolic links (dangling or not), a FIFO, a hard link and another user's file, "
          "touching none of them; makes its own file 0600")


def main():
    args = tt.arguments(program="trace_hygiene_program")
    work = tt.workdir()
    lock_file_checks(work)

    lock = record.open_lock_file()
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for another recording to finish (lock {record.lock_path()})", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)

    scenario(args, work, lock, "exit", lambda r: r.release(b"x"), 0)
    scenario(args, work, lock, "abort", lambda r: r.release(b"a"), 128 + signal.SIGABRT)
    err = scenario(args, work, lock, "ctrl-c", lambda r: os.killpg(r.proc.pid, signal.SIGINT), 128 + signal.SIGINT)
    tt.check("interrupted by SIGINT" in err, f"ctrl-c: hakmem-trace did not say it was interrupted: {err}")
    err = scenario(args, work, lock, "sigterm", lambda r: r.proc.send_signal(signal.SIGTERM), 128 + signal.SIGTERM)
    tt.check("interrupted by SIGTERM" in err, f"sigterm: hakmem-trace did not say it was interrupted: {err}")
    err = scenario(args, work, lock, "setup-fails", None, 2, want_trace=False, options=["--subbuf-size", "bogus"],
                   program_runs=False)
    lines = err.strip().splitlines()
    tt.check(len(lines) == 1 and lines[0].startswith("hakmem-trace: lttng enable-channel"),
             f"setup-fails: want one line about lttng enable-channel, got {err!r}")
    os.close(lock)
    print("test_record_hygiene: passed")


if __name__ == "__main__":
    main()
