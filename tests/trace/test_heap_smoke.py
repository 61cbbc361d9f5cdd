#!/usr/bin/python3
"""test_heap_smoke.py — a recorded heap profile: a program keeps 4096-byte blocks from two call sites, 3/4 of its
live bytes from one and 1/4 from the other (and frees as many again from the second), then asks for more than its
cap allows. Recorded with HAKMEM_TRACE_SAMPLE=16384 in its environment (p = 0.22 a block: thousands of samples):

- `heap --json --at end --pid PID`: each site's share within 3 points of the truth (a standard deviation is about
  half a point here), the sites told apart by their first frame's address, inside each function's code (nm -S);
- `oom-paths --json`: the OOM's stack begins in the function that called malloc, its caller next;
- the same trace read twice (two overlapping snapshot folders): the same estimate and the same stack, every
  passed-through event counted once.

Usage: test_heap_smoke.py --lib LIBHAKMEM_TRACE --cc C_COMPILER
"""
import json
import os
import shutil
import subprocess

import tracetest as tt

BLOCK = 4096
KEEP_A, KEEP_B, CHURN_B = 24000, 8000, 8000
SAMPLE = 16384
CAP = "1G"
TOLERANCE = 0.03

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define BLOCK %(block)d
__attribute__((noinline)) void *site_a(void) { return malloc(BLOCK); }
__attribute__((noinline)) void *site_b(void) { return malloc(BLOCK); }
__attribute__((noinline)) void *site_oom(size_t n) { return malloc(n); }

static void *keep_a[%(keep_a)d], *keep_b[%(keep_b)d], *churn[%(churn)d];

int main(void) {
    for (int i = 0; i < %(churn)d; i++) churn[i] = site_b();
    for (int i = 0; i < %(keep_a)d; i++) if (!(keep_a[i] = site_a())) return 3;
    for (int i = 0; i < %(keep_b)d; i++) if (!(keep_b[i] = site_b())) return 3;
    for (int i = 0; i < %(churn)d; i++) free(churn[i]);
    void *refused = site_oom((size_t)2 << 30);
    printf("pid %%d site_a %%p site_b %%p site_oom %%p main %%p refused %%p\n", (int)getpid(), (void *)site_a,
           (void *)site_b, (void *)site_oom, (void *)main, refused);
    return refused ? 4 : 0;
}
"""


def build(cc, work):
    src, exe = work / "heap_smoke.c", work / "heap_smoke"
    src.write_text(PROGRAM % {"block": BLOCK, "keep_a": KEEP_A, "keep_b": KEEP_B, "churn": CHURN_B})
    p = subprocess.run([cc, "-O1", "-g", "-o", str(exe), str(src)], capture_output=True, text=True)
    tt.check(p.returncode == 0, f"cannot build the test program: {p.stderr}")
    return exe


def sizes(exe):
    """function -> (link-time address, size) from nm -S."""
    out = subprocess.run(["nm", "-S", str(exe)], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] in ("site_a", "site_b", "site_oom", "main"):
            found[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    tt.check(len(found) == 4, f"nm -S does not give the four functions: {found}")
    return found


def run(*args):
    p = subprocess.run([tt.PYTHON, str(tt.HAKMEM_TRACE), *map(str, args)], capture_output=True, text=True,
                       timeout=300)
    tt.check(p.returncode == 0 and "Traceback" not in p.stderr,
             f"hakmem-trace {' '.join(map(str, args))}: status {p.returncode}: {p.stderr[-2000:]}")
    return json.loads(p.stdout)


def check_heap(rep, ranges, pid):
    tt.check(rep["at"]["vpid"] == pid and rep["at"]["kind"] == "end", f"at {rep['at']}")
    tt.check(rep["sampling"]["mean"] == SAMPLE and rep["sampling"]["live_samples"] > 5000,
             f"sampling {rep['sampling']}")
    share = {}
    for e in rep["entries"]:
        first = e["stack"][0]["addr"]
        for name in ("site_a", "site_b"):
            lo, size = ranges[name]
            if lo <= first < lo + size:
                share[name] = share.get(name, 0) + e["share"]
    truth = {"site_a": KEEP_A / (KEEP_A + KEEP_B), "site_b": KEEP_B / (KEEP_A + KEEP_B)}
    for name, want in truth.items():
        got = share.get(name)
        tt.check(got is not None and abs(got - want) <= TOLERANCE,
                 f"{name}: share {got}, truth {want:.3f} (entries {[(e['key'], e['share']) for e in rep['entries']]})")
    return share


def check_stack(report, ranges):
    ooms = report["ooms"]
    tt.check(len(ooms) == 1, f"{len(ooms)} OOMs, want 1")
    stack = ooms[0]["stack"]
    tt.check(stack and len(stack) >= 2, f"the OOM's stack: {stack}")
    for frame, name in zip(stack, ("site_oom", "main")):
        lo, size = ranges[name]
        tt.check(lo <= frame["addr"] < lo + size, f"frame {frame} is not inside {name} [{lo:#x}, {lo + size:#x})")
    tt.check(ooms[0]["live_heap"] and ooms[0]["live_heap"]["top"], f"no live heap at the OOM: {ooms[0]['live_heap']}")
    return [f["addr"] for f in stack]


def main():
    args = tt.arguments(cc="the C compiler")
    compiled = tt.compiled_events()
    if not {"heap_sample", "heap_sample_free", "call_stack", "oom"} <= compiled:
        tt.skip(f"this build does not compile the heap profile's events in ({sorted(compiled)})")
    work = tt.workdir()
    exe = build(args.cc, work)
    out = work / "out.txt"
    env = dict(os.environ, HAKMEM_TRACE_SAMPLE=str(SAMPLE), HAKMEM_MAX_MEMORY=CAP)
    status, trace = tt.record(["sh", "-c", f"exec {exe} > {out}"], lib=args.lib, env=env, timeout=300)
    tt.check(status == 0, f"the program exited with status {status}: {out.read_text()}")
    words = out.read_text().split()
    printed = dict(zip(words[::2], words[1::2]))
    pid = int(printed["pid"])
    link = sizes(exe)
    # Where each function is in the process: its printed address, the size nm gives (PIE or not).
    ranges = {name: (int(printed[name], 16), size) for name, (_, size) in link.items()}

    rep = run("heap", "--json", "--at", "end", "--pid", pid, trace)
    share = check_heap(rep, ranges, pid)
    stack = check_stack(run("oom-paths", "--json", trace), ranges)

    # Read twice: the muxer gives every event once from each copy; the analysis keeps one.
    twice = work / "twice"
    for n in (1, 2):
        shutil.copytree(trace, twice / f"snapshot-{n}-copy")
    again = run("heap", "--json", "--at", "end", "--pid", pid, twice)
    tt.check(again["sampling"] == rep["sampling"] and again["total_bytes"] == rep["total_bytes"],
             f"read twice: {again['sampling']} {again['total_bytes']}, once: {rep['sampling']} {rep['total_bytes']}")
    tt.check(check_stack(run("oom-paths", "--json", twice), ranges) == stack, "read twice: another stack")
    tt.ok(f"site_a {share['site_a']:.3f}, site_b {share['site_b']:.3f} of {rep['total_bytes']} bytes estimated "
          f"from {rep['sampling']['live_samples']} samples; the OOM's stack begins in site_oom, then main")


if __name__ == "__main__":
    main()
