"""Text renderings of an analysis: `oom-paths` and `summary` (the JSON is the analysis itself)."""

import time

from . import catalogue, judgement
from .paths import DETAIL_PER_CAUSE

ERRNO = {12: "ENOMEM", 11: "EAGAIN", 22: "EINVAL", 0: "0"}


def clock(ns):
    if ns is None:
        return "?"
    try:
        return time.strftime("%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}"
    except (OverflowError, OSError, ValueError):  # a damaged timestamp
        return f"{ns} ns"


def us(ns):
    return f"{'+' if ns >= 0 else '-'}{abs(ns) / 1000:.1f} µs"


def describe(event, f):
    """One line of key fields per event kind (whatever the fields hold: a damaged trace must still print)."""
    try:
        return _describe(event, f)
    except (AttributeError, KeyError, TypeError, ValueError):  # an enum read back as its number, say
        return ", ".join(f"{k} {v}" for k, v in f.items())


def _describe(event, f):
    if event == "refill_enter":
        return f"thread chunk {f['thread_chunk']:#x}, head current_chunk {f['current_chunk']:#x}"
    if event == "bitmap_check":
        return (f"chunk {f['chunk']:#x} bitmap {f['bitmap']:#010x}/{f['full_mask']:#010x} "
                f"active {f['active_slabs']}/{f['capacity']}: {f['outcome']}")
    if event == "mid_simple_choice":
        return f"{f['path']} path (HAKMEM_TINY_MID_REFILL_SIMPLE {'on' if f['enabled'] else 'off'}: {f['why']})"
    if event == "chunk_expand":
        return (f"{f['outcome']}, current_chunk {f['chunk']:#x}, {f['chunk_count']} chunks"
                + (", after waiting for another expanding thread" if f.get("waited") else ""))
    if event == "superslab_alloc_fail":
        return f"{f['bytes']} bytes refused: errno {f['err']} ({ERRNO.get(f['err'], '?')}), reason {f['reason']}"
    if event == "refill_exit":
        return f"{f['result']}" + (f", slab {f['slab']:#x}" if f.get("slab") else "")
    if event == "slab_adopt":
        return (f"{f['stage'].replace('_', ' ')}: " +
                (f"adopted slab {f['slab']:#x}" if f["outcome"] == "adopted" else "no listed slab"))
    if event == "reclaim_retry":
        what = {"reclaimed_retry": f"reclaimed {f['given_back']} bytes ({f['stolen_slabs']} slabs from heaps), retry",
                "others_reclaimed_retry": "another thread reclaimed meanwhile, retry",
                "gave_up": "no reclaim since the last try: the refusal stands"}.get(f["outcome"], f["outcome"])
        return f"try {f['attempt']}: {what}"
    if event == "oom":
        if f.get("call") == "posix_memalign":
            return f"{judgement.call_text(f)} returns ENOMEM"
        return f"{judgement.call_text(f)} returns NULL, errno ENOMEM"
    return ", ".join(f"{k} {v}" for k, v in f.items())


def class_text(cls, block):
    return "large path" if cls == catalogue.LARGE_CLASS else f"class {cls} ({block} B)"


def mib(n):
    return f"{(n or 0) / (1 << 20):.1f} MiB"


def memory_lines(m, title):
    """Where the memory was at an OOM (the census of census.c), most committed class first."""
    cap = f"cap {mib(m['cap'])}" if m.get("cap") else "no cap"
    lines = [f"  {title}: {cap}; the program commits {mib(m['committed'])} (large blocks {mib(m['large'])}, "
             f"thread heaps and other {mib(m.get('other'))}); "
             f"the tracer {mib(m['tracer'])}, apart and not capped"]
    for c in sorted(m["classes"], key=lambda c: -(c["committed"] or 0)):
        held = (f", {mib(c['holder_free'])} of it in tid {c['holder_vtid']}'s heap" if c.get("holder_vtid")
                else "")
        lines.append(f"    {class_text(c['class'], c['block_size'])}: {mib(c['committed'])} committed, "
                     f"{mib(c['live'])} live, {mib(c['free'])} free{held}")
    if not m.get("complete", True):
        lines.append("    (some classes' figures were lost)")
    return lines


def numbers(a, b):
    return f"OOM {a} is" if a == b else f"OOMs {a}–{b} are"


def process_lines(s):
    """What each process counted that the trace does not hold: OOMs by number, refills by class (exit totals)."""
    lines = []
    for p in s.get("processes", []):
        who = f"{on(p)}pid {p['vpid']} ({p['procname'] or '?'})"
        for a, b in p["ooms_not_in_trace"]:
            lines.append(f"  {numbers(a, b)} of {who} not in this trace")
        if not p["exit_totals"] and p["ooms_numbered"]:
            lines.append(f"  {who} has no exit totals in this trace (it was still running, did not exit through "
                         f"exit(), or they were lost): OOMs after its OOM {p['ooms_numbered']}, if any, are not known")
        for cls, r in p.get("refills_not_in_trace", {}).items():
            lines.append(f"  {who} counted {r['counted']} refill(s) of class {cls}; the trace holds {r['in_trace']}")
    return lines


LOSSES_SHOWN = 10     # lost packets and damaged streams described one by one; the rest are counted


def lost_anything(lost):
    return bool(lost["discarded_events"] or lost["discarded_packets"] or lost.get("missing_packets")
                or lost.get("damaged_streams"))


def loss_counts(lost):
    """"events lost: ..." for the first line. Whole packets (discarded, or missing from a damaged stream) hold
    events nobody counted, so a trace that lost any is never said to have lost 0 events."""
    text = f"{lost['discarded_events']} discarded events, {lost['discarded_packets']} discarded packets"
    damaged = lost.get("damaged_streams") or []
    if damaged:
        unknown = any(d["packets"] is None for d in damaged)
        text += (f", {'at least ' if unknown else ''}{lost.get('missing_packets', 0)} packet(s) missing from "
                 f"{len(damaged)} damaged stream(s)")
    if not lost["discarded_events"] and lost_anything(lost):
        return "events lost: an unknown number (whole packets are gone): " + text
    return "events lost: " + text


def span(b, e):
    if b is None and e is None:
        return "at a time not known"
    return f"from {clock(b) if b is not None else 'the beginning'} to {clock(e) if e is not None else 'the end'}"


def loss_lines(lost, indent):
    """One line per lost packet stretch and damaged stream: what is gone, when, and the OOMs it may hide."""
    hidden = "; an OOM whose events went to that stream then is not seen"
    lines = []
    for d in lost.get("damaged_streams") or []:
        n = "an unknown number of" if d["packets"] is None else str(d["packets"])
        gone = f"{n} packet(s) {span(d['begin_ns'], d['end_ns'])}"
        if d["kind"] == "emptied":
            what = f"is empty: {gone} are gone" if d["packets"] is not None else "is empty: what it held is gone"
        elif d["kind"] == "missing":
            what = f"is missing (its index lists {gone})"
        elif d["kind"] == "cut_short":
            until = clock(d["readable_until_ns"]) if d["readable_until_ns"] is not None else "its first packet"
            what = (f"is cut short ({d.get('bytes', '?')} bytes, whole packets up to byte {d.get('cut_at', '?')}, "
                    f"read up to {until}): {gone} are missing")
        else:
            what = f"lacks its first packets: {gone}"
        lines.append(f"{indent}stream {d['stream']} {what}{hidden}")
    for r in (r for r in lost["ranges"] if r["kind"] == "packets"):
        n = "some" if r["count"] is None else r["count"]
        lines.append(f"{indent}stream {r['stream'] or '?'} lost {n} packet(s) {span(r['begin_ns'], r['end_ns'])} "
                     f"(a gap in its packet_seq_num){hidden}")
    if len(lines) > LOSSES_SHOWN:
        lines[LOSSES_SHOWN:] = [f"{indent}... and {len(lines) - LOSSES_SHOWN} more stretch(es) of lost packets"]
    return lines


def on(d):
    """"host H: " for a fleet's entry (fleet.tagged), "" for a single trace's."""
    return f"host {d['host'] or '?'}: " if "host" in d else ""


def group_name(host, session):
    return f"host {host or '?'}, session {session or '?'}"


def oom_paths(report):
    if "hosts" in report:
        return fleet_oom_paths(report)
    lines = []
    ooms = report["ooms"]
    lost = report["lost_events"]
    s = report.get("summary", {})
    total = s.get("ooms_total", len(ooms))
    lines.append(f"{total} OOM(s); {loss_counts(lost)}")
    lines.extend(process_lines(s))
    if lost_anything(lost):
        lines.append(f"  the trace is not complete: {len(lost['ranges'])} stretch(es) of it lost events; an OOM "
                     "whose path overlaps one on its own stream is marked incomplete, and OOMs in them may be "
                     "missing from this count")
        lines.extend(loss_lines(lost, "  "))
    if s.get("ooms_unlisted"):
        lines.append(f"  {s['ooms_unlisted']} OOM(s) are counted but not listed: only the first {DETAIL_PER_CAUSE} "
                     "of each cause are "
                     "(causes of all: " + ", ".join(f"{k} {v}" for k, v in s.get("causes", {}).items()) + ")")
    for o in ooms:
        lines.append("")
        lines.extend(oom_lines(o, f"{o['index']}/{total}"))
    return "\n".join(lines)


def fleet_oom_paths(report):
    """A fleet's report (fleet.combine): the totals, then per host and session a line, what its processes counted
    that its trace lacks and its losses, and its OOMs, each naming its host in its header."""
    ooms, s = report["ooms"], report["summary"]
    total = s.get("ooms_total", len(ooms))
    sessions = [(h["host"], x) for h in report["hosts"] for x in h["sessions"]]
    lines = [f"{total} OOM(s) from {len(report['hosts'])} host(s), {len(sessions)} session(s); "
             f"{loss_counts(report['lost_events'])}"]
    for host, x in sessions:
        lines.append("")
        name = group_name(host, x["session"])
        if x["skipped"]:
            lines.append(f"{name} ({x['folder']}): not analysed: {x['skipped']}")
            continue
        lost = x["lost_events"]
        lines.append(f"{name} ({x['folder']}): {x['ooms_total']} OOM(s); {loss_counts(lost)}")
        lines.extend(process_lines({"processes": [p for p in s["processes"]
                                                  if (p["host"], p["session"]) == (host, x["session"])]}))
        if lost_anything(lost):
            lines.append(f"  its trace is not complete: {len(lost['ranges'])} stretch(es) of it lost events; an OOM "
                         "whose path overlaps one on its own stream is marked incomplete")
            lines.extend(loss_lines(lost, "  "))
        if x["ooms_total"] > x["ooms_listed"]:
            lines.append(f"  {x['ooms_total'] - x['ooms_listed']} OOM(s) are counted but not listed: only the first "
                         f"{DETAIL_PER_CAUSE} of each cause are")
        for o in (o for o in ooms if (o["host"], o["session"]) == (host, x["session"])):
            lines.append("")
            lines.extend(oom_lines(o, f"{o['index']}/{total}", f" on host {o['host'] or '?'}"))
    return "\n".join(lines)


def oom_lines(o, number, where=""):
    """One OOM's block of the report: its thread, cause, path, stack, what others did, memory, notes (number:
    "3/8" in a trace's report; where: the host and session `watch` names)."""
    lines = []
    lines.append(f"OOM {number}{where}: pid {o['vpid']} tid {o['vtid']} {o['thread']} at "
                 f"{clock(o['time_ns'])}, {class_text(o['class'], o['block_size'])}, size {o['size']}")
    lines.append(f"  cause: {o['cause']} — {o['cause_detail']}")
    if o["begins_midway"]:
        if o["path"] and o["path"][0]["event"] == "refill_enter":
            lines.append("  (the trace begins in the middle of this path: a CPU buffer of the snapshot begins "
                         "after its first event, so what the thread did on that CPU before is missing)")
        else:
            lines.append("  (the trace begins in the middle of this path: earlier decisions are not recorded)")
    lines.append(f"  path (refill seq {o['seq']}):")
    for step in o["path"]:
        lines.append(f"    {step['step']:>2}. {us(step['offset_ns']):>14}  {step['event']:<20} "
                     f"{describe(step['event'], step['fields'])}")
    lines.extend(stack_lines(o))
    if o["context"]:
        lines.append("  meanwhile, other threads on this class:")
        for c in o["context"]:
            lines.append(f"      {us(c['offset_ns']):>14}  tid {c['vtid']!s:<7} {c['event']:<20} "
                         f"{describe(c['event'], c['fields'])}")
    if o.get("explaining"):
        lines.append("  what other threads did that these decisions follow from, however far back:")
        for c in o["explaining"]:
            lines.append(f"      {us(c['offset_ns']):>14}  tid {c['vtid']!s:<7} {c['event']:<20} "
                         f"{describe(c['event'], c['fields'])}")
            lines.append(f"      {'':>14}  {'':<11} {c['reason']} (step {', '.join(map(str, c['steps']))})")
    if o.get("memory"):
        lines.extend(memory_lines(o["memory"], "memory at this OOM"))
    for n in o["notes"]:
        lines.append(f"  note: {n}")
    return lines


def size_text(n):
    """A sampling interval: in KiB or MiB when it is a whole number of them."""
    if n and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n and n % 1024 == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"


def share_line(e):
    return f"  {e['share'] * 100:.1f} %  {mib(e['bytes'])}  {e['key']}"


def stack_lines(o):
    """The failing call's stack, and the live heap by site when the OOM struck (heap.add_to_ooms)."""
    if "stack" not in o:
        return []
    if o["stack"] is None:
        lines = ["  called from: no call_stack event (not recorded)"]
    else:
        lines = ["  called from:"] + [f"    #{i} {f['text']}" for i, f in enumerate(o["stack"])]
        if not o["stack"]:
            lines.append("    (an empty stack: the unwinder found no frame outside hakmem)")
    live = o.get("live_heap")
    if live is not None and not live["mean"]:
        lines.append(f"  live heap at this OOM: pid {o['vpid']} recorded no heap samples")
    elif live is not None:
        lines.append(f"  live heap at this OOM (estimated from {live['live_samples']} samples, mean interval "
                     f"{size_text(live['mean'])}):")
        lines.extend("  " + share_line(e) for e in live["top"])
    return lines


def heap(report):
    """`hakmem-trace heap`'s text: the instant, the estimate, one line per group (with its stack by site)."""
    at, sampling = report["at"], report["sampling"]
    when = {"first-oom": f"just before its first OOM (OOM {at['oom_no']})",
            "oom": f"just before its OOM {at['oom_no']}", "peak": "at its estimated peak",
            "end": "at the end of the trace"}[at["kind"]]
    lines = [f"live heap of pid {at['vpid']} {when}, {clock(at['time_ns'])}: {mib(report['total_bytes'])} estimated "
             f"from {sampling['live_samples']} live samples ({sampling['samples']} in the trace, mean interval "
             f"{size_text(sampling['mean'])}), by {report['by']}"]
    for e in report["entries"]:
        lines.append(share_line(e) + f"  ({e['blocks']} blocks)")
        for i, f in enumerate(e.get("stack", [])[1:], 1):
            lines.append(f"      #{i} {f['text']}")
    for p in report["problems"]:
        lines.append(f"note: {p}")
    return "\n".join(lines)


def summary(report):
    s = report["summary"]
    lost = report["lost_events"]
    lines = [f"{s['hakmem_events']} hakmem events ({s['events']} in all) from {clock(s['first_ns'])} to "
             f"{clock(s['last_ns'])}; {loss_counts(lost)}"]
    if s.get("fleet"):
        lines.extend(fleet_lines(s["fleet"]))
        lines.append("")
        lines.append("all hosts together:")
    lines.extend(process_lines(s))
    if lost_anything(lost):
        lines.append("the trace is not complete: the counts below miss the lost events, and any OOM among them")
        lines.extend(loss_lines(lost, "  "))
    lines.append("")
    lines.append(f"{'class':>6} {'size':>6} {'refills':>8} {'claimed':>8} {'full':>6} {'lost':>5} {'simple':>7} "
                 f"{'multi':>6} {'reused':>7} {'new':>5} {'exp.lost':>8} {'failed':>6} {'os':>4} {'cap':>5} "
                 f"{'inj':>5} {'ooms':>6}")
    for cls, c in s["classes"].items():
        b, m, x, f = c["bitmap_checks"], c["mid_simple_choices"], c["expansions"], c["failures"]
        name = "large" if cls == str(catalogue.LARGE_CLASS) else cls  # JSON keys are strings
        lines.append(f"{name:>6} {c['block_size'] or 0:>6} {c['refills']:>8} {b.get('claimed', 0):>8} "
                     f"{b.get('full', 0):>6} {b.get('lost_race', 0):>5} {m.get('simple', 0):>7} "
                     f"{m.get('multi_stage', 0):>6} {x.get('reused_chained_chunk', 0):>7} {x.get('new_chunk', 0):>5} "
                     f"{x.get('lost_race', 0):>8} {x.get('failed', 0):>6} {f.get('os', 0):>4} {f.get('cap', 0):>5} "
                     f"{f.get('injected', 0):>5} {c['ooms']:>6}")
    lines.append("")
    lines.append("threads with OOMs:" if any(t["ooms"] for t in s["threads"]) else "no OOM")
    for t in s["threads"]:
        if t["ooms"]:
            lines.append(f"  {on(t)}pid {t['vpid']} tid {t['vtid']} {t['thread']}: {t['ooms']} OOM(s)")
    if s["causes"]:
        lines.append("causes: " + ", ".join(f"{k} {v}" for k, v in sorted(s["causes"].items())))
    if s.get("memory_at_last_oom"):
        m = s["memory_at_last_oom"]
        lines.extend(memory_lines(m, "memory at the last OOM" + (f" (host {m['host'] or '?'})" if "host" in m
                                                                 else "")))
    return "\n".join(lines)


def fleet_lines(f):
    """summary's fleet view (fleet.fleet): OOMs per host, per process and per cause."""
    width = max([len(str(h["host"] or "?")) for h in f["hosts"]] + [4])
    lines = ["", f"fleet: {len(f['hosts'])} host(s)", f"  {'host':<{width}} {'sessions':>8} {'ooms':>6} "
             f"{'lost':>6}  causes"]
    for h in f["hosts"]:
        lines.append(f"  {h['host'] or '?':<{width}} {h['sessions']:>8} {h['ooms']:>6} {h['events_lost']:>6}  "
                     + (", ".join(f"{c} {n}" for c, n in h["causes"].items()) or "-"))
    lines.append("processes with OOMs:" if f["processes"] else "no process with an OOM")
    for p in f["processes"]:
        lines.append(f"  {p['host'] or '?':<{width}} pid {p['vpid']!s:<8} {p['procname'] or '?':<16} "
                     f"{p['ooms']:>6} OOM(s)  (session {p['session'] or '?'})")
    if f["causes"]:
        lines.append("OOMs per cause:")
        for c, x in f["causes"].items():
            lines.append(f"  {c:<20} {x['ooms']:>6}  " + ", ".join(f"{h or '?'} {n}" for h, n in x["hosts"].items()))
    return lines
