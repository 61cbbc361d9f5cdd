#!/usr/bin/python3
"""test_session.py — production mode for a service: `hakmem-trace session start --live` on a session daemon that
outlives it, programs started elsewhere with only the environment it printed, failures only
(--loglevel=TRACE_WARNING, --discard), and `watch` printing their OOMs while the session lives; `session stop`
ends the session (watch says it was destroyed and exits 0), and the relay keeps every OOM.

In a uts_hosts.Host (its own lttng-sessiond, as a machine running services has, stopped by pid) and with an
lttng-relayd on 127.0.0.1: a bad stop and a second start of the same name are one sentence and status 2; after
`session start`, two "service" runs of the capped 4-thread trace_oom_workload, each a process of its own started
with the printed VAR=VALUE lines as its whole tracing set-up (not under hakmem-trace), each logging its NULLs; a
watcher following the session prints one OOM per NULL of each, with the right host, session, process and thread;
after `session stop`, `oom-paths` on the relay's folder for the host lists the same OOMs.

Needs root (a Host); skipped (exit 77) otherwise, or where lttng-relayd is missing.

usage: test_session.py --lib libhakmem-trace.so --workload trace_oom_workload
"""
import json
import os
import subprocess
import time

import tracetest as tt
import uts_hosts
from test_relayd import HOST, relay_workdir
from test_uts_hosts import TIMEOUT_S
from test_watch import Watcher, check_ooms, relay_sessions
from uts_hosts import Host

NAME = "hakmem-service-host"
SESSION = "hakmem-test-service"
CAP = "16M"
REFUSALS = 2
THREADS = 4
RUNS = 2


def cli(host, *args):
    return host.run([uts_hosts.PYTHON, str(uts_hosts.HAKMEM_TRACE), "session", *args], capture_output=True,
                    text=True, timeout=TIMEOUT_S)


def refused(host, what, *args, says):
    p = cli(host, *args)
    lines = p.stderr.strip().splitlines()
    tt.check(p.returncode == 2 and len(lines) == 1 and says in lines[0] and "Traceback" not in p.stderr,
             f"{what}: exit {p.returncode}, stderr {p.stderr!r}")
    tt.ok(f"{what}: {lines[0]}")


def wait_listed(live):
    deadline = time.monotonic() + TIMEOUT_S
    while (NAME, SESSION) not in relay_sessions(live):
        if time.monotonic() > deadline:
            tt.fail(f"the relay never listed {NAME}/{SESSION}")
        time.sleep(0.1)


def main():
    args = tt.arguments(workload="trace_oom_workload")
    work, relay_out, relayd = relay_workdir(root=True)
    logs = [work / f"nulls-{i}.log" for i in range(RUNS)]
    watcher = None
    host = None
    try:
        control, data, live = relayd.start()
        url = f"net://{HOST}:{control}:{data}"
        with Host(NAME, work) as host:
            refused(host, "stopping a session that does not exist", "stop", "--name", SESSION,
                    says=f"no session named {SESSION}")
            p = cli(host, "start", "--name", SESSION, "--live", "--set-url", url, "--lib", args.lib,
                    "--loglevel=TRACE_WARNING", "--discard")
            tt.check(p.returncode == 0, f"session start: exit {p.returncode}, {p.stderr!r}")
            service_env = dict(line.split("=", 1) for line in p.stdout.splitlines())
            preload = service_env.get("LD_PRELOAD", "").split(":")
            tt.check(os.path.samefile(preload[0], args.lib) and len(preload) == 3,
                     f"session start printed LD_PRELOAD {preload}: {args.lib} first, then lttng-ust's fork and dl")
            tt.check("LTTNG_UST_ALLOW_BLOCKING" not in service_env, f"--discard, yet it printed {service_env}")
            tt.ok(f"session start printed {sorted(service_env)}; {p.stderr.strip()}")
            refused(host, "starting it twice", "start", "--name", SESSION, "--live", "--set-url", url,
                    "--lib", args.lib, says="exists already")

            wait_listed(live)
            watcher = Watcher("W", "--json", f"net://{HOST}:{live}/host/{NAME}/{SESSION}")
            watcher.follows(f"{NAME}/{SESSION}")
            # The services: started as a unit would start them, the printed lines as their only tracing set-up.
            # Set by env(1) inside the Host: nsenter, itself preloaded, would start lttng-ust's threads, and a
            # threaded process cannot enter a mount namespace.
            env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "HAKMEM_TRACE_SAMPLE")}
            env["HAKMEM_MAX_MEMORY"] = CAP
            service = ["env", *(f"{k}={v}" for k, v in service_env.items())]
            for i, log in enumerate(logs):
                proc = host.popen([*service, args.workload, log, REFUSALS, THREADS], env=env)
                tt.check(uts_hosts.finish(proc, TIMEOUT_S, f"service run {i + 1}") == 0,
                         f"service run {i + 1} exited {proc.returncode}")
                watcher.wait_ooms((i + 1) * THREADS * REFUSALS)
            tt.ok(f"watch printed the OOMs of {RUNS} service runs while the session lived")
            tt.check(watcher.proc.poll() is None, "watch ended before the session was stopped")

            p = cli(host, "stop", "--name", SESSION)
            tt.check(p.returncode == 0, f"session stop: exit {p.returncode}, {p.stderr!r}")
            watcher.said(f"session {NAME}/{SESSION} was destroyed")
            tt.check(watcher.proc.wait(timeout=TIMEOUT_S) == 0, f"watch exited {watcher.proc.returncode}")
            watcher.out.thread.join(timeout=TIMEOUT_S)
            refused(host, "stopping it again", "stop", "--name", SESSION, says=f"no session named {SESSION}")
    except (uts_hosts.HostError, TimeoutError, subprocess.TimeoutExpired) as e:
        tt.fail(str(e))
    finally:
        if watcher:
            watcher.stop()
        if host:
            host.stop()
        relayd.stop()
    tt.check(host.gone(), f"{NAME}: processes left: {host.members()}")

    nulls = [sorted(int(line.split()[0]) for line in log.read_text().splitlines()) for log in logs]
    tt.check(all(len(n) == THREADS * REFUSALS for n in nulls), f"NULLs logged per run: {[len(n) for n in nulls]}")
    printed = watcher.ooms()
    check_ooms(printed, [(NAME, SESSION, n) for n in nulls], "watch", cause=None)
    kept = json.loads(tt.cli("oom-paths", "--json", relay_out / NAME))["ooms"]
    key = ("vpid", "vtid", "time_ns")
    tt.check(sorted(tuple(o[k] for k in key) for o in kept) == sorted(tuple(o[k] for k in key) for _, o in printed),
             f"oom-paths on the relay's folder lists {len(kept)} OOMs, not the {len(printed)} watch printed")
    tt.ok(f"{len(printed)} OOMs of {RUNS} processes: printed live, once each, and kept by the relay")
    print("test_session: passed")


if __name__ == "__main__":
    main()
