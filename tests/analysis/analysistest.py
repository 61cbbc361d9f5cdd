"""analysistest.py — shared helpers for the tests in tests/analysis, on top of tests/trace/tracetest.py.

    import analysistest as at
    tt = at.tt                                   # tracetest: arguments(), record(), check(), fail(), workdir() ...
    rc, out, err = at.hakmem_trace("summary", trace)
    report = at.oom_json(trace)                  # `hakmem-trace oom-paths --json`, checked to succeed
    nulls = at.read_nulls(log)                   # trace_oom_workload's log: [(tid, size, errno)]

Every hakmem-trace run has a timeout: a hang fails the test instead of blocking ctest.
"""

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


def steps(oom):
    """The event names of an OOM's path, in order."""
    return [s["event"] for s in oom["path"]]


def follows(oom, first, then):
    """Whether some step matching first(step) is immediately followed by one matching then(step)."""
    p = oom["path"]
    return any(first(a) and then(b) for a, b in zip(p, p[1:]))


WORKLOAD_THREADS = 4
WORKLOAD_REFUSALS = 3  # NULLs each thread of trace_oom_workload waits for
INDEX_HEADER = 16      # LTTng's index: magic, major, minor, entry size (big-endian), then one entry per packet
MANY_PACKETS = ["--subbuf-size", "16K", "--num-subbuf", "4"]  # record options: several packets per stream file


def record_workload(args, options=(), **settings):
    """Record trace_oom_workload (`hakmem-trace record` options, the given HAKMEM_* settings, other HAKMEM_*
    removed); check it ran to the end with the expected NULLs, and return (trace_dir, nulls)."""
    work = tt.workdir()
    log = work / "nulls.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_") or k == "HAKMEM_TRACE_LIB"}
    env.update(settings)
    status, trace = tt.record([args.workload, log, WORKLOAD_REFUSALS], lib=args.lib, output=work / "trace",
                              options=options, env=env, timeout=300)
    tt.check(status == 0, f"the workload exited with status {status}")
    nulls = read_nulls(log)
    want = WORKLOAD_THREADS * WORKLOAD_REFUSALS
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
