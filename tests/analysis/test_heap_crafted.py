#!/usr/bin/python3
"""test_heap_crafted.py — the heap profile's estimate from hand-made heap_sample / heap_sample_free / call_stack
events fed to the analysis (paths.Analyzer, whose core passes them through), without a recording:

  arithmetic  a sample of n bytes at mean S stands for n / (1 - exp(-n/S)) bytes and 1 / (1 - exp(-n/S)) blocks
  instants    first-oom (before the first OOM, in its process), oom:N (the first in time of the processes numbering
              one N, and said so), peak (the highest estimated total), end; a free without a sample is ignored
  groupings   site (the innermost frame), thread, class (255: the large path); entries sorted by bytes
  json        the schema's keys; shares summing to 1
  oom-paths   each OOM's own stack (same vpid, vtid, oom_no) and its live heap by site; "no call_stack event"
  unusable    no samples, no such OOM, no such pid: one sentence, exit status 2
  hostile     a stack outside every binary the state dump lists: named, never resolved

usage: test_heap_crafted.py
"""
import contextlib
import io
import math
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "analysis"))
from hakmem import catalogue, cli, heap, paths, report  # noqa: E402
from hakmem.records import Event  # noqa: E402
from hakmem.trace_input import TraceError  # noqa: E402
import analysistest as at  # noqa: E402

fail, check = at.tt.fail, at.tt.check

PID, OTHER = 100, 200
S = 4096
A, B, C, ROOT = 0x401000, 0x402000, 0x403000, 0x409000  # the three sites' return addresses, and their caller
SITE = {A: (101, 15, 4096), B: (102, 20, 8192), C: (103, 255, 100)}  # site -> (thread, class, size)


def estimate(size, mean=S):
    p = 1 - math.exp(-size / mean)
    return size / p, 1 / p


class Feed:
    def __init__(self):
        self.a = paths.Analyzer()
        self.a.declared = {catalogue.full_name(e) for e in catalogue.EVENTS}
        self.ts = 1_000_000
        self.ptr = 0x7F0000000000

    def ev(self, name, vpid, tid, **fields):
        self.ts += 1000
        self.a.event(Event(name, self.ts, vpid, tid, "crafted", fields))
        return self.ts

    def sample(self, site, vpid=PID):
        tid, cls, size = SITE[site]
        self.ptr += 0x10000
        self.ev("heap_sample", vpid, tid, ptr=self.ptr, size=size, class_idx=cls, mean=S, frames=[site, ROOT])
        return self.ptr

    def free(self, ptr, site, vpid=PID):
        self.ev("heap_sample_free", vpid, SITE[site][0], ptr=ptr, size=SITE[site][2])

    def oom(self, vpid, tid, no, stack=True):
        if stack:
            self.ev("call_stack", vpid, tid, seq=0, oom_no=no, frames=[A + 0x40, ROOT])
        self.ev("superslab_alloc_fail", vpid, tid, class_idx=255, block_size=0, seq=0, bytes=1 << 30, err=12,
                reason="cap")
        return self.ev("oom", vpid, tid, size=1 << 30, class_idx=255, block_size=0, seq=0, oom_no=no, call="malloc",
                       count=1, align=0, old_ptr=0, snapshot=0)

    def heap(self, **kw):
        r = self.a.finish(stacks=False)
        return heap.heap(r, self.a.aux, name="crafted", **kw)[0]


def near(x, want, what):
    check(abs(x - round(want)) <= 1, f"{what}: {x}, want {want:.1f}")


def by_site(rep):
    return {e["stack"][0]["addr"]: e for e in rep["entries"]}


def scenario():
    """Before OOM 1: 10 blocks of A (2 freed), 5 of B, 3 of C, a free of a block never sampled; OOM 1 in PID;
    then OOM 1 and 2 of OTHER (which samples nothing), OOM 2 of PID without its stack; then 2 more of B (the peak:
    they outweigh A's 2 freed), A's blocks all freed and 4 more of C."""
    f = Feed()
    a_ptrs = [f.sample(A) for _ in range(10)]
    [f.sample(B) for _ in range(5)]
    [f.sample(C) for _ in range(3)]
    f.free(a_ptrs[0], A)
    f.free(a_ptrs[1], A)
    f.free(0x1234, A)  # a block the process never sampled (a fork child's inherited one)
    first = f.oom(PID, 101, 1)
    f.oom(OTHER, 201, 1)
    f.oom(OTHER, 201, 2)
    f.oom(PID, 102, 2, stack=False)
    f.sample(B)
    f.sample(B)
    peak = f.ts
    for p in a_ptrs[2:]:
        f.free(p, A)
    [f.sample(C) for _ in range(4)]
    return f, first, peak


def check_first_oom(f, first):
    rep = f.heap()
    check(rep["schema"] == heap.SCHEMA, f"schema {rep['schema']}")
    check(set(rep) == {"schema", "at", "by", "sampling", "total_bytes", "entries", "problems"}, f"keys {set(rep)}")
    check(rep["at"] == {"kind": "first-oom", "oom_no": 1, "vpid": PID, "time_ns": first}, f"at {rep['at']}")
    check(rep["sampling"] == {"mean": S, "samples": 24, "live_samples": 16}, f"sampling {rep['sampling']}")
    sites = by_site(rep)
    check(set(sites) == {A, B, C}, f"sites {sorted(map(hex, sites))}")
    for site, n in ((A, 8), (B, 5), (C, 3)):
        b, blocks = estimate(SITE[site][2])
        near(sites[site]["bytes"], n * b, f"site {site:#x} bytes")
        near(sites[site]["blocks"], n * blocks, f"site {site:#x} blocks")
        e = sites[site]
        check(set(e) == {"key", "vpid", "bytes", "share", "blocks", "stack"} and e["vpid"] == PID, f"entry {e}")
        check([fr["addr"] for fr in e["stack"]] == [site, ROOT], f"stack of {site:#x}: {e['stack']}")
        check(set(e["stack"][0]) == {"addr", "binary", "offset", "function", "file", "line", "problem", "text"},
              f"frame keys {set(e['stack'][0])}")
    total = 8 * estimate(4096)[0] + 5 * estimate(8192)[0] + 3 * estimate(100)[0]
    near(rep["total_bytes"], total, "total_bytes")
    check([e["stack"][0]["addr"] for e in rep["entries"]] == [A, B, C], f"order {[e['key'] for e in rep['entries']]}")
    check(abs(sum(e["share"] for e in rep["entries"]) - 1) < 1e-3, "shares do not sum to 1")
    check(abs(sites[B]["share"] - 5 * estimate(8192)[0] / total) < 1e-3, f"share of B {sites[B]}")
    check(len({e["key"] for e in rep["entries"]}) == 3, "two sites share a key")
    text = report.heap(rep)
    check(text.splitlines()[1].startswith(f"  {sites[A]['share'] * 100:.1f} %  "), f"text:\n{text}")


def check_groupings(f):
    rep = f.heap(by="thread")
    keys = [e["key"] for e in rep["entries"]]
    check(keys == ["tid 101 crafted", "tid 102 crafted", "tid 103 crafted"], f"by thread: {keys}")
    check(all("stack" not in e for e in rep["entries"]), "by thread: entries with a stack")
    rep = f.heap(by="class")
    keys = [e["key"] for e in rep["entries"]]
    check(keys == ["class 15", "class 20", "large path"], f"by class: {keys}")
    near(rep["entries"][2]["blocks"], 3 * estimate(100)[1], "large path blocks")


def check_instants(f, peak):
    # OOM 2 of OTHER comes first in time, but OTHER sampled nothing: one sentence
    unusable(lambda: f.heap(at="oom:2"), "pid 200")
    rep = f.heap(at="oom:2", pid=PID)
    check(rep["at"]["vpid"] == PID and rep["at"]["oom_no"] == 2, f"oom:2 --pid at {rep['at']}")
    rep = f.heap(at="oom:1", pid=None)
    check(rep["at"]["vpid"] == PID, f"oom:1 is PID's first: {rep['at']}")
    check(any("numbered in 2 processes" in p for p in rep["problems"]), f"oom:1 problems {rep['problems']}")
    rep = f.heap(at="peak")
    sites = by_site(rep)
    check(rep["at"] == {"kind": "peak", "oom_no": None, "vpid": PID, "time_ns": peak}
          and rep["sampling"]["live_samples"] == 18, f"peak {rep['at']} {rep['sampling']}")
    near(sites[B]["bytes"], 7 * estimate(8192)[0], "peak: B")
    near(sites[A]["bytes"], 8 * estimate(4096)[0], "peak: A")
    rep = f.heap(at="end")
    sites = by_site(rep)
    check(set(sites) == {B, C} and sites[B]["bytes"] > sites[C]["bytes"] and rep["sampling"]["live_samples"] == 14,
          f"end: {sorted(map(hex, sites))}")
    near(sites[C]["bytes"], 7 * estimate(100)[0], "end: C")
    check(rep["at"]["vpid"] == PID and rep["at"]["time_ns"] == f.ts, f"end: {rep['at']}")


def unusable(call, want):
    """call raises TraceError; through the command's error path it is one sentence on stderr and status 2."""
    err = io.StringIO()
    args = types.SimpleNamespace(func=lambda _: call())
    with contextlib.redirect_stderr(err):
        rc = cli._run(args)
    lines = err.getvalue().splitlines()
    check(rc == 2 and len(lines) == 1 and lines[0].startswith("hakmem-trace: ") and want in lines[0],
          f"want exit 2 and one sentence naming {want!r}: {rc}, {lines}")
    try:
        call()
    except TraceError:
        return
    fail(f"no TraceError for {want}")


def check_unusable():
    f = Feed()
    f.oom(PID, 101, 1)
    unusable(lambda: f.heap(), "no heap samples")
    f = Feed()
    f.sample(A)
    unusable(lambda: f.heap(), "holds no OOM")
    unusable(lambda: f.heap(at="oom:7"), "no OOM numbered 7")
    unusable(lambda: f.heap(at="end", pid=999), "pid 999")
    unusable(lambda: f.heap(at="oom:x"), "oom:N")


def check_oom_paths(f):
    r = f.a.finish()
    ooms = {(o["vpid"], o["oom_no"]): o for o in r["ooms"]}
    o = ooms[(PID, 1)]
    check(o["stack"] is not None and [fr["addr"] for fr in o["stack"]] == [A + 0x40, ROOT], f"stack {o['stack']}")
    live = o["live_heap"]
    check(live["mean"] == S and live["live_samples"] == 16 and [e["stack"][0]["addr"] for e in live["top"]] ==
          [A, B, C], f"live heap {live}")
    check(ooms[(PID, 2)]["stack"] is None, "OOM 2 of PID has no call_stack event but a stack")
    check(ooms[(OTHER, 1)]["live_heap"]["top"] == [] and ooms[(OTHER, 1)]["live_heap"]["total_bytes"] == 0,
          f"OTHER sampled nothing: {ooms[(OTHER, 1)]['live_heap']}")
    text = report.oom_paths(r)
    check("  called from:\n    #0 " in text and "called from: no call_stack event (not recorded)" in text
          and f"live heap at this OOM: pid {OTHER} recorded no heap samples" in text, f"oom-paths text:\n{text}")
    want = (f"  live heap at this OOM (estimated from 16 samples, mean interval 4 KiB):\n"
            f"    {live['top'][0]['share'] * 100:.1f} %")
    check(want in text, f"oom-paths text lacks {want!r}:\n{text}")
    f2 = Feed()
    f2.oom(PID, 101, 1)
    o = f2.a.finish()["ooms"][0]
    check(o["live_heap"] is None and "live heap" not in report.oom_paths(f2.a.finish()),
          "a trace without samples has a live heap")


def check_outside():
    """Hostile stacks: return addresses in no binary the process's state dump lists are named so, in the frames and
    in the report's problems, never resolved and never a traceback."""
    f = Feed()
    f.ev("lttng_ust_statedump:start", PID, PID)
    f.ev("lttng_ust_statedump:bin_info", PID, PID, baddr=0x555500000000, memsz=0x1000, path="/bin/true", is_pic=1,
         has_build_id=0, has_debug_link=0)
    f.ev("lttng_ust_statedump:end", PID, PID)
    f.sample(A)
    f.oom(PID, 101, 1)
    rep = f.heap()
    frame = rep["entries"][0]["stack"][0]
    check(frame["problem"] == "outside any mapped binary" and frame["function"] is None and frame["line"] is None,
          f"a stack outside every mapped binary resolved as {frame}")
    check(any("outside any mapped binary" in p for p in rep["problems"]), f"problems {rep['problems']}")


def main():
    f, first, peak = scenario()
    check_first_oom(f, first)
    check_groupings(f)
    check_instants(f, peak)
    check_oom_paths(f)
    check_unusable()
    check_outside()
    at.tt.ok("estimates, instants, groupings, JSON, oom-paths additions and unusable input as specified")


if __name__ == "__main__":
    main()
