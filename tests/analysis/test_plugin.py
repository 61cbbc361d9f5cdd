#!/usr/bin/python3
"""test_plugin.py — the Babeltrace2 plugin (analysis/bt_plugin_hakmem.py) prints what hakmem-trace prints.

Records the capped 4-thread trace_oom_workload (4 threads x 3 NULLs = 12 OOMs), then runs
    hakmem-trace oom-paths TRACE            vs  babeltrace2 --plugin-path=analysis TRACE -c sink.hakmem.oom-paths
    hakmem-trace oom-paths --json TRACE     vs  ... -c sink.hakmem.oom-paths -p json=yes
    hakmem-trace summary [--json] TRACE     vs  ... -c sink.hakmem.summary [-p json=yes]
and asserts identical stdout byte for byte, exit status 0 and the 12 OOMs. Then a trace without hakmem events
(only hakmem:oom enabled, a program that never runs out of memory): both exit with status 2 and the same sentence
on stderr ("no hakmem events in TRACE: ...", the plugin's prefixed with sink.hakmem.oom-paths: instead of
hakmem-trace:); and a recorded trace whose second packet names a stream class that does not exist
(Babeltrace2's source fails mid-read): both exit 2 with the same "babeltrace2 cannot read TRACE: ..." sentence.

usage: test_plugin.py --lib libhakmem-trace.so --workload trace_oom_workload
Skips (77) only where lttng, bt2, babeltrace2 or its Python plugin provider is not installed.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trace"))
import tracetest as tt  # noqa: E402
import analysistest as at  # noqa: E402

ANALYSIS = tt.REPO / "analysis"
CAP = "16M"          # the tracer's own allocations are not charged to it (src/tracer.c)
REFUSALS = 3         # NULLs each of the workload's 4 threads waits for
OOMS = 4 * REFUSALS
TIMEOUT = 300


def require_plugin_support():
    if shutil.which("babeltrace2") is None:
        tt.skip("babeltrace2 not found (apt-get install babeltrace2)")
    dirs = [os.environ.get("LIBBABELTRACE2_PLUGIN_PROVIDER_DIR", "")]
    dirs += glob.glob("/usr/lib/*/babeltrace2/plugin-providers") + ["/usr/lib/babeltrace2/plugin-providers",
                                                                    "/usr/local/lib/babeltrace2/plugin-providers"]
    if not any(glob.glob(os.path.join(d, "*python*")) for d in dirs if d):
        tt.skip("the Babeltrace2 Python plugin provider is not installed "
                "(apt-get install libbabeltrace2-python-plugin-provider)")


def run(argv, what):
    print("+ " + " ".join(map(str, argv)), flush=True)
    try:
        p = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        tt.fail(f"{what} did not finish within {TIMEOUT} s")
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def cli(*args):
    return run([tt.PYTHON, tt.HAKMEM_TRACE, *args], "hakmem-trace " + " ".join(map(str, args)))


def plugin(trace, sink, json_out=False):
    argv = ["babeltrace2", f"--plugin-path={ANALYSIS}", trace, "-c", f"sink.hakmem.{sink}"]
    if json_out:
        argv += ["-p", "json=yes"]
    return run(argv, " ".join(map(str, argv)))


def first_difference(a, b):
    la, lb = a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines()
    for i, (x, y) in enumerate(zip(la, lb), 1):
        if x != y:
            return f"line {i}:\n  hakmem-trace: {x!r}\n  babeltrace2:  {y!r}"
    return f"lengths differ: {len(la)} vs {len(lb)} lines ({len(a)} vs {len(b)} bytes)"


def compare(trace, sink, json_out):
    what = f"{sink}{' --json' if json_out else ''}"
    rc1, out1, err1 = cli(sink, *(["--json"] if json_out else []), trace)
    tt.check(rc1 == 0, f"hakmem-trace {what}: exit status {rc1}; stderr: {err1[-2000:]}")
    rc2, out2, err2 = plugin(trace, sink, json_out)
    tt.check(rc2 == 0, f"babeltrace2 -c sink.hakmem.{sink}{' -p json=yes' if json_out else ''}: exit status "
                       f"{rc2}; stderr: {err2[-3000:]}")
    tt.check("Traceback" not in err2, f"the plugin printed a traceback:\n{err2[-3000:]}")
    tt.check(out1, f"hakmem-trace {what} printed nothing")
    tt.check(out1 == out2, f"{what}: the plugin's output differs from hakmem-trace's: {first_difference(out1, out2)}")
    tt.ok(f"{what}: identical output ({len(out1)} bytes)")
    return out1.decode()


def main():
    args = tt.arguments(workload="trace_oom_workload")
    require_plugin_support()

    rc, out, err = run(["babeltrace2", f"--plugin-path={ANALYSIS}", "list-plugins"], "babeltrace2 list-plugins")
    tt.check(rc == 0, f"babeltrace2 list-plugins with --plugin-path={ANALYSIS}: status {rc}: {err[-3000:]}")
    for sink in ("sink.hakmem.oom-paths", "sink.hakmem.summary"):
        tt.check(sink in out.decode(), f"babeltrace2 does not list {sink}: the plugin did not load: {err[-3000:]}")

    trace, nulls = at.record_workload(args, HAKMEM_MAX_MEMORY=CAP)
    work = trace.parent
    tt.check(len(nulls) == OOMS, f"the workload logged {len(nulls)} NULLs, want {OOMS}")

    text = compare(trace, "oom-paths", False)
    tt.check(text.startswith(f"{OOMS} OOM(s);"), f"the report does not begin with {OOMS} OOMs: {text[:200]!r}")
    headers = re.findall(rf"^OOM (\d+)/{OOMS}: pid \d+ tid (\d+) ", text, re.M)
    tt.check(len(headers) == OOMS, f"{len(headers)} 'OOM n/{OOMS}' headers in the report, want {OOMS}")
    tids = sorted(str(tid) for tid, _, _ in nulls)
    tt.check(sorted(t for _, t in headers) == tids,
             f"OOMs reported on tids {sorted(t for _, t in headers)}, the workload's NULLs on {tids}")

    report = json.loads(compare(trace, "oom-paths", True))
    tt.check(len(report["ooms"]) == OOMS, f"the JSON lists {len(report['ooms'])} OOMs, want {OOMS}")
    tt.check(report["summary"].get("ooms_total", OOMS) == OOMS,
             f"the JSON counts {report['summary'].get('ooms_total')} OOMs, want {OOMS}")
    compare(trace, "summary", False)
    compare(trace, "summary", True)

    # A trace with no hakmem event: the same sentence, exit status 2 from both.
    status, empty = tt.record(["sleep", "1"], lib=args.lib, output=work / "no-hakmem", options=["--events", "oom"],
                              timeout=TIMEOUT)
    tt.check(status == 0, f"recording `sleep 1` exited with status {status}")
    tt.check(tt.find_traces(empty), f"recording `sleep 1` wrote no trace under {empty}")
    rc1, out1, err1 = cli("oom-paths", empty)
    rc2, out2, err2 = plugin(empty, "oom-paths")
    want = f"no hakmem events in {empty}:"
    tt.check(rc1 == 2 and err1.startswith("hakmem-trace: " + want),
             f"hakmem-trace oom-paths on a trace without hakmem events: status {rc1}, stderr {err1!r}")
    tt.check(rc2 == 2, f"the plugin on a trace without hakmem events: exit status {rc2}, want 2; "
                       f"stderr {err2[-2000:]!r}")
    lines = err2.strip().splitlines()
    tt.check(len(lines) == 1 and lines[0].startswith("sink.hakmem.oom-paths: "),
             f"the plugin's stderr is not one 'sink.hakmem.oom-paths: ...' line: {err2[-2000:]!r}")
    tt.check(lines[0].split(": ", 1)[1] == err1.strip().split(": ", 1)[1],
             f"the sentences differ:\n  hakmem-trace: {err1.strip()!r}\n  plugin:       {lines[0]!r}")
    tt.check(not out1 and not out2, f"output on stdout for a trace without hakmem events: {out1!r} / {out2!r}")
    tt.ok(f"oom-paths, oom-paths --json, summary, summary --json: babeltrace2's sinks print what hakmem-trace "
          f"prints ({OOMS} OOMs); a trace without hakmem events: status 2 and the same sentence from both")

    # A trace damaged past its first packet: Babeltrace2's source fails while the sink reads; both say the same.
    # 200 NULLs a thread: enough events for several packets also where only the failure events are compiled in.
    damaged, _ = at.record_workload(args, options=at.MANY_PACKETS, refusals=200, HAKMEM_MAX_MEMORY=CAP)
    folder = tt.find_traces(damaged)[0]
    streams = [(f, at.packet_offsets(folder, f.name) or []) for f in sorted(folder.iterdir()) if f.is_file()
               and f.name != "metadata"]
    stream, offsets = max(streams, key=lambda s: len(s[1]))
    tt.check(len(offsets) >= 2, f"no stream file of {folder} has two packets: {[(f.name, o) for f, o in streams]}")
    data = bytearray(stream.read_bytes())
    data[offsets[1] + 20] ^= 0xFF  # the second packet's stream class id (after the magic and the uuid)
    data[offsets[1] + 21] ^= 0xFF
    stream.write_bytes(bytes(data))
    rc1, out1, err1 = cli("summary", damaged)
    rc2, out2, err2 = plugin(damaged, "summary")
    lines = [line for line in err2.strip().splitlines() if line.startswith("sink.hakmem.")]
    tt.check(rc1 == 2 and err1.startswith(f"hakmem-trace: babeltrace2 cannot read {damaged}: "),
             f"hakmem-trace summary on a damaged trace: status {rc1}, stderr {err1[-2000:]!r}")
    # Babeltrace2 logs the source's failure itself before the sink's sentence, which ends stderr.
    tt.check(rc2 == 2 and len(lines) == 1 and err2.strip().endswith(lines[0])
             and lines[0].startswith("sink.hakmem.summary: "),
             f"the plugin on a damaged trace: status {rc2}, stderr {err2[-2000:]!r}")
    addresses = re.compile(r"0x[0-9a-f]+")  # Babeltrace2's object addresses differ from process to process
    tt.check(addresses.sub("0x?", lines[0].split(": ", 1)[1]) == addresses.sub("0x?", err1.strip().split(": ", 1)[1]),
             f"the sentences differ:\n  hakmem-trace: {err1.strip()!r}\n  plugin:       {lines[0]!r}")
    tt.ok("a trace damaged after its first packet: status 2 and the same sentence from both")


if __name__ == "__main__":
    main()
