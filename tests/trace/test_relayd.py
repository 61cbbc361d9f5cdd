#!/usr/bin/python3
"""test_relayd.py — `hakmem-trace record --set-url net://...` streams the trace to an lttng-relayd.

Starts its own lttng-relayd listening on 127.0.0.1 only (control, data and live ports chosen free, output in a
temporary folder), records a short seed scenario that refills with `--set-url net://127.0.0.1:CONTROL:DATA`,
stops the relay daemon (so every file it wrote is closed), then asserts the trace arrived under the relay's output
folder, reads with bt2 and holds the workload's hakmem:refill_enter events, none lost. The relay daemon is stopped
by its pid whatever happens.

usage: test_relayd.py --lib libhakmem-trace.so --stress stress_seed_libc
"""
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import tracetest as tt

HOST = "127.0.0.1"  # the only address this test uses
WORKLOAD = ["normal", "--ops", "20000", "--live", "5000"]


def free_ports(n):
    """n distinct ports free on 127.0.0.1 now (the relay binds them right after; a lost race is retried)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def socket_inodes(pid):
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        for fd in fd_dir.iterdir():
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def listening(pid):
    """{(address, port)} of the TCP sockets in LISTEN state that process pid holds (IPv4 and IPv6)."""
    mine = socket_inodes(pid)
    found = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, state, inode = f[1], f[3], f[9]
            if state != "0A" or inode not in mine:
                continue
            addr_hex, port_hex = local.split(":")
            # IPv4 addresses print as one little-endian word; IPv6 ones are kept as hex (never 127.0.0.1)
            addr = f"ipv6:{addr_hex}" if v6 else socket.inet_ntoa(bytes.fromhex(addr_hex)[::-1])
            found.add((addr, int(port_hex, 16)))
    return found


def relay_workdir(root=False):
    """(the test's work folder, the relay's output folder in it, a Relayd writing there, not yet started). Skips
    (exit 77) where lttng-relayd is missing, or, if root is asked for (a uts_hosts.Host), as another user."""
    if root and os.geteuid() != 0:
        tt.skip("needs root: a Host is a UTS + mount namespace with root's lttng-sessiond")
    if shutil.which("lttng-relayd") is None:
        tt.skip("lttng-relayd not found (apt-get install lttng-tools)")
    work = tt.workdir()
    relay_out = work / "relayd-output"
    relay_out.mkdir()
    return work, relay_out, Relayd(relay_out, work)


class Relayd:
    """lttng-relayd in the foreground as our child, so its pid is known; stopped by that pid."""

    def __init__(self, outdir, logdir):
        self.outdir, self.logdir = outdir, logdir
        self.proc = None
        self.ports = None

    def start(self, attempts=3, ports=None):
        """Listening on ports (control, data, live): chosen free, or the given ones (a relay started again)."""
        fixed = ports
        for attempt in range(1 if fixed else attempts):
            ports = fixed or free_ports(3)
            urls = [f"tcp://{HOST}:{p}" for p in ports]
            log = open(self.logdir / f"relayd-{attempt}.log", "w")
            self.proc = subprocess.Popen(["lttng-relayd", "-C", urls[0], "-D", urls[1], "-L", urls[2],
                                          "-o", str(self.outdir)], stdout=log, stderr=subprocess.STDOUT)
            log.close()
            print(f"lttng-relayd pid {self.proc.pid}: control {urls[0]}, data {urls[1]}, live {urls[2]}", flush=True)
            want = {(HOST, p) for p in ports}
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.proc.poll() is None:
                if want <= listening(self.proc.pid):
                    self.ports = ports
                    return ports
                time.sleep(0.05)
            text = (self.logdir / f"relayd-{attempt}.log").read_text().strip()
            self.stop()
            print(f"lttng-relayd did not listen on {sorted(want)} (attempt {attempt + 1}): {text[-500:]}", flush=True)
        tt.fail(f"could not start lttng-relayd on {HOST} in {attempts} attempts")

    def stop(self):
        """SIGTERM, then SIGKILL after 30 s; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def main():
    args = tt.arguments(stress="stress_seed_libc (the seed scenario through plain malloc)")
    lib = args.lib
    work, relay_out, relayd = relay_workdir()
    try:
        control, data, _live = relayd.start()
        sockets = listening(relayd.proc.pid)
        strays = sorted(a for a in sockets if a[0] != HOST)
        tt.check(not strays, f"lttng-relayd listens on {strays}, beyond {HOST}")
        tt.ok(f"lttng-relayd {relayd.proc.pid} listens on {sorted(sockets)} only")

        status, _ = tt.record([args.stress, *WORKLOAD], lib=lib, output=work / "unused",
                              options=["--set-url", f"net://{HOST}:{control}:{data}"], timeout=240)
        tt.check(status == 0, f"the workload (or hakmem-trace record) exited with status {status}, want 0")
        tt.check(relayd.proc.poll() is None,
                 f"lttng-relayd exited during the recording with status {relayd.proc.returncode}")
    finally:
        relayd.stop()  # also closes every trace file it wrote
    tt.ok("workload exited 0; relay daemon stopped")

    traces = tt.find_traces(relay_out)
    tt.check(traces, f"no trace (no metadata file) arrived under {relay_out}: "
                     f"{sorted(str(p.relative_to(relay_out)) for p in relay_out.rglob('*'))[:20]}")
    local = work / "unused"
    tt.check(not (local.exists() and tt.find_traces(local)), "a streamed session also wrote a local trace")
    print("traces received: " + ", ".join(str(p.relative_to(relay_out)) for p in traces), flush=True)

    t = tt.read_trace(relay_out)
    tt.check(t.discarded_events == 0, f"{t.discarded_events} events were discarded")
    refills = t.named("hakmem:refill_enter")
    tt.check(refills, f"the streamed trace holds no hakmem:refill_enter among its {len(t.events)} events")
    procs = {e["procname"] for e in refills}
    tt.check(any(p and p.startswith("stress_seed") for p in procs),
             f"refill_enter events come from {procs}, not the workload stress_seed_libc")
    threads = {e["vtid"] for e in refills}
    tt.check(len({e["vpid"] for e in refills}) == 1, f"refill_enter events from several processes: {refills[:3]}")
    tt.check(len(threads) >= 4, f"refill_enter events from {len(threads)} threads, want the workload's 4 at least")
    tt.ok(f"{len(t.events)} events streamed, {len(refills)} refill_enter from {len(threads)} threads of "
          f"{sorted(procs)}, none lost")
    print("test_relayd: passed")


if __name__ == "__main__":
    main()
