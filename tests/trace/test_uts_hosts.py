#!/usr/bin/python3
"""test_uts_hosts.py — two machines streaming to one lttng-relayd, played on one by uts_hosts.Host: the relay's
output tree gets one folder per hostname, and `oom-paths` on each host's folder finds that host's OOMs only.

Starts an lttng-relayd on 127.0.0.1 only (test_relayd.Relayd, in our own namespaces) and two Hosts,
hakmem-host-a and hakmem-host-b (each a UTS + mount namespace with its own lttng-sessiond). In each, at the same
time, `hakmem-trace record --set-url net://127.0.0.1:CONTROL:DATA` runs the capped 4-thread trace_oom_workload,
which logs every NULL with its thread id. Then: the relay's tree holds exactly the two host folders, each one
hakmem- session, and `oom-paths --json OUTPUT/HOST` lists one OOM per NULL of that host's workload, on the same
threads; our hostname, our /var/run/lttng and /dev/shm mounts are as before; the Hosts' sessiond, every helper
each was seen with (an lttng-consumerd among them) and the relay daemon are gone, checked by pid.

Needs root (unshare --mount, mount(8)); run as another user it exits 77 (skipped), as it does where lttng, bt2 or
lttng-relayd is missing. unshare and nsenter come with util-linux (essential on Debian).

usage: test_uts_hosts.py --lib libhakmem-trace.so --workload trace_oom_workload
"""
import json
import os
import shutil
import socket
import subprocess
import time

import tracetest as tt
import uts_hosts
from test_relayd import HOST, Relayd, listening
from uts_hosts import Host

NAMES = ("hakmem-host-a", "hakmem-host-b")
CAP = "16M"
REFUSALS = 2
THREADS = 4
TIMEOUT_S = 240


def our_mounts():
    """Our view of the mounts a Host hides: what must be the same after the test."""
    return {d: uts_hosts.mounts_at("self", d) for d in (uts_hosts.RUNDIR, uts_hosts.SHMDIR)}


def main():
    args = tt.arguments(workload="trace_oom_workload")
    if os.geteuid() != 0:
        tt.skip("needs root: a Host is a UTS + mount namespace with root's lttng-sessiond")
    if shutil.which("lttng-relayd") is None:
        tt.skip("lttng-relayd not found (apt-get install lttng-tools)")
    for tool in ("unshare", "nsenter", "hostname", "mount"):
        tt.check(shutil.which(tool) is not None, f"{tool} not found (util-linux / hostname are essential on Debian)")
    hostname_before = socket.gethostname()
    mounts_before = our_mounts()

    work = tt.workdir()
    relay_out = work / "relayd-output"
    relay_out.mkdir()
    relayd = Relayd(relay_out, work)
    env = dict(os.environ, HAKMEM_MAX_MEMORY=CAP)
    logs = {name: work / f"nulls-{name}.log" for name in NAMES}
    hosts = {}
    started = time.monotonic()
    try:
        control, data, _live = relayd.start()
        strays = sorted(a for a in listening(relayd.proc.pid) if a[0] != HOST)
        tt.check(not strays, f"lttng-relayd listens on {strays}, beyond {HOST}")
        url = f"net://{HOST}:{control}:{data}"
        with Host(NAMES[0], work) as a, Host(NAMES[1], work) as b:
            hosts = {a.name: a, b.name: b}
            tt.ok(f"hosts up in {time.monotonic() - started:.1f} s: {a.name} (sessiond {a.pid}), "
                  f"{b.name} (sessiond {b.pid})")
            for h in (a, b):
                seen = h.run(["hostname"], capture_output=True, text=True).stdout.strip()
                tt.check(seen == h.name, f"hostname in {h.name} is {seen!r}")
            tt.check(socket.gethostname() == hostname_before,
                     f"our hostname became {socket.gethostname()!r} with the hosts up")
            # At once: two sessionds each with a session streaming to the one relay.
            recordings = {h.name: h.start_record([args.workload, logs[h.name], REFUSALS, THREADS], lib=args.lib,
                                                 url=url, env=env)
                          for h in (a, b)}
            deadline = time.monotonic() + TIMEOUT_S
            statuses = {}
            for name, proc in recordings.items():
                try:
                    statuses[name] = uts_hosts.finish(proc, max(1, deadline - time.monotonic()),
                                                      f"hakmem-trace record in {name}")
                except TimeoutError as e:
                    tt.fail(str(e))
            tt.check(all(s == 0 for s in statuses.values()),
                     f"the workloads (or hakmem-trace record) exited with {statuses}, want 0 each")
            tt.check(relayd.proc.poll() is None,
                     f"lttng-relayd exited during the recordings with status {relayd.proc.returncode}")
            for h in (a, b):
                helpers = h.helpers()
                tt.check(any(c == "lttng-consumerd" for _, _, c in helpers),
                         f"{h.name}'s sessiond has no lttng-consumerd after a recording: {helpers}")
        tt.ok(f"recorded in both hosts in {time.monotonic() - started:.1f} s; hosts stopped")
    except uts_hosts.HostError as e:
        tt.fail(str(e))
    finally:
        for h in hosts.values():
            h.stop()
        relayd.stop()  # also closes every trace file it wrote

    # Nothing of ours is left, checked by pid: each sessiond, the helpers it had, anything in its namespace.
    for h in hosts.values():
        tt.check(h.gone(), f"{h.name}: processes left: sessiond {h.pid} "
                           f"{'gone' if h.proc.poll() is not None else 'alive'}, members {h.members()}")
        tt.check(not h.strays, f"{h.name}: processes were still in its namespace after its sessiond: {h.strays}")
        tt.check(h.exit_status == 0, f"{h.name}'s sessiond exited with status {h.exit_status} on SIGTERM")
    tt.check(relayd.proc.poll() is not None, f"lttng-relayd {relayd.proc.pid} still runs")
    tt.check(socket.gethostname() == hostname_before,
             f"our hostname is {socket.gethostname()!r} after the test, was {hostname_before!r}")
    shown = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    tt.check(shown == hostname_before, f"`hostname` says {shown!r}, was {hostname_before!r}")
    tt.check(our_mounts() == mounts_before, f"our mounts changed: {mounts_before} -> {our_mounts()}")
    tt.ok(f"sessionds {[h.pid for h in hosts.values()]} with helpers "
          f"{sorted({c for h in hosts.values() for _, _, c in h.helpers_seen})} and lttng-relayd {relayd.proc.pid} "
          f"gone; hostname {hostname_before!r} and the mounts on {sorted(mounts_before)} as before")

    tree = sorted(p.name for p in relay_out.iterdir())
    tt.check(tree == sorted(NAMES), f"the relay's tree holds hosts {tree}, want {sorted(NAMES)}")
    tids = {}
    for name in NAMES:
        sessions = sorted(p.name for p in (relay_out / name).iterdir())
        tt.check(len(sessions) == 1 and sessions[0].startswith("hakmem-"), f"sessions under {name}: {sessions}")
        nulls = [line.split() for line in logs[name].read_text().splitlines()]
        tt.check(len(nulls) == THREADS * REFUSALS,
                 f"{name}'s workload logged {len(nulls)} NULLs, want {THREADS * REFUSALS}")
        tids[name] = sorted(int(n[0]) for n in nulls)
        report = json.loads(tt.cli("oom-paths", "--json", relay_out / name))
        ooms = sorted(o["vtid"] for o in report["ooms"])
        tt.check(ooms == tids[name], f"{name}: OOMs on threads {ooms}, NULLs on {tids[name]}")
        lost = report["lost_events"]
        tt.check(not lost["discarded_events"] and not lost["discarded_packets"], f"{name}: events lost: {lost}")
        tt.ok(f"{name}/{sessions[0]}: {len(ooms)} OOMs, one per NULL, on threads {sorted(set(ooms))}")
    # Each folder holds its own host's run, not both (the threads of two live processes never share an id).
    tt.check(not set(tids[NAMES[0]]) & set(tids[NAMES[1]]), f"the two workloads' threads overlap: {tids}")
    print(f"test_uts_hosts: passed in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
