#!/usr/bin/python3
"""test_census.py — at an OOM the trace says where the memory was: per class committed and live bytes within one slab
of the truth, and the tracer's share.

trace_census_program holds 2 MiB in class 7 (1024 B blocks) and 1 MiB in class 5 (256 B), then grows class 4
(128 B) until its first NULL under HAKMEM_MAX_MEMORY=16M, and writes what it held per class at that moment.
Recorded with `hakmem-trace record`; `oom-paths --json` must give, for that one OOM, per class: live bytes within
one slab (64 KiB) of what the program held, committed bytes at least that and at most one slab plus the chunk
headers more, committed = live + free + whole chunk headers, the classes (and large blocks) adding up to the
program's committed total within the cap, and the tracer's share (non-zero: lttng-ust allocates). The text report and `summary` say the same.

Usage: test_census.py --lib LIBHAKMEM_TRACE --program TRACE_CENSUS_PROGRAM
"""
import json
import os

import tracetest as tt

CAP = "16M"
SLAB, CHUNK, HEADER = 65536, 2 << 20, 8192
TIMEOUT = 120



def main():
    args = tt.arguments(program="trace_census_program")
    tt.check({"oom", "oom_memory", "oom_class_memory"} <= tt.compiled_events(), "the census events are not compiled in")
    work = tt.workdir()
    truth_file = work / "truth"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_") or k.startswith("HAKMEM_TRACE")}
    env["HAKMEM_MAX_MEMORY"] = CAP
    status, trace = tt.record([args.program, truth_file], lib=args.lib, env=env, timeout=TIMEOUT)
    tt.check(status == 0, f"the program exited with status {status}")
    truth = {int(c): int(b) for c, b in (line.split() for line in truth_file.read_text().splitlines())}

    report = json.loads(tt.cli("oom-paths", "--json", str(trace)))
    tt.check(len(report["ooms"]) == 1, f"{len(report['ooms'])} OOMs in the trace, want the program's one NULL")
    memory = report["ooms"][0]["memory"]
    tt.check(memory is not None and memory["complete"], f"the OOM carries no complete census: {memory}")
    tt.check(memory["cap"] == 16 << 20, f"the census gives the cap as {memory['cap']}")
    tt.check(0 < memory["committed"] <= memory["cap"], f"the program commits {memory['committed']} under the cap")
    tt.check(memory["tracer"] > 0, f"the tracer's share is {memory['tracer']} bytes: lttng-ust allocates")
    classes = {c["class"]: c for c in memory["classes"]}
    for cls, held in truth.items():
        c = classes.get(cls)
        tt.check(c is not None, f"class {cls} (the program holds {held} bytes in it) is not in the census")
        tt.check(abs(c["live"] - held) <= SLAB, f"class {cls}: {c['live']} bytes live in the census, the program "
                                                 f"holds {held}")
        # What is neither live nor free is the chunks' headers: whole 8 KiB ones, at most one per 2 MiB committed.
        headers = c["committed"] - c["live"] - c["free"]
        tt.check(headers > 0 and headers % HEADER == 0 and headers <= HEADER * -(-c["committed"] // CHUNK),
                 f"class {cls}: {c['committed']} committed = {c['live']} live + {c['free']} free + {headers}")
        tt.check(held <= c["committed"] <= held + SLAB + headers,
                 f"class {cls}: {c['committed']} bytes committed for {held} held ({c['live']} live, {c['free']} free)")
    total = sum(c["committed"] for c in memory["classes"]) + memory["large"] + memory["other"]
    tt.check(total == memory["committed"] and memory["other"] % SLAB == 0 and memory["other"] <= 4 * SLAB,
             f"classes, large blocks and {memory['other']} bytes of thread heaps add up to {total}, the census "
             f"says {memory['committed']}")
    text = tt.cli("oom-paths", str(trace))
    tt.check("memory at this OOM: cap 16.0 MiB" in text and "class 4 (128 B): " in text,
             f"the text report does not show the census:\n{text[-2000:]}")
    summary = json.loads(tt.cli("summary", "--json", str(trace)))
    tt.check(summary["memory_at_last_oom"] == memory, "summary --json's census differs from oom-paths'")
    tt.ok(f"at the OOM: " + ", ".join(f"class {c} {classes[c]['live'] >> 10} KiB live of {truth[c] >> 10} KiB held, "
                                      f"{classes[c]['committed'] >> 10} KiB committed" for c in sorted(truth))
          + f"; the tracer {memory['tracer'] >> 10} KiB apart")


if __name__ == "__main__":
    main()
