"""analysistest.py — shared helpers for the tests in tests/analysis, on top of tests/trace/tracetest.py.

    import analysistest as at
    tt = at.tt                                   # tracetest: arguments(), record(), check(), fail(), workdir() ...
    rc, out, err = at.hakmem_trace("summary", trace)
    report = at.oom_json(trace)                  # `hakmem-trace oom-paths --json`, checked to succeed
    nulls = at.read_nulls(log)                   # trace_oom_workload's log: [(tid, size, errno)]
    report, nulls = at.check_refused_ooms(args, simple, compiled, "cap_reached", "cap", HAKMEM_MAX_MEMORY="48M")
    at.each_mid_simple("test_cap", run)          # main(): run(args, simple, compiled) for simple 0 and 1

Every hakmem-trace run has a timeout: a hang fails the test instead of blocking ctest.
"""

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "trace"))
import tracetest as tt  # noqa: E402

CLI_TIMEOUT = 300
# What a real allocator never does: in a trace of one, these causes are the analysis being wrong.
FALSE_IN_REAL_RUNS = ("expansion_bypassed", "bitmap_inconsistent")


def hakmem_trace(*args, timeout=CLI_TIMEOUT):
    """Run `analysis/hakmem-trace ARGS`; return (returncode, stdout, stderr). Not finishing in time fails."""
    argv = [tt.PYTHON, str(tt.HAKMEM_TRACE), *[str(a) for a in args]]
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        tt.fail(f"hakmem-trace {' '.join(map(str, args))} did not finish within {timeout} s")
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def check_usable(rc, out, err, what):
    """A run on usable input: status 0, output, and nothing alarming on stderr."""
    tt.check(rc == 0, f"{what}: exit status {rc}, want 0; stderr: {err.strip()[-2000:]}")
    tt.check("Traceback" not in err, f"{what}: a Python traceback on stderr:\n{err[-3000:]}")
    tt.check(out.strip(), f"{what}: no output")


def check_unusable(rc, out, err, what):
    """Unusable input: exit status 2 and exactly one line on stderr, 'hakmem-trace: ...', no traceback."""
    lines = err.splitlines()
    tt.check("Traceback" not in err, f"{what}: a Python traceback on stderr:\n{err[-3000:]}")
    tt.check(rc == 2, f"{what}: exit status {rc}, want 2; stderr: {err.strip()[-2000:]}")
    tt.check(len(lines) == 1 and lines[0].startswith("hakmem-trace: "),
             f"{what}: stderr must be one line starting 'hakmem-trace: ', got {len(lines)} line(s): {err[-2000:]!r}")


def check_lossy(rc, out, err, cmd, what):
    """A run on a trace that lost packets or streams: usable, and it says so — in JSON the loss counted
    (missing or discarded packets), in text never "events lost: 0"."""
    check_usable(rc, out, err, what)
    tt.check(not err.strip(), f"{what}: succeeded but wrote to stderr: {err[-1000:]}")
    if "--json" in cmd:
        try:
            lost = json.loads(out)["lost_events"]
        except (ValueError, KeyError, TypeError) as e:
            tt.fail(f"{what}: exit 0 but the output is not the JSON report ({e})")
        tt.check(lost.get("missing_packets", 0) + lost["discarded_packets"] > 0 and
                 (lost.get("damaged_streams") or lost["discarded_packets"]),
                 f"{what}: the lost packets are not counted: {lost}")
    else:
        tt.check("events lost: 0" not in out, f"{what}: says 'events lost: 0': {out.splitlines()[0]!r}")
        tt.check("the trace is not complete" in out, f"{what}: does not say the trace is not complete")


def oom_json(trace, what=None):
    """`hakmem-trace oom-paths --json TRACE`, required to succeed; the parsed report."""
    what = what or f"oom-paths --json {trace}"
    rc, out, err = hakmem_trace("oom-paths", "--json", trace)
    check_usable(rc, out, err, what)
    try:
        report = json.loads(out)
    except ValueError as e:
        tt.fail(f"{what}: the output is not JSON ({e}): {out[:500]!r}")
    tt.check(report.get("schema") == "hakmem-trace/1", f"{what}: schema {report.get('schema')!r}")
    return report


def snapshots(folder):
    """A flight recorder's snapshot-* folders in the order they were taken (lttng numbers them at the end)."""
    found = [p for p in Path(folder).glob("snapshot-*") if p.is_dir()]
    return sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[1]) if p.name.rsplit("-", 1)[1].isdigit() else -1)


def text_report(trace, command="oom-paths"):
    rc, out, err = hakmem_trace(command, trace)
    check_usable(rc, out, err, f"{command} {trace}")
    return out


def read_nulls(log):
    """trace_oom_workload's log: one (tid, size, errno) per NULL it got."""
    out = []
    for line in Path(log).read_text().splitlines():
        tid, size, err = line.split()
        out.append((int(tid), int(size), int(err)))
    return out


def window(oom):
    """(first, last) time of an OOM's path in ns: the path's first event and the oom event."""
    return oom["time_ns"] - oom["path"][-1]["offset_ns"], oom["time_ns"]


def overlaps(win, rng):
    b, e = rng["begin_ns"], rng["end_ns"]
    if b is None or e is None:
        return True
    return b <= win[1] and e >= win[0]


def thread_streams(trace):
    """Where each thread's hakmem events went, read from the trace itself: {(vpid, vtid): ([ts], [stream file])}
    in time order, the stream files as real paths."""
    import bt2
    seen = collections.defaultdict(list)
    for msg in bt2.TraceCollectionMessageIterator(str(trace)):
        if isinstance(msg, bt2._EventMessageConst) and msg.event.name.startswith("hakmem:"):
            ctx = msg.event.common_context_field
            seen[(int(ctx["vpid"]), int(ctx["vtid"]))].append(
                (msg.default_clock_snapshot.ns_from_origin, os.path.realpath(msg.event.stream.name)))
    out = {}
    for key, evs in seen.items():
        evs.sort(key=lambda e: e[0])
        out[key] = ([t for t, _ in evs], [s for _, s in evs])
    return out


def own_streams(streams, oom):
    """The streams the OOM's thread's events in its window (at.window) went to (see thread_streams)."""
    import bisect
    times, files = streams.get((oom["vpid"], oom["vtid"]), ([], []))
    first, last = window(oom)
    return set(files[bisect.bisect_left(times, first):bisect.bisect_right(times, last)])


def on_streams(rng, streams):
    """Whether a loss range of the report is on one of the streams (real paths); a range of no known stream is
    on every one."""
    return rng.get("stream") is None or os.path.realpath(rng["stream"]) in streams


def steps(oom):
    """The event names of an OOM's path, in order."""
    return [s["event"] for s in oom["path"]]


def follows(oom, first, then):
    """Whether some step matching first(step) is immediately followed by one matching then(step)."""
    p = oom["path"]
    return any(first(a) and then(b) for a, b in zip(p, p[1:]))


REFUSED_DECISIONS = ("chunk_expand:failed", "bitmap_check:cap_refused")


def refused_decisions(oom, reason):
    """For each superslab_alloc_fail of the path with that reason, the decision it ends, as event:outcome — the
    step before it past the mid-simple choice (reported after the first check that did not claim): a failed
    expansion (a new chunk refused) or, the cap counting committed memory, a claim whose free slab it would not
    commit. None for a refusal of another reason."""
    p, out = oom["path"], []
    for i, s in enumerate(p):
        if s["event"] != "superslab_alloc_fail":
            continue
        if s["fields"]["reason"] != reason:
            out.append(None)
            continue
        before = next((b for b in reversed(p[:i]) if b["event"] != "mid_simple_choice"), None)
        out.append(before and f"{before['event']}:{before['fields'].get('outcome')}")
    return out


WORKLOAD_THREADS = 4
WORKLOAD_REFUSALS = 3  # NULLs each thread of trace_oom_workload waits for
INDEX_HEADER = 16      # LTTng's index: magic, major, minor, entry size (big-endian), then one entry per packet
MANY_PACKETS = ["--subbuf-size", "16K", "--num-subbuf", "4"]  # record options: several packets per stream file


def record_workload(args, options=(), refusals=WORKLOAD_REFUSALS, **settings):
    """Record trace_oom_workload (`hakmem-trace record` options, the given HAKMEM_* settings, other HAKMEM_*
    removed, each thread stopping at its refusals-th NULL); check it ran to the end with the expected NULLs, and
    return (trace_dir, nulls)."""
    work = tt.workdir()
    log = work / "nulls.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_") or k == "HAKMEM_TRACE_LIB"}
    env.update(settings)
    status, trace = tt.record([args.workload, log, refusals], lib=args.lib, output=work / "trace",
                              options=options, env=env, timeout=300)
    tt.check(status == 0, f"the workload exited with status {status}")
    nulls = read_nulls(log)
    want = WORKLOAD_THREADS * refusals
    tt.check(len(nulls) == want, f"the workload logged {len(nulls)} NULLs, want {want}")
    return trace, nulls


def packet_offsets(folder, stream):
    """Where the packets of the stream file folder/stream begin, from LTTng's index (folder/index/STREAM.idx: the
    header, then one entry per packet, its offset first); None where there is no usable index."""
    idx = Path(folder) / "index" / f"{Path(stream).name}.idx"
    if not idx.is_file():
        return None
    data = idx.read_bytes()
    entry = int.from_bytes(data[12:16], "big")
    if entry < 8:
        return None
    return [int.from_bytes(data[o:o + 8], "big") for o in range(INDEX_HEADER, len(data) - entry + 1, entry)]


WORKLOAD_CLASS, WORKLOAD_BLOCK = 4, 128  # trace_oom_workload's allocations: all class 4
ENOMEM = 12


def check_refused_ooms(args, simple, compiled, cause, reason, **settings):
    """Record trace_oom_workload under settings with HAKMEM_TINY_MID_REFILL_SIMPLE=simple, where every NULL comes
    from a refused chunk map of the given reason, and check what the analysis must then say: one OOM per NULL in
    the log, on the same thread, each of the given cause, class 4 of 128 B, nothing lost, every path one refill
    whose superslab_alloc_fail says reason and ENOMEM; where the whole path is compiled in, refill_enter, a
    bitmap_check that found the chunk full, the mid-simple choice the setting asks for, a failed chunk_expand
    immediately followed by that superslab_alloc_fail, refill_exit null, the oom. The summary and the text
    report and summary must count the same. Returns (report, nulls) for the test's own checks."""
    trace, nulls = record_workload(args, HAKMEM_TINY_MID_REFILL_SIMPLE=simple, **settings)
    n = len(nulls)
    tt.check(all(size == WORKLOAD_BLOCK and err == ENOMEM for _, size, err in nulls), f"NULLs without ENOMEM: {nulls}")

    report = oom_json(trace)
    ooms = report["ooms"]
    tt.check(report["lost_events"]["discarded_events"] == 0, f"events were lost: {report['lost_events']}")
    tt.check(len(ooms) == n and report["summary"]["ooms_total"] == n,
             f"{len(ooms)} OOM paths (ooms_total {report['summary']['ooms_total']}), want exactly {n}")
    bad = [(o["index"], o["vtid"], o["cause"], o["cause_detail"]) for o in ooms if o["cause"] != cause]
    tt.check(not bad, f"OOMs whose cause is not {cause}: {bad}")
    got = collections.Counter(o["vtid"] for o in ooms)
    want = collections.Counter(tid for tid, _, _ in nulls)
    tt.check(got == want, f"OOMs per vtid {dict(got)}, NULLs per tid in the log {dict(want)}")
    tt.check(len({o["vpid"] for o in ooms}) == 1, f"OOMs from several processes: {[o['vpid'] for o in ooms]}")
    full = set(tt.catalogue.OOM_PATH) <= compiled
    for o in ooms:
        i, names = o["index"], steps(o)
        tt.check(o["class"] == WORKLOAD_CLASS and o["block_size"] == WORKLOAD_BLOCK and o["size"] == WORKLOAD_BLOCK,
                 f"OOM {i}: class {o['class']} block {o['block_size']} size {o['size']}")
        tt.check(not o["begins_midway"] and o["lost_events_in_window"] == 0, f"OOM {i} marked incomplete")
        tt.check(names[-1] == "oom", f"OOM {i}: the path does not end with the oom: {names}")
        tt.check(all(s["fields"].get("seq", o["seq"]) == o["seq"] for s in o["path"]),
                 f"OOM {i}: the path mixes refills: seqs {[s['fields'].get('seq') for s in o['path']]}")
        fails = [s["fields"] for s in o["path"] if s["event"] == "superslab_alloc_fail"]
        tt.check(fails, f"OOM {i}: no superslab_alloc_fail in its path {names}")
        for f in fails:
            tt.check(f["reason"] == reason and f["err"] == ENOMEM,
                     f"OOM {i}: superslab_alloc_fail {f}, want reason {reason}, errno {ENOMEM}")
        if not full:
            continue
        tt.check(names[0] == "refill_enter", f"OOM {i}: the path does not begin with its refill_enter: {names}")
        mid = [s["fields"]["path"] for s in o["path"] if s["event"] == "mid_simple_choice"]
        tt.check(mid and mid[0] == ("simple" if simple == "1" else "multi_stage"),
                 f"OOM {i}: mid_simple_choice {mid} with HAKMEM_TINY_MID_REFILL_SIMPLE={simple}")
        decisions = refused_decisions(o, reason)
        allowed = REFUSED_DECISIONS if reason == "cap" else ("chunk_expand:failed",)
        tt.check(decisions and all(d in allowed for d in decisions),
                 f"OOM {i}: its superslab_alloc_fail events {reason} end {decisions}, want each to end one of "
                 f"{allowed}: {names}")
        if "chunk_expand:failed" in decisions:
            tt.check(any(s["event"] == "bitmap_check" and s["fields"]["outcome"] == "full" for s in o["path"]),
                     f"OOM {i}: an expansion failed, but no bitmap_check found the chunk full: {names}")
            tt.check(names.index("chunk_expand") > names.index("bitmap_check"),
                     f"OOM {i}: chunk_expand before any bitmap_check: {names}")
        exits = [s["fields"]["result"] for s in o["path"] if s["event"] == "refill_exit"]
        tt.check(exits == ["null"] and names[-2] == "refill_exit",
                 f"OOM {i}: refill_exit results {exits}, want one null exit as the last decision: {names}")
    tt.check(report["summary"]["causes"] == {cause: n}, f"summary causes {report['summary']['causes']}")
    per_thread = {t["vtid"]: t["ooms"] for t in report["summary"]["threads"] if t["ooms"]}
    tt.check(per_thread == dict(want), f"summary threads with OOMs {per_thread}, log {dict(want)}")

    text = text_report(trace)
    headers = [line for line in text.splitlines() if line.startswith("OOM ")]
    tt.check(len(headers) == n and text.count(f"  cause: {cause} — ") == n,
             f"the text report has {len(headers)} OOM headers and {text.count(f'  cause: {cause} — ')} {cause} "
             f"causes, want {n} each")
    tt.check(text.splitlines()[0].startswith(f"{n} OOM(s); events lost: 0 discarded events"),
             f"the text report begins {text.splitlines()[0]!r}")
    summary = text_report(trace, "summary")
    tt.check(f"causes: {cause} {n}" in summary, f"the text summary does not say 'causes: {cause} {n}':\n{summary}")
    return report, nulls


def each_mid_simple(name, run):
    """A test's main(): run(args, simple, compiled) with HAKMEM_TINY_MID_REFILL_SIMPLE 0 and 1, in a build that
    compiles in at least the failure events."""
    args = tt.arguments(workload="trace_oom_workload")
    compiled = tt.compiled_events()
    tt.check({"oom", "superslab_alloc_fail"} <= compiled, f"this build compiles in only {sorted(compiled)}")
    for simple in ("0", "1"):
        run(args, simple, compiled)
    if not set(tt.catalogue.OOM_PATH) <= compiled:
        print(f"(the paths' decisions are not checked: this build compiles in {sorted(compiled)} only)")
    print(f"{name}: passed")
