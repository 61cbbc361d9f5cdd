#!/usr/bin/python3
"""test_robustness.py — hakmem-trace on input it cannot use, on damaged traces, and on traces of several processes.

Unusable input must end in exactly one line on stderr starting "hakmem-trace: " and exit status 2: never a
Python traceback, never a Babeltrace2 abort, never a hang (every run has a timeout). Each input is given to
`oom-paths`, `oom-paths --json`, `summary` and `summary --json`:
  - a folder without a trace, an empty path, a path to an empty file, a path that does not exist;
  - one real recorded trace (trace_oom_workload under a cap), then copies of it: stream files cut at several
    offsets, metadata cut at several offsets (Babeltrace2 2.0.4 itself never returns from a metadata file that
    ends inside a packet), byte flips in the stream files and in the metadata, streams without metadata,
    metadata without streams. A damaged copy may still be readable: then the run must succeed (valid JSON);
    the cuts and flips known to break the trace must be reported as unusable; a stream file cut anywhere is
    read up to its last whole packet and reported as a damaged stream (never "events lost: 0"), or, when no
    other stream holds a hakmem event, is a trace without hakmem events;
  - a real trace without hakmem events: `true` on libhakmem-trace.so recording only hakmem:oom (metadata, no
    event; `true` with --no-preload records no trace at all, which record itself says: test_record_hygiene);
  - a real trace recorded without the vpid/vtid context (lttng driven by hand): one thread's path cannot be
    told from another's, so it is unusable;
  - a real trace of several processes and a fork child: a shell running trace_oom_workload twice in sequence
    (each under its own cap, each logging its NULLs) and trace_fork_program (fork without exec): the OOMs
    split by vpid match each run's log, tid for tid, all cap_reached; the fork child shows up under its own
    vpid; lttng-ust's own threads are labelled (thread_label on names ending in "-ust", and every such thread
    in the trace).

usage: test_robustness.py --lib libhakmem-trace.so --workload trace_oom_workload --replay seed_replay
                          --fork-program trace_fork_program
"""
import collections
import json
import os
import random
import shutil
import subprocess
import time

import analysistest as at

tt = at.tt
CAP = "48M"
COMMANDS = (["oom-paths"], ["oom-paths", "--json"], ["summary"], ["summary", "--json"])
RUN_TIMEOUT = 60


def run_all(target, what, expect):
    """Every command on target. expect: "unusable", "usable", "either" (a damaged copy that may still read) or
    "lossy" (a stream cut short: usable and the loss stated, or without hakmem events when it held them all).
    Returns the set of outcomes ("usable" / "unusable")."""
    outcomes = set()
    for cmd in COMMANDS:
        label = f"{what}: hakmem-trace {' '.join(cmd)}"
        rc, out, err = at.hakmem_trace(*cmd, target, timeout=RUN_TIMEOUT)
        if expect == "lossy":
            if rc == 0:
                at.check_lossy(rc, out, err, cmd, label)
                outcomes.add("usable")
            else:
                at.check_unusable(rc, out, err, label)
                tt.check("no hakmem events" in err, f"{label}: a cut stream made the trace unusable: {err.strip()}")
                outcomes.add("unusable")
        elif rc == 0 and expect != "unusable":
            at.check_usable(rc, out, err, label)
            tt.check(not err.strip(), f"{label}: succeeded but wrote to stderr: {err[-1000:]}")
            if "--json" in cmd:
                try:
                    json.loads(out)
                except ValueError as e:
                    tt.fail(f"{label}: exit 0 but the output is not JSON ({e})")
            outcomes.add("usable")
        elif expect == "usable":
            at.check_usable(rc, out, err, label)
        else:
            at.check_unusable(rc, out, err, label)
            outcomes.add("unusable")
    tt.check(len(outcomes) == 1, f"{what}: some commands could read it and some could not: {outcomes}")
    return outcomes.pop()


def stream_files(trace):
    return sorted(p for p in trace.rglob("*") if p.is_file() and p.parent.name != "index" and p.name != "metadata")


def damaged(base, work, name, edit):
    """A copy of the trace base, with edit(folder holding metadata) applied."""
    d = work / "damaged" / name
    shutil.copytree(base, d)
    edit(next(p.parent for p in d.rglob("metadata")))
    return d


def cut(rel, n):
    def edit(folder):
        f = folder / rel
        data = f.read_bytes()
        f.write_bytes(data[:n if n >= 0 else len(data) + n])
    return edit


def flip(rel, off):
    def edit(folder):
        f = folder / rel
        data = bytearray(f.read_bytes())
        data[off % len(data)] ^= 0xFF
        f.write_bytes(bytes(data))
    return edit


def remove(*rels):
    def edit(folder):
        for rel in rels:
            (folder / rel).unlink()
    return edit


def nothing_to_read(args, work):
    empty = work / "empty"
    empty.mkdir()
    run_all(empty, "a folder without a trace", "unusable")
    run_all("", "an empty path", "unusable")
    (work / "empty-file").write_bytes(b"")
    run_all(work / "empty-file", "a path to an empty file", "unusable")
    run_all(work / "no-such-folder", "a path that does not exist", "unusable")
    foreign = work / "foreign"
    foreign.mkdir()
    (foreign / "metadata").write_text("not a trace\n")
    run_all(foreign, "a folder with a file called metadata that is not CTF", "unusable")
    tt.ok("no trace, empty path, empty file, missing path, foreign metadata: one line each, exit 2")


def damaged_traces(args, work, base):
    folder = next(p.parent for p in base.rglob("metadata"))
    streams = [p.relative_to(folder) for p in stream_files(folder)]
    tt.check(streams, f"no stream file in {folder}")
    run_all(base, "the intact trace", "usable")
    msize = (folder / "metadata").stat().st_size
    cases = []  # (name, edit, expect)
    for rel in streams:
        size = (folder / rel).stat().st_size
        for n in (0, 1, 17, 40, 100, size // 2 + 3, size - 1):
            # Cut to nothing, inside the first packet's header/context, inside the last packet, half-way (inside a
            # packet when the file has only one, else perhaps on a packet boundary): the packets after the last
            # whole one are gone, which the index tells (Babeltrace2 alone would refuse the trace, or say nothing).
            cases.append((f"{rel}-cut-{n}", cut(rel, n), "lossy"))
        rng = random.Random(f"{rel}")
        for off in [0, 20] + [rng.randrange(24, 128) for _ in range(4)] + [rng.randrange(128, size) for _ in range(6)]:
            # Magic number (0) and stream class id (20) break it; elsewhere a flip may land in a value.
            cases.append((f"{rel}-flip-{off}", flip(rel, off), "unusable" if off in (0, 20) else "either"))
    for n in (1, 20, 37, 40, 100, msize // 2, msize - 1):
        cases.append((f"metadata-cut-{n}", cut("metadata", n), "unusable"))
    rng = random.Random("metadata")
    for off in [0, 3, 20, 26, 30, 33] + [rng.randrange(37, msize) for _ in range(10)]:
        cases.append((f"metadata-flip-{off}", flip("metadata", off), "unusable" if off < 37 else "either"))
    cases.append(("no-streams", remove(*streams), "unusable"))
    cases.append(("no-metadata", remove("metadata"), "unusable"))
    seen = collections.Counter()
    slowest = 0.0
    for name, edit, expect in cases:
        t = time.monotonic()
        seen[run_all(damaged(base, work, name, edit), f"damaged copy {name}", expect)] += 1
        slowest = max(slowest, time.monotonic() - t)
    tt.ok(f"{len(cases)} damaged copies: {dict(seen)}; none hung (slowest {slowest:.1f} s for 4 commands)")


def no_hakmem_events(args, work):
    status, trace = tt.record(["true"], lib=args.lib, output=work / "true-oom-only", options=["--events", "oom"],
                              timeout=120)
    tt.check(status == 0, f"`true` exited with {status}")
    tt.check(tt.find_traces(trace), f"`true` on libhakmem-trace.so left no trace in {trace}")
    run_all(trace, "`true` on libhakmem-trace.so, hakmem:oom only (metadata, no event)", "unusable")
    tt.ok("a trace without hakmem events is unusable, one line each")


def lttng(*argv):
    p = subprocess.run(["lttng", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tt.check(p.returncode == 0, f"lttng {' '.join(argv)}: {p.stdout.strip()}")


def without_context(args, work):
    """A session like `hakmem-trace record`'s, but without `lttng add-context`: no vpid, vtid, procname."""
    from hakmem import record
    out = work / "no-context"
    name = f"hakmem-analysis-test-{os.getpid()}"
    env = dict(os.environ, LD_PRELOAD=args.lib, HAKMEM_MAX_MEMORY=CAP, LTTNG_UST_ALLOW_BLOCKING="1")
    with record.RecordingLock(), record.SessionDaemon():
        lttng("create", name, f"--output={out}")
        try:
            lttng("enable-channel", "-u", "-s", name, "c", "--blocking-timeout=inf")
            lttng("enable-event", "-u", "-s", name, "-c", "c", "hakmem:*")
            lttng("start", name)
            p = subprocess.run([args.workload, work / "no-context.log", "1"], env=env, timeout=120)
            lttng("stop", name)
        finally:
            subprocess.run(["lttng", "destroy", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tt.check(p.returncode == 0, f"the workload exited with status {p.returncode}")
    t = tt.read_trace(out, names={"oom"})
    tt.check(t.events and t.events[0]["vtid"] is None, f"the trace has oom events with a vtid: {t.events[:1]}")
    run_all(out, "a trace recorded without the vpid/vtid context", "unusable")
    rc, _, err = at.hakmem_trace("oom-paths", out)
    tt.check("vtid" in err, f"the message does not name the missing context: {err.strip()}")
    tt.ok("a trace without the vpid/vtid context is unusable, and the message says why")


def several_processes(args, work):
    logs = [work / "run1.log", work / "run2.log"]
    child, parent = work / "fork-child.pid", work / "fork-parent.pid"
    script = (f"HAKMEM_MAX_MEMORY={CAP} '{args.workload}' '{logs[0]}' 3 && "
              f"HAKMEM_MAX_MEMORY={CAP} '{args.workload}' '{logs[1]}' 3 && "
              f"'{args.fork_program}' '{child}' '{parent}'")
    env = dict(os.environ)
    env.pop("HAKMEM_MAX_MEMORY", None)
    env.pop("HAKMEM_FAULT_SUPERSLAB", None)
    status, trace = tt.record(["sh", "-c", script], lib=args.lib, output=work / "several", env=env, timeout=300)
    tt.check(status == 0, f"the shell exited with status {status}")
    run_all(trace, "a trace of several processes", "usable")
    report = at.oom_json(trace)
    ooms = report["ooms"]
    runs = [at.read_nulls(log) for log in logs]
    tt.check(len(ooms) == sum(map(len, runs)), f"{len(ooms)} OOMs, the logs hold {[len(r) for r in runs]} NULLs")
    by_vpid = collections.defaultdict(list)
    for o in ooms:
        by_vpid[o["vpid"]].append(o)
    tt.check(len(by_vpid) == 2, f"OOMs from vpids {sorted(by_vpid)}, want the two workload runs")
    for vpid, group in by_vpid.items():
        tids = collections.Counter(o["vtid"] for o in group)
        match = [i for i, r in enumerate(runs) if collections.Counter(t for t, _, _ in r) == tids]
        tt.check(len(match) == 1, f"the OOMs of vpid {vpid} (per vtid {dict(tids)}) match no run's log")
        for o in group:
            tt.check(o["cause"] == "cap_reached", f"OOM {o['index']} of vpid {vpid}: cause {o['cause']} "
                     f"({o['cause_detail']}): paths of different processes mixed?")
            tt.check(all(c["vpid"] == vpid for c in o["context"] if c["vtid"] in tids),
                     f"OOM {o['index']}: context events of its process under another vpid")
    pid_child, pid_parent = int(child.read_text()), int(parent.read_text())
    threads = report["summary"]["threads"]
    if "refill_enter" in tt.compiled_events():  # the fork program never fails: only its refills are events
        tt.check(any(t["vpid"] == pid_child and t["vtid"] == pid_child for t in threads),
                 f"the fork child {pid_child} has no thread of its own in the summary: {threads}")
        tt.check(any(t["vpid"] == pid_parent for t in threads), f"the fork parent {pid_parent} is not in the summary")
    tt.check(not any(t["vpid"] == pid_parent and t["vtid"] == pid_child for t in threads),
             "the fork child's thread appears under the parent's vpid")
    for t in threads:
        tt.check(t["thread"].endswith("(lttng-ust thread)") == (t["procname"] or "").endswith("-ust"),
                 f"summary thread {t}: lttng-ust label and name disagree")
    tt.ok(f"{len(ooms)} OOMs kept apart by vpid ({sorted(by_vpid)}), each run's matching its log; fork child "
          f"{pid_child} under its own vpid")

    from hakmem import records
    for name in ("trace_oom_w-ust", "seed_replay-ust", "lttng-ust-wait"):
        tt.check(records.thread_label(name, 10, 11) == f"{name} (lttng-ust thread)",
                 f"thread_label({name!r}) = {records.thread_label(name, 10, 11)!r}")
    for name, label in (("trace_oom_workl", "trace_oom_workl"), ("rust", "rust"), ("ust", "ust")):
        tt.check(records.thread_label(name, 10, 11) == label, f"thread_label({name!r}) = "
                 f"{records.thread_label(name, 10, 11)!r}, want {label!r}")
    tt.check(records.thread_label("prog", 10, 10) == "prog (main thread)", "the main thread is not labelled")
    tt.ok("thread_label marks names ending in -ust as lttng-ust's threads, and only those")


def main():
    args = tt.arguments(workload="trace_oom_workload", replay="seed_replay",
                        fork_program="trace_fork_program")
    work = tt.workdir()
    nothing_to_read(args, work)

    env = dict(os.environ, HAKMEM_MAX_MEMORY=CAP)
    env.pop("HAKMEM_FAULT_SUPERSLAB", None)
    status, base = tt.record([args.workload, work / "base.log", 3], lib=args.lib, output=work / "base", env=env,
                             timeout=300)
    tt.check(status == 0, f"the workload exited with status {status}")
    damaged_traces(args, work, base)
    no_hakmem_events(args, work)
    without_context(args, work)
    several_processes(args, work)
    print("test_robustness: passed")


if __name__ == "__main__":
    main()
