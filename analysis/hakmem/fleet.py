"""A fleet's traces: a folder holding several hosts' or sessions' recordings (an lttng-relayd's OUTPUT tree), each
(host, session) analysed by a core of its own (trace_input.groups says how they are told apart) and the reports
combined into one of the same schema: every OOM, thread, process and loss tagged with its host and session, the
OOMs renumbered in the combined order (host, session, process, thread), and a fleet view of the counts."""

import collections

from . import judgement

SUMMED = ("events", "hakmem_events", "ooms_total", "ooms_unlisted", "events_read_twice")


def tagged(group, d):
    """d with its group's host and session, placed first after an index (so that a reader sees them at once)."""
    tag = {"host": group.host, "session": group.session}
    if "index" in d:
        return {"index": d["index"]} | tag | d
    return tag | d


def combine(parts, skipped=()):
    """One report from [(Group, report)] in group order; skipped: [(Group, reason)] of groups without a usable
    trace (no hakmem event: another tool's session on the same relay)."""
    ooms = []
    for g, r in parts:
        # Sorted by process and thread, stably: a thread's OOMs stay in the core's (time) order.
        for o in sorted(r["ooms"], key=lambda o: (o["vpid"] or 0, o["vtid"] or 0)):
            ooms.append(tagged(g, o | {"index_in_session": o["index"]}))
    for n, o in enumerate(ooms, 1):
        o["index"] = n
    summaries = [(g, r["summary"]) for g, r in parts]
    summary = {k: sum(s[k] or 0 for _, s in summaries) for k in SUMMED}
    firsts = [s["first_ns"] for _, s in summaries if s["first_ns"] is not None]
    lasts = [s["last_ns"] for _, s in summaries if s["last_ns"] is not None]
    causes = collections.Counter()
    for _, s in summaries:
        causes.update(s["causes"])
    summary |= {
        "first_ns": min(firsts, default=None), "last_ns": max(lasts, default=None),
        "classes": _classes(s for _, s in summaries),
        "threads": [tagged(g, t) for g, s in summaries for t in s["threads"]],
        "causes": {c: causes[c] for c in judgement.CAUSES if causes[c]},
        "memory_at_last_oom": _last_memory(parts),
        "processes": [tagged(g, p) for g, s in summaries for p in s["processes"]],
    }
    summary = {k: summary[k] for k in parts[0][1]["summary"]} | {"fleet": fleet(parts, skipped)}
    hosts = collections.defaultdict(list)
    for g, r in parts:
        hosts[g.host].append({"session": g.session, "created": g.created, "folder": g.folder,
                              "ooms_total": r["summary"]["ooms_total"], "ooms_listed": len(r["ooms"]),
                              "lost_events": r["lost_events"], "skipped": None})
    for g, why in skipped:
        hosts[g.host].append({"session": g.session, "created": g.created, "folder": g.folder, "ooms_total": 0,
                              "ooms_listed": 0, "lost_events": None, "skipped": why})
    return {"schema": parts[0][1]["schema"],
            "hosts": [{"host": h, "sessions": sessions} for h, sessions in sorted(hosts.items(),
                                                                               key=lambda kv: kv[0] or "")],
            "ooms": ooms, "summary": summary,
            "lost_events": _losses([(g, r["lost_events"]) for g, r in parts])}


def _classes(summaries):
    """Per class, every count summed over the groups (the classes are the allocator's, the same everywhere)."""
    out = {}
    for s in summaries:
        for cls, c in s["classes"].items():
            into = out.setdefault(cls, {})
            for k, v in c.items():
                if isinstance(v, dict):
                    into.setdefault(k, collections.Counter()).update(v)
                elif k == "block_size":
                    into[k] = into.get(k) or v
                else:
                    into[k] = into.get(k, 0) + (v or 0)
    return {cls: {k: dict(v) if isinstance(v, collections.Counter) else v for k, v in out[cls].items()}
            for cls in sorted(out, key=lambda c: int(c) if c.lstrip("-").isdigit() else 0)}


def _last_memory(parts):
    """The memory at the latest OOM of all (each host's clock is its own, but every one counts from the epoch)."""
    last = None
    for g, r in parts:
        m = r["summary"]["memory_at_last_oom"]
        t = max((o["time_ns"] for o in r["ooms"] if o["time_ns"] is not None), default=None)
        if m and (last is None or (t or 0) >= last[0]):
            last = (t or 0, tagged(g, m))
    return last and last[1]


def _losses(parts):
    """The groups' lost_events: totals summed, every range and damaged stream tagged with its group."""
    out = {k: sum(lost[k] or 0 for _, lost in parts) for k in ("discarded_events", "discarded_packets",
                                                                  "missing_packets")}
    out["damaged_streams"] = [tagged(g, d) for g, lost in parts for d in lost["damaged_streams"]]
    out["ranges"] = [tagged(g, r) for g, lost in parts for r in lost["ranges"]]
    return out


def fleet(parts, skipped=()):
    """The fleet view: OOMs per host, per process (host, session, vpid, procname) and per cause (with each host's
    share)."""
    hosts = {}
    for g, r in parts:
        h = hosts.setdefault(g.host, {"host": g.host, "sessions": 0, "ooms": 0, "events_lost": 0,
                                      "causes": collections.Counter()})
        s, lost = r["summary"], r["lost_events"]
        h["sessions"] += 1
        h["ooms"] += s["ooms_total"]
        h["events_lost"] += lost["discarded_events"] + lost["discarded_packets"] + lost.get("missing_packets", 0)
        h["causes"].update(s["causes"])
    for g, _ in skipped:
        hosts.setdefault(g.host, {"host": g.host, "sessions": 0, "ooms": 0, "events_lost": 0,
                                  "causes": collections.Counter()})
    processes = []
    for g, r in parts:
        names = {p["vpid"]: p["procname"] for p in r["summary"]["processes"]}
        per = collections.Counter()
        for t in r["summary"]["threads"]:
            per[t["vpid"]] += t["ooms"]
            names.setdefault(t["vpid"], t["procname"])
        processes += [{"host": g.host, "session": g.session, "vpid": vpid, "procname": names.get(vpid),
                       "ooms": n} for vpid, n in sorted(per.items(), key=lambda kv: kv[0] or 0) if n]
    causes = {}
    for c in judgement.CAUSES:
        by_host = {h["host"]: h["causes"][c] for h in hosts.values() if h["causes"][c]}
        if by_host:
            causes[c] = {"ooms": sum(by_host.values()), "hosts": by_host}
    return {"hosts": [h | {"causes": {c: h["causes"][c] for c in judgement.CAUSES if h["causes"][c]}}
                      for _, h in sorted(hosts.items(), key=lambda kv: kv[0] or "")],
            "processes": processes, "causes": causes}
