#!/usr/bin/python3
"""test_record_live.py — `hakmem-trace record --live` streams a live session to an lttng-relayd, and `oom-paths`
reads the relay's output tree (HOSTNAME/SESSION/ust/...): every OOM of the run, on the thread that got the NULL.

Starts its own lttng-relayd on 127.0.0.1 only (test_relayd.Relayd: ports chosen free, stopped by its pid whatever
happens) and records, with `--live --set-url net://127.0.0.1:CONTROL:DATA`, a shell that waits on a FIFO and then
becomes the 4-thread capped workload. While the shell waits, the relay's live port must list the session with the
default live timer (a session streamed without --live is listed there too, with timer 0). Afterwards the tree's
host folder must be this host's name and the analysis of the tree must list one OOM per logged NULL. Also: --live
with --flight-recorder is refused in one sentence, exit status 2, with nothing recorded.

usage: test_record_live.py --lib libhakmem-trace.so --workload trace_oom_workload
"""
import errno
import json
import os
import socket
import subprocess
import threading
import time

import tracetest as tt
from hakmem import record
from test_relayd import HOST, listening, relay_workdir

CAP = "16M"
REFUSALS = 2
WAIT_S = 60


def live_sessions(port):
    """The sessions the relay's live port lists: {session name: live timer in µs}."""
    import bt2
    cls = bt2.find_plugin("ctf").source_component_classes["lttng-live"]
    found = bt2.QueryExecutor(cls, "sessions", {"url": f"net://{HOST}:{port}"}).query()
    return {str(s["session-name"]): int(s["timer-us"]) for s in found}


def release(fifo, recording):
    """Open the FIFO the shell waits on (once the shell has opened it) and close it: the shell goes on. Nothing to
    do once the recording has ended (it failed before the shell ran: its status says so)."""
    deadline = time.monotonic() + WAIT_S
    while recording.is_alive():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return
        except OSError as e:
            if e.errno != errno.ENXIO or time.monotonic() > deadline:
                tt.fail(f"the recorded shell never opened {fifo}: {e}")
            time.sleep(0.05)


def main():
    args = tt.arguments(workload="trace_oom_workload")

    refused = subprocess.run([tt.PYTHON, str(tt.HAKMEM_TRACE), "record", "--live", "--flight-recorder", "--",
                              "true"], capture_output=True, text=True, timeout=60)
    lines = refused.stderr.strip().splitlines()
    tt.check(refused.returncode == 2 and len(lines) == 1 and "exclude each other" in lines[0],
             f"--live --flight-recorder: exit {refused.returncode}, stderr {refused.stderr!r}")
    tt.ok(f"--live with --flight-recorder: {lines[0]}")

    work, relay_out, relayd = relay_workdir()
    log = work / "nulls.log"
    try:
        control, data, live = relayd.start()
        strays = sorted(a for a in listening(relayd.proc.pid) if a[0] != HOST)
        tt.check(not strays, f"lttng-relayd listens on {strays}, beyond {HOST}")
        fifo = work / "go"
        os.mkfifo(fifo)
        env = dict(os.environ, HAKMEM_MAX_MEMORY=CAP)
        command = ["sh", "-c", 'cat "$1" >/dev/null && exec "$2" "$3" "$4"', "sh", fifo, args.workload, log, REFUSALS]
        result = []
        recording = threading.Thread(target=lambda: result.append(tt.record(
            command, lib=args.lib, output=work / "unused", env=env,
            options=["--live", "--set-url", f"net://{HOST}:{control}:{data}"], timeout=240)))
        recording.start()
        try:
            deadline = time.monotonic() + WAIT_S
            while not (listed := live_sessions(live)) and time.monotonic() < deadline and recording.is_alive():
                time.sleep(0.1)
        finally:
            release(fifo, recording)
            recording.join()
        tt.check(len(listed) == 1 and next(iter(listed.values())) == record.DEFAULT_LIVE_TIMER_US,
                 f"the relay's live port lists {listed}, want one session with timer {record.DEFAULT_LIVE_TIMER_US} µs")
        tt.ok(f"while it ran, the live port listed {listed}")
        status = result[0][0] if result else None
        tt.check(status == 0, f"the workload (or hakmem-trace record) exited with status {status}, want 0")
        tt.check(relayd.proc.poll() is None,
                 f"lttng-relayd exited during the recording with status {relayd.proc.returncode}")
    finally:
        relayd.stop()  # also closes every trace file it wrote
    nulls = [line.split() for line in log.read_text().splitlines()]
    tt.check(len(nulls) == 4 * REFUSALS, f"the workload logged {len(nulls)} NULLs, want {4 * REFUSALS}")

    hosts = sorted(p.name for p in relay_out.iterdir())
    tt.check(hosts == [socket.gethostname()], f"the relay's tree holds hosts {hosts}, want [{socket.gethostname()}]")
    sessions = sorted(p.name for p in (relay_out / hosts[0]).iterdir())
    tt.check(len(sessions) == 1 and sessions[0].startswith("hakmem-"), f"sessions in the relay's tree: {sessions}")
    tt.ok(f"the relay keeps {hosts[0]}/{sessions[0]}")

    report = json.loads(tt.cli("oom-paths", "--json", relay_out))
    ooms = report["ooms"]
    tt.check(sorted(o["vtid"] for o in ooms) == sorted(int(n[0]) for n in nulls),
             f"OOMs on threads {sorted(o['vtid'] for o in ooms)}, NULLs on {sorted(int(n[0]) for n in nulls)}")
    if {"refill_enter", "superslab_alloc_fail"} <= tt.compiled_events():
        tt.check(all(o["cause"] == "cap_reached" for o in ooms), f"causes {[o['cause'] for o in ooms]}")
    lost = report["lost_events"]
    tt.check(not lost["discarded_events"] and not lost["discarded_packets"], f"events lost: {lost}")
    tt.ok(f"oom-paths on the relay's tree: {len(ooms)} OOMs, one per NULL, causes "
          f"{sorted({o['cause'] for o in ooms})}")
    print("test_record_live: passed")


if __name__ == "__main__":
    main()
