#!/usr/bin/python3
"""test_watch.py — `hakmem-trace watch` explains every OOM of a live session while the session runs, exactly once,
through traced processes coming and going, a relay stopped and started again and sessions destroyed; and says in
one sentence (exit status 2, never a traceback or a hang) when a URL is no relay, a session does not exist or the
relay keeps closing the connection mid-stream.

A real lttng-relayd on 127.0.0.1 (test_relayd.Relayd, stopped by its pid). Each recording (`hakmem-trace record
--live`) is a shell that, FIFO by FIFO, runs the capped 2-thread trace_oom_workload (one NULL per thread) as a new
process, so every OOM happens when the test says. lttng-relayd serves a session to one live reader at a time, so
the watchers take turns: W1 follows the first session by name, W2 follows --all after it. The OOMs of a process
must be printed while the shell still waits before its next step (the test waits for them before it releases that
step): a watcher that printed only at the end, or not at all, fails here. How long each report took after its OOM
event is printed for the record (a benchmark's number, not asserted).

  bad input: a peer that never answers, one that closes at once, a URL that is not net://, no such session,
             a proxy cutting the stream, a session another watcher follows
  session 1: process 1, process 2 -> W1 prints their OOMs; the session ends -> W1 says it was destroyed, exits 0
  session 2: process 3 -> W2 (--all, started before it) picks it up and prints its OOMs; the relay is stopped
             (W2 says so) and started again on the same ports (W2 says it is back)
  session 3: process 4 -> W2 prints its OOMs; the session ends -> W2 says so and waits; SIGTERM -> W2 exits 0
W1 must print exactly the OOMs of processes 1 and 2, W2 exactly those of processes 3 and 4, each once, with this
host's name, the session, the process and the thread that logged the NULL.

usage: test_watch.py --lib libhakmem-trace.so --workload trace_oom_workload
"""
import json
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

import tracetest as tt
from test_record_live import live_sessions, release
from test_relayd import HOST, relay_workdir

CAP = "16M"
THREADS = 2
WAIT_S = 90          # a hang guard: a watcher that never prints fails here, long after any live timer
FAKE_PEERS = Path(__file__).resolve().parent / "fake_peers.py"
ATTACH_S = 1.0      # five live timer periods: every packet open when a watcher attached is closed by then
CUT_AFTER = 4096     # bytes a cutting proxy lets through per connection: a sessions list, not a session's metadata


class Lines:
    """A pipe read line by line by a thread, each line with the time it arrived."""

    def __init__(self, stream, echo):
        self.lines = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream, echo), daemon=True)
        self.thread.start()

    def _read(self, stream, echo):
        for line in stream:
            with self.cond:
                self.lines.append((time.time_ns(), line.rstrip("\n")))
                self.cond.notify_all()
            if echo:
                print(f"{echo}{line.rstrip()}", flush=True)

    def wait_for(self, pred, what, start=0):
        """The first (time, line) from index start on for which pred(line) holds; fails after WAIT_S."""
        deadline = time.monotonic() + WAIT_S
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if pred(self.lines[i][1]):
                        return i, self.lines[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    tt.fail(f"{what}: not seen within {WAIT_S} s; got {[l for _, l in self.lines][-10:]}")
                self.cond.wait(left)


class Watcher:
    def __init__(self, name, *args):
        self.name = name
        argv = [tt.PYTHON, str(tt.HAKMEM_TRACE), "watch", *args]
        print("+ " + " ".join(argv), flush=True)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out = Lines(self.proc.stdout, None)
        self.err = Lines(self.proc.stderr, f"[{name}] ")

    def said(self, text, start=0):
        return self.err.wait_for(lambda line: text in line, f"{self.name} saying '{text}'", start)[0]

    def follows(self, session, start=0):
        """Once it says it follows session (HOST/NAME), and then for ATTACH_S: the relay serves a new reader each
        stream from the packet last indexed when it attached, so what a thread writes before every stream's next
        packet begins is seen as a path whose trace begins midway (cause incomplete). The live timer closes
        every packet within its period (200 ms); OOMs the test is to see whole begin after that."""
        mark = self.said(f"following session {session}", start)
        time.sleep(ATTACH_S)
        return mark

    def ooms(self):
        return [(t, json.loads(line)) for t, line in self.out.lines]

    def wait_ooms(self, n):
        """The first n OOM objects printed (with the time each arrived)."""
        self.out.wait_for(lambda line: True, f"{self.name} printing OOM {n}", start=n - 1)
        return self.ooms()[:n]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Recording:
    """`hakmem-trace record --live` of a shell that, at each FIFO released, runs the workload as a new process
    logging its NULLs to that step's log, and at the last FIFO ends (and the session with it)."""

    def __init__(self, work, tag, steps, workload, lib, url):
        self.fifos = [work / f"{tag}-go-{i}" for i in range(steps + 1)]
        self.logs = [work / f"{tag}-nulls-{i}" for i in range(steps)]
        for f in self.fifos:
            os.mkfifo(f)
        script = ('while [ $# -gt 1 ]; do cat "$1" >/dev/null; "$WORKLOAD" "$2" 1 ' + str(THREADS) +
                  '; shift 2; done; cat "$1" >/dev/null')
        args = [a for pair in zip(self.fifos, self.logs) for a in pair] + [self.fifos[-1]]
        env = dict(os.environ, HAKMEM_MAX_MEMORY=CAP, WORKLOAD=workload)
        self.result = []
        self.thread = threading.Thread(target=lambda: self.result.append(tt.record(
            ["sh", "-c", script, "sh", *args], lib=lib, output=work / f"{tag}-unused", env=env,
            options=["--live", "--set-url", url], timeout=600)))
        self.thread.start()

    def step(self, i):
        release(self.fifos[i], self.thread)

    def nulls(self, i):
        return sorted(int(line.split()[0]) for line in self.logs[i].read_text().splitlines())

    def end(self):
        release(self.fifos[-1], self.thread)
        self.thread.join()
        return self.result[0][0] if self.result else None


def new_session(live_port, known):
    """The name of the one session the relay lists beyond known, once it does."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        new = set(live_sessions(live_port)) - known
        if new:
            tt.check(len(new) == 1, f"the relay lists {len(new)} new sessions: {sorted(new)}")
            return new.pop()
        time.sleep(0.1)
    tt.fail(f"no new session on the relay's live port within {WAIT_S} s")


def no_readers(live_port, session):
    """Wait until the relay lists no reader attached to session (one that left is let go by the relay a moment
    after its connection closed)."""
    import bt2
    cls = bt2.find_plugin("ctf").source_component_classes["lttng-live"]
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = bt2.QueryExecutor(cls, "sessions", {"url": f"net://{HOST}:{live_port}"}).query()
        if all(int(s["client-count"]) == 0 for s in found if str(s["session-name"]) == session):
            return
        time.sleep(0.1)
    tt.fail(f"the relay still lists a reader of {session} {WAIT_S} s after it left")


def refused(what, *args):
    """watch on bad input: exit status 2 and one sentence, never a traceback, within the hang guard."""
    try:
        p = subprocess.run([tt.PYTHON, str(tt.HAKMEM_TRACE), "watch", *args], capture_output=True, text=True,
                           timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        tt.fail(f"{what}: watch still ran after {WAIT_S} s")
    lines = p.stderr.strip().splitlines()
    tt.check(p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr,
             f"{what}: exit {p.returncode}, stderr {p.stderr[-800:]!r}")
    tt.ok(f"{what}: {lines[0]}")
    return lines[0]


def fake_peer(*args):
    p = subprocess.Popen([tt.PYTHON, str(FAKE_PEERS), *map(str, args)], stdout=subprocess.PIPE, text=True)
    return p, int(p.stdout.readline())


def relay_sessions(live_port):
    """{(hostname, session name)} the relay's live port lists."""
    import bt2
    cls = bt2.find_plugin("ctf").source_component_classes["lttng-live"]
    found = bt2.QueryExecutor(cls, "sessions", {"url": f"net://{HOST}:{live_port}"}).query()
    return {(str(s["target-hostname"]), str(s["session-name"])) for s in found}


def check_ooms(got, expected, who, cause="cap_reached"):
    """got: (time printed, OOM) printed by a watcher; expected: [(host, session, NULLs of one process)] in the
    order printed; the cause, where the build has the events that tell it (None: not checked). The latencies
    (printed - OOM event), in s."""
    tt.check(len(got) == sum(len(n) for _, _, n in expected),
             f"{who} printed {len(got)} OOMs, want {sum(len(n) for _, _, n in expected)} (one per NULL, each once)")
    i = 0
    latencies = []
    for host, session, nulls in expected:
        chunk = got[i:i + len(nulls)]
        i += len(nulls)
        vpids = {o["vpid"] for _, o in chunk}
        tt.check(len(vpids) == 1, f"{who}: the OOMs of one process come from pids {vpids}")
        tt.check(sorted(o["vtid"] for _, o in chunk) == nulls,
                 f"{who}: OOMs on threads {sorted(o['vtid'] for _, o in chunk)}, NULLs on {nulls}")
        for t, o in chunk:
            tt.check(o["host"] == host and o["session"] == session,
                     f"{who}: OOM on host {o['host']} session {o['session']}, want {host} {session}")
            tt.check((o["procname"] or "").startswith("trace_oom_work"), f"{who}: procname {o['procname']}")
            if cause and {"refill_enter", "superslab_alloc_fail"} <= tt.compiled_events():
                tt.check(o["cause"] == cause, f"{who}: cause {o['cause']} ({o['cause_detail']}), want {cause}")
            latencies.append((t - o["time_ns"]) / 1e9)
    return latencies


def latency_line(lat):
    return (f"latency from OOM event to printed report over {len(lat)} reports: median "
            f"{statistics.median(lat) * 1000:.0f} ms, worst {max(lat) * 1000:.0f} ms")


def main():
    args = tt.arguments(workload="trace_oom_workload")
    work, relay_out, relayd = relay_workdir()
    watchers, peers, recordings = [], [], []
    try:
        control, data, live = relayd.start()
        relay = f"net://{HOST}:{live}"
        url = f"net://{HOST}:{control}:{data}"
        host = socket.gethostname()

        silent, port = fake_peer("silent")
        peers.append(silent)
        refused("a peer that never answers", f"net://{HOST}:{port}")
        closing, port = fake_peer("close")
        peers.append(closing)
        refused("a peer that closes at once", f"net://{HOST}:{port}")
        refused("a URL that is not net://", "http://127.0.0.1/")

        r1 = Recording(work, "s1", 2, args.workload, args.lib, url)
        recordings.append(r1)
        s1 = new_session(live, set())
        text = refused("no such session", f"{relay}/host/{host}/no-such-session")
        tt.check(s1 in text, f"the sentence does not name the sessions the relay has: {text}")
        # Before any watcher: the relay serves a session to one live reader at a time.
        cutter, port = fake_peer("cut", live, CUT_AFTER)
        peers.append(cutter)
        text = refused("a relay that closes mid-stream", f"net://{HOST}:{port}/host/{host}/{s1}")
        tt.check("mid-stream" in text, f"the sentence does not say the stream was cut: {text}")
        no_readers(live, s1)

        w1 = Watcher("W1", "--json", f"{relay}/host/{host}/{s1}")
        watchers.append(w1)
        w1.follows(f"{host}/{s1}")
        text = refused("a session another reader follows", f"{relay}/host/{host}/{s1}")
        tt.check("another reader" in text, f"the sentence does not say another reader holds the session: {text}")
        r1.step(0)
        w1.wait_ooms(THREADS)
        r1.step(1)
        w1.wait_ooms(2 * THREADS)
        tt.ok(f"session {s1}: W1 printed the OOMs of two processes, each while the shell waited")
        tt.check(r1.end() == 0, "the first recording did not exit 0")
        w1.said(f"session {host}/{s1} was destroyed")
        tt.check(w1.proc.wait(timeout=WAIT_S) == 0, f"W1 exited {w1.proc.returncode} after its session ended")
        tt.ok("session destroyed: W1 said so and exited 0")

        w2 = Watcher("W2", "--json", "--all", relay)
        watchers.append(w2)
        r2 = Recording(work, "s2", 1, args.workload, args.lib, url)
        recordings.append(r2)
        s2 = new_session(live, {s1})
        mark = w2.follows(f"{host}/{s2}")
        r2.step(0)
        w2.wait_ooms(THREADS)
        relayd.stop()
        mark = w2.said("went away; reconnecting", mark)
        relayd.start(ports=(control, data, live))
        mark = w2.said("is back", mark)
        r2.end()  # its session lost its relay: its status is lttng's business, not this test's
        tt.ok(f"session {s2}: W2 printed process 3's OOMs; the relay stopped and started again, W2 said both")

        r3 = Recording(work, "s3", 1, args.workload, args.lib, url)
        recordings.append(r3)
        s3 = new_session(live, {s1, s2})
        mark = w2.follows(f"{host}/{s3}", mark)
        r3.step(0)
        w2.wait_ooms(2 * THREADS)
        tt.check(r3.end() == 0, "the third recording did not exit 0")
        w2.said(f"session {host}/{s3} was destroyed; waiting for others", mark)
        w2.proc.send_signal(signal.SIGTERM)
        tt.check(w2.proc.wait(timeout=WAIT_S) == 0, f"W2 exited {w2.proc.returncode} on SIGTERM")
        w2.said("stopped; ")
        for w in (w1, w2):
            w.out.thread.join(timeout=WAIT_S)

        lat = check_ooms(w1.ooms(), [(host, s1, r1.nulls(0)), (host, s1, r1.nulls(1))], "W1")
        lat += check_ooms(w2.ooms(), [(host, s2, r2.nulls(0)), (host, s3, r3.nulls(0))], "W2")
        tt.ok(f"W1 printed {len(w1.ooms())} OOMs and W2 {len(w2.ooms())}, each once, on the right host, session, "
              "process and thread")
        print(latency_line(lat), flush=True)
    finally:
        for w in watchers:
            w.stop()
        for p in peers:
            p.kill()
            p.wait()
        for r in recordings:
            deadline = time.monotonic() + 120
            while r.thread.is_alive() and time.monotonic() < deadline:
                for f in r.fifos:  # let the shell run to its end, so that record destroys its session
                    try:
                        os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
                    except OSError:
                        pass
                r.thread.join(timeout=0.2)
        relayd.stop()
    print("test_watch: passed")


if __name__ == "__main__":
    main()
