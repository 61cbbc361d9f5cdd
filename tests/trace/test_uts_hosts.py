#!/usr/bin/python3
"""test_uts_hosts.py — two machines streaming live to one lttng-relayd, played on one by uts_hosts.Host: one
`hakmem-trace watch --json --all` prints every OOM of both as it happens, each once, with its host, session,
process, thread and cause; the relay's output tree gets one folder per hostname, `oom-paths` on each host's folder
finds that host's OOMs only, and on the whole tree finds the very OOMs watch printed, each under its own host.

Starts an lttng-relayd on 127.0.0.1 only (test_relayd.Relayd, in our own namespaces), a watcher on its live port,
and two Hosts, hakmem-host-a and hakmem-host-b (each a UTS + mount namespace with its own lttng-sessiond). In each,
at the same time, `hakmem-trace record --live --set-url net://127.0.0.1:CONTROL:DATA` runs a shell that waits on a
FIFO, then becomes the capped 4-thread trace_oom_workload, which logs every NULL with its thread id. Once the
watcher follows both sessions, host a's FIFO is released, and host b's only after the watcher printed host a's
OOMs: a watcher that printed late, or at the end, fails here (how long each report took after its OOM event is
printed, not asserted). When both sessions end the watcher says each was destroyed and waits; SIGTERM stops it
with status 0. Then: the relay's tree holds exactly the two host folders, each one hakmem- session, and `oom-paths
--json OUTPUT/HOST` lists one OOM per NULL of that host's workload, on the same threads; the whole OUTPUT given at
once lists both hosts' OOMs, each tagged with its own host (the trace metadata's hostname) and numbered once,
`summary` counts them per host, and `heap` refuses the tree in one line naming each host's --host/--session, and
an unknown --host, while `heap --json --host A` and `timeline --host B` print and draw what they do on that host's
folder; our hostname, our /var/run/lttng and /dev/shm mounts are as before; the Hosts' sessiond, every helper each
was seen with (an lttng-consumerd among them) and the relay daemon are gone, checked by pid.

Needs root (unshare --mount, mount(8)); run as another user it exits 77 (skipped), as it does where lttng, bt2 or
lttng-relayd is missing. unshare and nsenter come with util-linux (essential on Debian).

usage: test_uts_hosts.py --lib libhakmem-trace.so --workload trace_oom_workload
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import tracetest as tt
import uts_hosts
from test_record_live import release
from test_relayd import HOST, listening, relay_workdir
from test_watch import Watcher, check_ooms, latency_line, relay_sessions
from uts_hosts import Host

NAMES = ("hakmem-host-a", "hakmem-host-b")
CAP = "16M"
REFUSALS = 2
THREADS = 4
TIMEOUT_S = 240
# The recorded command: wait on the FIFO $1, then run the workload as the same process.
WAIT_THEN_RUN = 'cat "$1" >/dev/null; shift; exec "$@"'


def our_mounts():
    """Our view of the mounts a Host hides: what must be the same after the test."""
    return {d: uts_hosts.mounts_at("self", d) for d in (uts_hosts.RUNDIR, uts_hosts.SHMDIR)}


class Running:
    """A recording's Popen as test_record_live.release sees a recording: alive or not."""

    def __init__(self, proc):
        self.proc = proc

    def is_alive(self):
        return self.proc.poll() is None


def host_sessions(live_port):
    """{hostname: session name} once the relay's live port lists one session of each of NAMES."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        found = relay_sessions(live_port)
        by_host = {h: s for h, s in found if h in NAMES}
        if len(by_host) == len(NAMES):
            tt.check(len(found) == len(NAMES), f"the relay lists {sorted(found)}, want one session per host")
            return by_host
        time.sleep(0.1)
    tt.fail(f"the relay did not list a session of each host within {TIMEOUT_S} s")


def main():
    args = tt.arguments(workload="trace_oom_workload")
    for tool in ("unshare", "nsenter", "hostname", "mount"):
        tt.check(shutil.which(tool) is not None, f"{tool} not found (util-linux / hostname are essential on Debian)")
    hostname_before = socket.gethostname()
    mounts_before = our_mounts()

    work, relay_out, relayd = relay_workdir(root=True)
    env = dict(os.environ, HAKMEM_MAX_MEMORY=CAP)
    logs = {name: work / f"nulls-{name}.log" for name in NAMES}
    hosts = {}
    watcher = None
    followed = {}
    started = time.monotonic()
    try:
        control, data, live = relayd.start()
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
            # At once: two sessionds each with a live session streaming to the one relay, followed by one watcher
            # from before they exist; each workload waits on a FIFO, so that its OOMs happen when the test says.
            watcher = Watcher("W", "--json", "--all", f"net://{HOST}:{live}")
            go = {h.name: work / f"go-{h.name}" for h in (a, b)}
            for fifo in go.values():
                os.mkfifo(fifo)
            recordings = {h.name: h.start_record(["sh", "-c", WAIT_THEN_RUN, "sh", go[h.name], args.workload,
                                                  logs[h.name], REFUSALS, THREADS],
                                                 lib=args.lib, url=url, env=env, options=["--live"])
                          for h in (a, b)}
            followed = host_sessions(live)
            for name in NAMES:
                watcher.follows(f"{name}/{followed[name]}")
            printed = 0
            for name in NAMES:  # one host after the other: its OOMs printed while the other still waits
                release(go[name], Running(recordings[name]))
                printed += THREADS * REFUSALS
                watcher.wait_ooms(printed)
            deadline = time.monotonic() + TIMEOUT_S
            statuses = {}
            for name, proc in recordings.items():
                try:
                    statuses[name] = uts_hosts.finish(proc, max(1, deadline - time.monotonic()),
                                                      f"hakmem-trace record in {name}")
                except TimeoutError as e:
                    tt.fail(str(e))
            for name in NAMES:
                watcher.said(f"session {name}/{followed[name]} was destroyed; waiting for others")
            watcher.proc.send_signal(signal.SIGTERM)
            tt.check(watcher.proc.wait(timeout=TIMEOUT_S) == 0,
                     f"watch exited {watcher.proc.returncode} on SIGTERM")
            watcher.out.thread.join(timeout=TIMEOUT_S)
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
        if watcher:
            watcher.stop()
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
    latencies = check_ooms(watcher.ooms(), [(name, followed[name], tids[name]) for name in NAMES], "watch")
    tt.ok(f"watch printed {len(latencies)} OOMs, each once, as each host's workload got its NULLs, on the right "
          f"host, session, process and thread; {latency_line(latencies)}")
    whole = whole_tree(relay_out, tids)
    key = ("host", "session", "vpid", "vtid", "time_ns")
    tree_causes = {tuple(o[k] for k in key): o["cause"] for o in whole}
    live = {tuple(o[k] for k in key): o for _, o in watcher.ooms()}
    tt.check(sorted(live) == sorted(tree_causes),
             "the OOMs watch printed live are not those oom-paths finds in the relay's tree")
    # The live viewer does not pass on a CPU's empty packets, so a CPU whose buffer held no event until a thread
    # came to it in the middle of an OOM path looks, live, like a buffer that begins inside the path: watch says
    # incomplete where the whole tree shows the cause. Conservative, not wrong; any other difference fails.
    midway = [k for k, o in live.items() if o["cause"] != tree_causes[k] and o["cause"] == "incomplete"
              and o.get("cause_detail", "").startswith("the trace begins in the middle of this path")]
    differ = {k: (o["cause"], tree_causes[k]) for k, o in live.items()
              if o["cause"] != tree_causes[k] and k not in midway}
    tt.check(not differ, f"causes watch printed live against the relay's tree: {differ}")
    tt.ok(f"oom-paths on the relay's tree lists the very OOMs watch printed live, with the same causes"
          f"{f' ({len(midway)} incomplete live: a CPU buffer first seen inside the path)' if midway else ''}")
    print(f"test_uts_hosts: passed in {time.monotonic() - started:.1f} s")


def hakmem_trace(*args):
    """`hakmem-trace ARGS...` run to its end, whatever its status: the CompletedProcess (text)."""
    return subprocess.run([uts_hosts.PYTHON, str(uts_hosts.HAKMEM_TRACE), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def whole_tree(relay_out, tids):
    """The relay's whole OUTPUT given at once: every OOM of both hosts, each tagged with the host whose workload
    got that NULL (the metadata's hostname, not the folder's name), numbered once, grouped by host then thread;
    summary's fleet view counts them per host; heap, which reads one host, refuses the tree in one sentence
    listing each host's --host H --session S, and an unknown --host likewise; heap --json --host A and timeline
    --host B say exactly what they say on that host's folder."""
    report = json.loads(tt.cli("oom-paths", "--json", relay_out))
    tt.check(report["schema"] == "hakmem-trace/1", f"schema {report['schema']!r}")
    ooms = report["ooms"]
    got = {name: sorted(o["vtid"] for o in ooms if o.get("host") == name) for name in NAMES}
    tt.check(got == tids, f"the whole tree's OOMs by host: {got}, NULLs by host: {tids}")
    tt.check(len(ooms) == sum(map(len, tids.values())), f"{len(ooms)} OOMs in the whole tree, want "
                                                          f"{sum(map(len, tids.values()))}")
    tt.check([o["index"] for o in ooms] == list(range(1, len(ooms) + 1)),
             f"OOM numbers {[o['index'] for o in ooms]}, want 1..{len(ooms)} in order")
    order = [(o["host"], o["vpid"], o["vtid"]) for o in ooms]
    tt.check(order == sorted(order), f"OOMs not grouped by host, process, thread: {order}")
    hosts = [h["host"] for h in report["hosts"]]
    tt.check(hosts == sorted(NAMES), f"hosts listed {hosts}, want {sorted(NAMES)}")
    for h in report["hosts"]:
        tt.check(len(h["sessions"]) == 1 and Path(h["sessions"][0]["folder"]) == relay_out / h["host"],
                 f"{h['host']}'s sessions: {h['sessions']}")
        session = h["sessions"][0]["session"]
        folder = next((relay_out / h["host"]).iterdir()).name
        tt.check(folder.startswith(session + "-"), f"{h['host']}: session {session!r}, relay folder {folder!r}")
        tt.check(all(o["session"] == session for o in ooms if o["host"] == h["host"]),
                 f"{h['host']}: OOMs of other sessions than {session}")
    threads = {(t["host"], t["vtid"]): t["ooms"] for t in report["summary"]["threads"] if t["ooms"]}
    want = {(name, tid): tids[name].count(tid) for name in NAMES for tid in tids[name]}
    tt.check(threads == want, f"summary's threads with OOMs {threads}, want {want}")

    text = tt.cli("oom-paths", relay_out)
    headers = re.findall(r"^OOM (\d+)/(\d+) on host (\S+): pid \d+ tid (\d+) ", text, re.M)
    tt.check(sorted((h, int(t)) for _, _, h, t in headers) == sorted((n, t) for n in NAMES for t in tids[n]),
             f"oom-paths' OOM headers {headers}")
    for name in NAMES:
        tt.check(re.search(rf"^host {name}, session hakmem-\S+ \(.*\): {len(tids[name])} OOM\(s\)", text, re.M),
                 f"oom-paths names no line for {name} with {len(tids[name])} OOMs:\n{text[:600]}")

    fleet = json.loads(tt.cli("summary", "--json", relay_out))["fleet"]
    per_host = {h["host"]: h["ooms"] for h in fleet["hosts"]}
    tt.check(per_host == {n: len(tids[n]) for n in NAMES}, f"summary's fleet: OOMs per host {per_host}")
    per_proc = {p["host"]: p["ooms"] for p in fleet["processes"]}
    tt.check(per_proc == per_host and len(fleet["processes"]) == len(NAMES),
             f"summary's fleet: processes {fleet['processes']}")
    tt.check(sum(c["ooms"] for c in fleet["causes"].values()) == len(ooms), f"fleet causes {fleet['causes']}")
    text = tt.cli("summary", relay_out)
    for name in NAMES:
        tt.check(re.search(rf"^  {name}\s+1\s+{len(tids[name])}\s", text, re.M),
                 f"summary shows no row for {name} with {len(tids[name])} OOMs:\n{text[:800]}")

    sessions = {h["host"]: h["sessions"][0]["session"] for h in report["hosts"]}
    out = hakmem_trace("heap", relay_out)
    choices = [f"--host {n} --session {sessions[n]}" for n in NAMES]
    tt.check(out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
             and "reads one at a time" in out.stderr and all(c in out.stderr for c in choices),
             f"heap on the whole tree: exit {out.returncode}, {out.stderr!r}, want one line listing {choices}")
    out = hakmem_trace("heap", "--host", "hakmem-host-c", relay_out)
    tt.check(out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
             and "holds no traces of --host hakmem-host-c" in out.stderr and all(c in out.stderr for c in choices),
             f"heap --host hakmem-host-c: exit {out.returncode}, {out.stderr!r}, want one line listing {choices}")
    # --host reads that host's group as its own folder would be read: the same outcome, whatever it is (the
    # workload records no heap samples, so heap may well refuse both in the same sentence).
    picked = hakmem_trace("heap", "--json", "--host", NAMES[0], relay_out)
    alone = hakmem_trace("heap", "--json", relay_out / NAMES[0])
    tt.check((picked.returncode, picked.stdout, picked.stderr) == (alone.returncode, alone.stdout, alone.stderr),
             f"heap --json --host {NAMES[0]}: exit {picked.returncode}, {picked.stdout[:300]!r}, "
             f"{picked.stderr!r}; on its folder: exit {alone.returncode}, {alone.stdout[:300]!r}, {alone.stderr!r}")
    # The picture's title names the trace folder: with --host, the host's own folder in the tree, spelled as
    # relay_out / HOST is, so the two files are compared as they are, byte for byte, with no path to normalise.
    pictures = {}
    for how, argv in (("--host", ["--host", NAMES[1], relay_out]), ("folder", [relay_out / NAMES[1]])):
        pictures[how] = relay_out.parent / f"timeline-{how.strip('-')}.html"
        out = hakmem_trace("timeline", "-o", pictures[how], *argv)
        tt.check(out.returncode == 0, f"timeline {how} {NAMES[1]}: exit {out.returncode}, {out.stderr!r}")
    tt.check(pictures["--host"].read_bytes() == pictures["folder"].read_bytes(),
             f"timeline --host {NAMES[1]} drew another picture than timeline on {relay_out / NAMES[1]}")
    tt.ok(f"the whole tree: {len(ooms)} OOMs, each on its host's threads ({per_host}); heap refuses it in one line "
          f"listing {choices}, and an unknown --host; heap --json --host {NAMES[0]} (exit {alone.returncode}) and "
          f"timeline --host {NAMES[1]} say what they say on that host's folder")
    return ooms


if __name__ == "__main__":
    main()
