#!/usr/bin/python3
"""test_record_hygiene.py — `hakmem-trace record` leaves no daemon and nothing others can write, however it ends.

The test holds the recording lock itself (and hands its descriptor to hakmem-trace in HAKMEM_TRACE_LOCK_FD, as the
benchmark does), so no other recording starts or stops a daemon while it compares. For each way a recording can
end, it notes the live lttng-sessiond / lttng-consumerd / lttng-relayd / lttng-runas processes (pid and start
time) before, while the program runs, and after, and asserts:
  - no lttng process that was not there before is alive after (the private lttng-sessiond record started, its
    consumer daemons and run-as helpers are all gone), and none of those seen during the recording survives;
  - the output folder (created by record) has mode 0700, and nothing under it is group- or world-writable;
  - the lock file is a regular file of ours, mode 0600;
  - hakmem-trace's exit status, and a readable trace with hakmem events where a trace was due.
The program (trace_hygiene_program) allocates, then says it is ready on one FIFO and blocks on another, so the
test acts mid-recording without sleeping: it releases the program to exit 0, releases it to abort(), sends
SIGINT to the whole process group (a Ctrl-C at the terminal), or SIGTERM to hakmem-trace alone; once more it
exits 0 recorded without -o (the trace then is the one hakmem-trace-* folder in the recording's private TMPDIR).

Recordings that record nothing must say so in exactly one line, `hakmem-trace: no trace recorded: WHY`, exit
non-zero (2; 128+N when a signal interrupted them) and leave no folder behind: neither the -o folder (nor the
parents) they made, nor a hakmem-trace-* folder in $TMPDIR without -o (each recording gets a private TMPDIR, so
any such folder is this recording's), and in a -o folder that was there before only what was there before. Each
with and without -o where it matters:
  - a command that does not exist;
  - a script whose interpreter does not exist (the exec fails inside the session);
  - trace_hygiene_program_static, a static copy of the program that LD_PRELOAD cannot reach: it runs (it says so
    on the FIFO) but never registers with the session daemon, and the sentence says it is statically linked;
    also under --flight-recorder, and interrupted by SIGTERM (status 143, the interruption is the reason);
  - the dynamic program under --no-preload (nothing loads the tracer into it);
  - a recording that fails in setup after the daemon started (an invalid --subbuf-size makes `lttng
    enable-channel` fail).
A flight recording of the traced program in which no OOM fires keeps the program's status 0, says that no OOM
fired, and leaves no empty folder either. A trace of another traced program of this user running meanwhile would
count as recorded (the session takes every registered program's events): the failure then names such programs.
Then open_lock_file() is checked on a lock path in a private folder: a symbolic link there (dangling or not), a
FIFO, a hard link, a file of another user are refused and left untouched, a 0666 file of ours becomes 0600, and a
new one is created 0600 under umask 0.

usage: test_record_hygiene.py --lib libhakmem-trace.so --program trace_hygiene_program
                              --static-program trace_hygiene_program_static
"""
import fcntl
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

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
    """hakmem-trace record of a command (default: program, the hygiene program or a copy of it, on this recording's
    FIFOs), in a process group of its own, with a private TMPDIR; stderr collected. output: "new" for -o DIR where
    DIR (and its parent) does not exist yet, None for no -o, or an existing folder."""

    def __init__(self, args, work, name, lock, options=(), command=None, output="new", program=None):
        (work / name).mkdir()
        self.tmpdir = work / name / "tmp"
        self.tmpdir.mkdir()
        self.out = work / name / "new" / "trace" if output == "new" else output
        self.ready, self.go = work / name / "ready", work / name / "go"
        os.mkfifo(self.ready)
        os.mkfifo(self.go)
        env = dict(os.environ, HAKMEM_TRACE_LOCK_FD=str(lock), TMPDIR=str(self.tmpdir))
        for k in [k for k in env if k.startswith("HAKMEM_") and k not in ("HAKMEM_TRACE_LOCK_FD", "HAKMEM_TRACE_LIB")]:
            del env[k]
        command = command or [program or args.program, str(self.ready), str(self.go)]
        where = [] if self.out is None else ["-o", str(self.out)]
        argv = [tt.PYTHON, str(tt.HAKMEM_TRACE), "record", "--lib", args.lib, *where, *options, "--", *command]
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

    def temporary_traces(self):
        """The hakmem-trace-* folders in the private TMPDIR: those record made without -o."""
        return sorted(self.tmpdir.glob("hakmem-trace-*"))

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def traced_elsewhere(recording):
    """'pid command' of each live process that has lttng-ust loaded, other than the recording's own: a program of
    this user running meanwhile registers with the session daemon, and its events go into the trace too."""
    own = {pid for pid, _ in record.descendants(recording.proc.pid)}
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) in own:
            continue
        try:
            maps = (d / "maps").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if any(Path(line.split()[-1]).name.startswith("liblttng-ust.so") for line in maps.splitlines()
               if "/" in line):
            out.append(f"{d.name} {cmd[:120]}")
    return out


def scenario(args, work, lock, name, act, want_status, want_trace=True, options=(), program_runs=True, command=None,
             output="new", program=None):
    """One recording, acted on by act(recording) once the program runs (program_runs: it says so on its FIFO). With
    want_trace, the folder must hold a trace of hakmem events; without, nothing this recording made may be left:
    stderr is returned to check the sentence."""
    before = daemons()
    rec = Recording(args, work, name, lock, options, command, output, program)
    existing = None if rec.out is None or not rec.out.exists() else sorted(p.name for p in rec.out.iterdir())
    elsewhere = []
    try:
        during = {}
        if program_runs:
            rec.wait_ready()
            during = {p: c for p, c in daemons().items() if p not in before}
            if not want_trace:
                elsewhere = traced_elsewhere(rec)
            act(rec)
        rc = rec.finish()
    finally:
        if rec.proc.poll() is None:
            rec.kill()
    err = rec.stderr()
    sys.stdout.write(err)
    hint = (f" (traced programs outside this test were running: {elsewhere}; their events count as a trace)"
            if elsewhere else "")
    tt.check(rc == want_status, f"{name}: hakmem-trace exited with {rc}, want {want_status}{hint}; "
                                f"stderr: {err[-1500:]}")
    tt.check("Traceback" not in err, f"{name}: a Python traceback:\n{err}")
    left = {p: c for p, c in daemons().items() if p not in before}
    tt.check(not left, f"{name}: lttng processes started by the recording are still alive: {left}")
    tt.check(not alive(during), f"{name}: of those seen during the recording, alive: {alive(during)}")
    started = sorted(set(during.values()))
    foreign = sorted(set(before.values()))
    temporary = rec.temporary_traces()
    if want_trace:
        out = rec.out
        if out is None:
            tt.check(len(temporary) == 1, f"{name}: want one hakmem-trace-* folder in {rec.tmpdir}: {temporary}")
            out = temporary[0]
        check_private(out, name)
        tt.check(tt.find_traces(out), f"{name}: no trace in {out}")
        t = tt.read_trace(out)
        # The program's refills are events where the build compiles them in (not in trace-failures: it never fails).
        tt.check(t.events or "refill_enter" not in tt.compiled_events(),
                 f"{name}: the trace in {out} holds no event")
        tt.check(all(e["name"].startswith(("hakmem:", "lttng_ust_statedump:", "lttng_ust_dl:", "lttng_ust_lib:"))
                     for e in t.events), f"{name}: foreign events in the trace")
        gone = "output folder 0700, nothing writable by others"
    else:  # nothing was recorded: whatever record made for it is gone again
        tt.check(not temporary, f"{name}: left in TMPDIR: {[str(p) for p in temporary]}")
        if existing is not None:
            now = sorted(p.name for p in rec.out.iterdir())
            tt.check(now == existing, f"{name}: {rec.out} held {existing} before, {now} after")
            gone = f"{rec.out} holds what it held before"
        elif rec.out is not None:
            tt.check(not rec.out.parent.exists(), f"{name}: {rec.out.parent} was left behind: "
                                                  f"{sorted(rec.out.parent.rglob('*'))}")
            gone = "no output folder left (nor the parent it made)"
        else:
            gone = "no hakmem-trace-* folder left in TMPDIR"
    check_lock(name)
    how = (f"started and stopped {', '.join(started)}" if started else
           f"used the running {', '.join(foreign)}" if foreign else
           "started no daemon" if program_runs else "no program ran")
    tt.ok(f"{name}: status {rc}, {how}; nothing left alive; {gone}")
    return err


def said(name, err, want):
    """err (record's stderr) is one line, starting with want."""
    lines = err.strip().splitlines()
    tt.check(len(lines) == 1 and lines[0].startswith(want), f"{name}: want one line starting {want!r}, got {err!r}")
    return lines[0]


def nothing_recorded(args, work, lock):
    """Each way a recording records nothing: the sentence, status 2 (143 when interrupted), no folder left."""
    missing = f"hakmem-no-such-command-{os.getpid()}"
    no_trace = "hakmem-trace: no trace recorded: "
    for output, how in (("new", ""), (None, "-tmpdir")):
        name = f"missing-command{how}"
        err = scenario(args, work, lock, name, None, 2, want_trace=False, program_runs=False,
                       command=[missing, "arg"], output=output)
        line = said(name, err, no_trace)
        tt.check(line == f"{no_trace}command not found: {missing}", f"{name}: {line!r}")

    script = work / "no-interpreter.sh"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    err = scenario(args, work, lock, "no-interpreter", None, 2, want_trace=False, program_runs=False,
                   command=[str(script)])
    line = said("no-interpreter", err, f"{no_trace}cannot execute {script}: ")
    tt.check("interpreter" in line, f"no-interpreter: the sentence does not name the missing interpreter: {line!r}")

    never = f"{no_trace}the program never registered with the session daemon"
    static = args.static_program
    existing = work / "existing"
    existing.mkdir()
    (existing / "kept").write_text("the user's\n")
    for output, how in (("new", ""), (None, "-tmpdir"), (existing, "-existing-folder")):
        name = f"static{how}"
        err = scenario(args, work, lock, name, lambda r: r.release(b"x"), 2, want_trace=False, output=output,
                       program=static)
        line = said(name, err, never)
        tt.check(f"{args.static_program} is statically linked" in line, f"{name}: {line!r}")
    err = scenario(args, work, lock, "static-flight-recorder", lambda r: r.release(b"x"), 2, want_trace=False,
                   options=["--flight-recorder"], program=static)
    said("static-flight-recorder", err, never)
    err = scenario(args, work, lock, "static-sigterm", lambda r: r.proc.send_signal(signal.SIGTERM),
                   128 + signal.SIGTERM, want_trace=False, program=static)
    line = said("static-sigterm", err, no_trace)
    tt.check(line == f"{no_trace}interrupted by SIGTERM", f"static-sigterm: {line!r}")

    err = scenario(args, work, lock, "no-preload", lambda r: r.release(b"x"), 2, want_trace=False,
                   options=["--no-preload"])
    line = said("no-preload", err, never)
    tt.check("--no-preload" in line, f"no-preload: the sentence does not say why: {line!r}")

    err = scenario(args, work, lock, "setup-fails", None, 2, want_trace=False, options=["--subbuf-size", "bogus"],
                   program_runs=False)
    said("setup-fails", err, f"{no_trace}lttng enable-channel")

    err = scenario(args, work, lock, "flight-recorder-no-oom", lambda r: r.release(b"x"), 0, want_trace=False,
                   options=["--flight-recorder"])
    line = said("flight-recorder-no-oom", err, "hakmem-trace: ")
    tt.check(line == "hakmem-trace: no OOM fired, so no snapshot was taken", f"flight-recorder-no-oom: {line!r}")


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
    args = tt.arguments(program="trace_hygiene_program",
                        static_program="trace_hygiene_program_static (the same, statically linked)")
    work = tt.workdir()
    lock_file_checks(work)

    lock = record.open_lock_file()
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for another recording to finish (lock {record.lock_path()})", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)

    err = scenario(args, work, lock, "exit", lambda r: r.release(b"x"), 0)
    said("exit", err, "hakmem-trace: trace in ")
    scenario(args, work, lock, "abort", lambda r: r.release(b"a"), 128 + signal.SIGABRT)
    err = scenario(args, work, lock, "ctrl-c", lambda r: os.killpg(r.proc.pid, signal.SIGINT), 128 + signal.SIGINT)
    tt.check("interrupted by SIGINT" in err, f"ctrl-c: hakmem-trace did not say it was interrupted: {err}")
    err = scenario(args, work, lock, "sigterm", lambda r: r.proc.send_signal(signal.SIGTERM), 128 + signal.SIGTERM)
    tt.check("interrupted by SIGTERM" in err, f"sigterm: hakmem-trace did not say it was interrupted: {err}")
    err = scenario(args, work, lock, "exit-tmpdir", lambda r: r.release(b"x"), 0, output=None)
    said("exit-tmpdir", err, "hakmem-trace: trace in ")
    nothing_recorded(args, work, lock)
    os.close(lock)
    print("test_record_hygiene: passed")


if __name__ == "__main__":
    main()
