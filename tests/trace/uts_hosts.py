"""uts_hosts.py — pretend to be several machines on one: each Host is a UTS and mount namespace with a hostname of
its own and an lttng-sessiond of its own, so that sessions streamed from two Hosts to one lttng-relayd land under
two host folders of the relay's output (OUTPUT/HOSTNAME/SESSION-DATE/...). Needs root (unshare, nsenter, mount).

    from uts_hosts import Host
    with Host("hakmem-host-a", logdir) as a, Host("hakmem-host-b", logdir) as b:
        a.run(["lttng", "list"])                                    # a's sessiond, not the host's
        rc = a.record([workload, log, 2], lib=lib, url="net://127.0.0.1:C:D", env=env, timeout=240)

A Host starts as our child, in a session of its own:

    unshare --uts --mount --propagation private -- sh -c \\
        'set -e; hostname "$1"; mount -n -t tmpfs tmpfs "$2"; mount -n -t tmpfs tmpfs "$3"; exec lttng-sessiond' \\
        sh NAME /run/lttng /dev/shm

so the pid we get is the sessiond's (unshare without --fork execs sh, sh execs the daemon). Root's sessiond has a
fixed rundir (/var/run/lttng, no override in lttng-tools 2.13) and lttng-ust finds it there and through its wait
shm in /dev/shm: both get a private tmpfs, mounted on their real paths (/var/run is a symbolic link to /run on
Debian) and with -n, since mount(8) would otherwise create /run/mount (utab) on the real file system. Hosts share
the network namespace: everything talks over 127.0.0.1. Commands run in a Host through

    nsenter -t PID --uts --mount --wd=CWD -- ARGV...

(without --wd, entering a mount namespace leaves the command in /, and relative paths would break). The client and
the traced program must both run there: they reach the Host's sessiond, and never the host's own.

Each Host also has its own LTTNG_HOME (the client's .lttngrc, which `lttng create` rewrites, is per Host, not root's
~/.lttngrc shared by every namespace) and its own recording lock for `hakmem-trace record` (HAKMEM_TRACE_LOCK_FD):
the lock in /tmp stands for root's single daemon, which a Host's recordings never use; with it, a Host's recording
would wait on every unrelated root recording of the machine, and two Hosts could not record at once.

Stopping a Host stops its sessiond by pid (SIGTERM, then SIGKILL), then the helpers it had started (lttng-consumerd,
lttng-runas), then anything still in its mount namespace; the namespace and its tmpfs mounts go with its last
process. Nothing is mounted or unmounted in the root namespace, and no daemon we did not start is signalled.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "analysis"))
from hakmem.record import descendants, stop_processes  # noqa: E402

PYTHON = "/usr/bin/python3"
HAKMEM_TRACE = Path(__file__).resolve().parents[2] / "analysis" / "hakmem-trace"
# Mounted on their real paths: a mount on the symbolic link /var/run would follow it anyway, but the mountinfo
# checks compare real paths.
RUNDIR = os.path.realpath("/var/run/lttng")
SHMDIR = os.path.realpath("/dev/shm")
SCRIPT = 'set -e; hostname "$1"; mount -n -t tmpfs tmpfs "$2"; mount -n -t tmpfs tmpfs "$3"; exec lttng-sessiond'
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class HostError(Exception):
    """A Host could not be started; the message says why (with the sessiond's last words)."""


def namespace(pid, kind):
    """The namespace (e.g. 'mnt:[4026532178]') of kind ('uts', 'mnt') process pid is in, or None when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def mounts_at(pid, target):
    """[(device, fstype)] of the mounts on target as process pid sees them, bottom first (the device, major:minor,
    tells file systems apart: a namespace's copies of our mounts have new mount ids, not new devices)."""
    found = []
    try:
        lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        sep = fields.index("-")
        if fields[4] == target:
            found.append((fields[2], fields[sep + 1]))
    return found


def alive(pid, start):
    """Whether (pid, start time) is still that live process (not a zombie, not a reused pid)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    rest = text[text.rindex(")") + 2:].split()
    return rest[0] != "Z" and int(rest[19]) == start


def start_time(pid):
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[19])


def finish(proc, timeout, what):
    """proc's exit status; past timeout seconds proc gets SIGINT (hakmem-trace then destroys its session), SIGKILL
    a minute later, and TimeoutError is raised."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise TimeoutError(f"{what} did not finish within {timeout} s") from None


class Host:
    """A UTS + mount namespace named name with its own lttng-sessiond (a context manager). pid is the sessiond's
    pid, the namespace's anchor; logdir receives the sessiond's output, the Host's LTTNG_HOME and its lock."""

    START_TIMEOUT = 20
    STOP_TIMEOUT = 30

    def __init__(self, name, logdir):
        if not HOSTNAME.match(name):
            raise ValueError(f"{name!r} is not a host name (lowercase letters, digits, inner dashes, 63 at most)")
        self.name = name
        self.logdir = Path(logdir)
        self.proc = None
        self.lock_fd = None
        self.mnt_ns = None
        self.uts_ns = None
        self.log = self.logdir / f"sessiond-{name}.log"
        self.home = self.logdir / f"lttng-home-{name}"
        self.helpers_seen = []   # (pid, start time, comm) of every helper the sessiond was seen with
        self.strays = []         # (pid, comm) found in the namespace once the sessiond and its helpers had gone
        self.exit_status = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- starting ----

    def start(self):
        if os.geteuid() != 0:
            raise HostError("a Host needs root: unshare --mount and mount(8) need CAP_SYS_ADMIN")
        for d in (RUNDIR, SHMDIR):
            if not Path(d).is_dir():
                # A mount point must exist; root's sessiond would create the rundir itself.
                if d == RUNDIR:
                    os.makedirs(d, mode=0o755, exist_ok=True)
                else:
                    raise HostError(f"{d} is not a folder")
        self.home.mkdir(parents=True, exist_ok=True)
        self.lock_fd = os.open(self.logdir / f"record-{self.name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        own_mnt, own_uts = namespace("self", "mnt"), namespace("self", "uts")
        with open(self.log, "w") as log:
            # A session of its own: a Ctrl-C at the terminal is for the test, which stops the Host itself.
            self.proc = subprocess.Popen(["unshare", "--uts", "--mount", "--propagation", "private", "--",
                                          "sh", "-c", SCRIPT, "sh", self.name, RUNDIR, SHMDIR],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.daemon_environment(), start_new_session=True)
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise HostError(f"host {self.name}: the sessiond exited with status {self.proc.returncode} at start: "
                                f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise HostError(f"host {self.name}: the sessiond did not answer within {self.START_TIMEOUT} s: "
                                f"{self.log_tail()}")
            # Until the pid is the sessiond, it may still be unshare (in our namespaces: nsenter would reach the
            # host's own sessiond, if one runs) or sh before its mounts.
            if comm(self.pid) == "lttng-sessiond":
                self.mnt_ns, self.uts_ns = namespace(self.pid, "mnt"), namespace(self.pid, "uts")
                if self.mnt_ns == own_mnt or self.uts_ns == own_uts:
                    raise HostError(f"host {self.name}: the sessiond {self.pid} runs in our own namespaces")
                if self.run(["lttng", "list"], capture_output=True).returncode == 0:
                    break
            time.sleep(0.05)
        self._check_started()

    def _check_started(self):
        """The Host is what it says: its name, its own tmpfs on the rundir and /dev/shm, unseen from our side."""
        got = self.run(["hostname"], capture_output=True, text=True).stdout.strip()
        if got != self.name:
            raise HostError(f"host {self.name}: hostname in the namespace is {got!r}")
        for d in (RUNDIR, SHMDIR):
            ours = {dev for dev, _ in mounts_at("self", d)}
            theirs = mounts_at(self.pid, d)
            if not theirs or theirs[-1][1] != "tmpfs" or theirs[-1][0] in ours:
                raise HostError(f"host {self.name}: {d} in the namespace is not a tmpfs of its own: {theirs}")

    def log_tail(self, lines=3):
        try:
            text = [line.strip() for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "(no log)"
        return " / ".join(text[-lines:]) if text else "(nothing on its output)"

    # ---- running commands in the Host ----

    def daemon_environment(self):
        """The sessiond's: ours with the Host's LTTNG_HOME, without a lock descriptor it would not have."""
        env = self.environment()
        env.pop("HAKMEM_TRACE_LOCK_FD", None)
        return env

    def environment(self, env=None):
        """env (default: ours) with the Host's LTTNG_HOME and recording lock."""
        env = dict(os.environ if env is None else env)
        env["LTTNG_HOME"] = str(self.home)
        if self.lock_fd is not None:
            env["HAKMEM_TRACE_LOCK_FD"] = str(self.lock_fd)
        return env

    def command(self, argv, cwd=None):
        """argv as run in the Host: nsenter into its UTS and mount namespaces, in cwd (default: ours)."""
        if self.proc is None or self.proc.poll() is not None:
            raise HostError(f"host {self.name} is not running")
        return ["nsenter", "-t", str(self.pid), "--uts", "--mount", f"--wd={os.path.abspath(cwd or os.getcwd())}",
                "--", *map(str, argv)]

    def popen(self, argv, *, cwd=None, env=None, pass_fds=(), **kwargs):
        """subprocess.Popen of argv in the Host (nsenter execs argv: the pid is argv's)."""
        return subprocess.Popen(self.command(argv, cwd), env=self.environment(env),
                                pass_fds=(self.lock_fd, *pass_fds), **kwargs)

    def run(self, argv, *, cwd=None, env=None, pass_fds=(), **kwargs):
        """subprocess.run of argv in the Host: a CompletedProcess."""
        return subprocess.run(self.command(argv, cwd), env=self.environment(env),
                              pass_fds=(self.lock_fd, *pass_fds), **kwargs)

    def start_record(self, command, *, lib, url, options=(), env=None, **kwargs):
        """`hakmem-trace record --set-url URL --lib LIB [options] -- command...` started in the Host: its Popen.
        It uses the Host's sessiond (reachable there, so hakmem-trace starts none) and streams to url."""
        argv = [PYTHON, str(HAKMEM_TRACE), "record", "--set-url", url, "--lib", str(lib), *options,
                "--", *map(str, command)]
        print(f"+ [{self.name}] " + " ".join(argv), flush=True)
        return self.popen(argv, env=env, **kwargs)

    def record(self, command, *, lib, url, options=(), env=None, timeout=None):
        """start_record() waited for: hakmem-trace's exit status (the command's; 2 when nothing was recorded)."""
        return finish(self.start_record(command, lib=lib, url=url, options=options, env=env), timeout,
                      f"hakmem-trace record in {self.name}")

    # ---- who is in it ----

    def helpers(self):
        """(pid, start time, comm) of the sessiond's live descendants now (lttng-consumerd, lttng-runas, ...); each
        is remembered in helpers_seen, so that stop() can tell they are gone."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        now = [(pid, start, comm(pid)) for pid, start in descendants(self.pid)]
        known = {(p, s) for p, s, _ in self.helpers_seen}
        self.helpers_seen += [h for h in now if (h[0], h[1]) not in known]
        return now

    def members(self):
        """(pid, start time, comm) of the live processes in the Host's mount namespace (ours entering it too)."""
        if self.mnt_ns is None:
            return []
        found = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and namespace(d.name, "mnt") == self.mnt_ns:
                start = start_time(d.name)
                if start is not None and alive(int(d.name), start):
                    found.append((int(d.name), start, comm(d.name)))
        return found

    # ---- stopping ----

    def stop(self):
        """Stop the sessiond by its pid (SIGTERM, SIGKILL after STOP_TIMEOUT s), the helpers it had, then whatever
        is left in the namespace (noted in strays). Safe to call twice."""
        if self.proc is not None:
            self.helpers()
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=self.STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.exit_status = self.proc.returncode
            stop_processes([(p, s) for p, s, _ in self.helpers_seen], self.STOP_TIMEOUT)
            left = self.members()
            if left:
                self.strays += [(p, c) for p, _, c in left]
                stop_processes([(p, s) for p, s, _ in left], 5)
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def gone(self):
        """Whether the sessiond, every helper it was seen with, and every process of the namespace are gone."""
        if self.proc is not None and self.proc.poll() is None:
            return False
        return not any(alive(p, s) for p, s, _ in self.helpers_seen) and not self.members()
