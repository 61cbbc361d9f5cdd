#!/usr/bin/python3
"""test_explaining.py — an OOM's context holds the other threads' events that explain its decisions, however far
back: the expansion that won the race its expansion lost, the claims that took the last free slab of the chunks
it found full.

lost_race_program (see its header) runs under libhakmem-trace.so, recorded by `hakmem-trace record`, with
HAKMEM_TINY_MID_REFILL_SIMPLE=1 and HAKMEM_FAULT_SUPERSLAB=every:3/27. Its thread A loses an expansion race to
thread C's new chunk Y and is held (a seccomp user notification) until thread N has emitted more than 1000 events
on the class over at least 1 ms and filled Y; then A's own expansion is refused (injected) and malloc returns NULL.
`hakmem-trace oom-paths --json` must give exactly that OOM, on A, with C's chunk_expand new_chunk of Y in its
`explaining` events, reason "won the expansion race this path lost", for the path's chunk_expand lost_race — the
expansion lying further back than the "meanwhile" list reaches (and than its window of CONTEXT_WINDOW events
holds) —, F's claim of X's last free slab for the check that found X full, N's claim of Y's last free slab for
the one that found Y full; the text report and the notes must say so too.

Only the program's process is looked at (by its pid): another traced program recorded meanwhile changes nothing.

usage: test_explaining.py --lib libhakmem-trace.so --program lost_race_program
"""
import os

import analysistest as at

tt = at.tt
CLASS, BLOCK = 27, 32768
WON = "won the expansion race this path lost"


def read_out(path):
    roles, chunks, null = {}, {}, None
    for line in path.read_text().splitlines():
        words = line.split()
        if words[0] in ("F", "C", "A", "N", "pid"):
            roles[words[0]] = int(words[1])
        elif words[0] == "chunk":
            chunks = {"X": int(words[2], 16), "Y": int(words[4], 16)}
        elif words[0] == "null":
            null = int(words[1])
    return roles, chunks, null


def main():
    args = tt.arguments(program="lost_race_program")
    compiled = tt.compiled_events()
    tt.check(set(tt.catalogue.OOM_PATH) <= compiled, f"this build compiles in only {sorted(compiled)}")
    work = tt.workdir()
    out = work / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_") or k == "HAKMEM_TRACE_LIB"}
    env.update(HAKMEM_TINY_MID_REFILL_SIMPLE="1", HAKMEM_FAULT_SUPERSLAB=f"every:3/{CLASS}")
    status, trace = tt.record([args.program, out], lib=args.lib, output=work / "trace", env=env, timeout=120)
    tt.check(status == 0, f"lost_race_program exited with status {status}")
    roles, chunks, null = read_out(out)
    tt.check(set(roles) == {"pid", "F", "C", "A", "N"} and set(chunks) == {"X", "Y"} and null == 12,
             f"lost_race_program wrote roles {roles}, chunks {chunks}, null errno {null}")
    pid = roles["pid"]

    report = at.oom_json(trace)
    ooms = [o for o in report["ooms"] if o["vpid"] == pid]
    tt.check(len(ooms) == 1 and ooms[0]["vtid"] == roles["A"],
             f"OOMs on vtids {[o['vtid'] for o in ooms]}, want one on A (tid {roles['A']})")
    o = ooms[0]
    tt.check(o["cause"] == "injected" and o["class"] == CLASS and o["size"] == BLOCK and not o["begins_midway"],
             f"the OOM: cause {o['cause']} ({o['cause_detail']}), class {o['class']}, size {o['size']}")
    steps = {(s["event"], s["fields"].get("outcome"), s["fields"].get("chunk")): s["step"] for s in o["path"]}
    lost = steps.get(("chunk_expand", "lost_race", chunks["Y"]))
    full_x = steps.get(("bitmap_check", "full", chunks["X"]))
    full_y = steps.get(("bitmap_check", "full", chunks["Y"]))
    tt.check(None not in (lost, full_x, full_y),
             f"A's path lacks the full check of X, the lost race to Y or the full check of Y: {at.steps(o)}")

    # The schedule the program promises, read from the trace itself: C's new chunk, more than 1000 events of
    # other threads on the class and at least 1 ms, then A's lost race.
    t = tt.read_trace(trace)
    tt.check(t.discarded_events == 0, f"{t.discarded_events} events were discarded")
    mine = [e for e in t.events if e["vpid"] == pid and e.get("class_idx") == CLASS]
    won = [e for e in mine if e["name"] == "hakmem:chunk_expand" and e["outcome"] == "new_chunk"
           and e["chunk"] == chunks["Y"]]
    lose = [e for e in mine if e["name"] == "hakmem:chunk_expand" and e["outcome"] == "lost_race"]
    tt.check(len(won) == 1 and won[0]["vtid"] == roles["C"] and len(lose) == 1 and lose[0]["vtid"] == roles["A"],
             f"new_chunk Y events {won}, lost_race events {lose}")
    between = [e for e in mine if won[0]["ts"] < e["ts"] < lose[0]["ts"] and e["vtid"] != roles["A"]]
    tt.check(len(between) > 1000, f"only {len(between)} events of other threads between C's expansion and A's lost "
             "race: the program did not hold A as it should")
    tt.check(lose[0]["ts"] - won[0]["ts"] >= 1_000_000,
             f"A's lost race {lose[0]['ts'] - won[0]['ts']} ns after C's expansion, the program promises 1 ms")

    # The meanwhile list (a fixed number of the newest events) does not reach back to C's expansion ...
    tt.check(not any(c["vtid"] == roles["C"] for c in o["context"]),
             "C's events are in the meanwhile list: the test no longer shows what it should")
    # ... the explaining events do.
    ex = o["explaining"]
    winner = [c for c in ex if c["reason"] == WON]
    tt.check(len(winner) == 1, f"explaining events {[(c['vtid'], c['event'], c['reason']) for c in ex]}, want one "
             f"with reason {WON!r}")
    w = winner[0]
    tt.check(w["vtid"] == roles["C"] and w["vpid"] == pid and w["event"] == "chunk_expand"
             and w["fields"]["outcome"] == "new_chunk" and w["fields"]["chunk"] == chunks["Y"]
             and w["steps"] == [lost],
             f"the winner {w}, want C's (tid {roles['C']}) chunk_expand new_chunk {chunks['Y']:#x} for step {lost}")
    tt.check(w["offset_ns"] == won[0]["ts"] - at.window(o)[0], f"the winner's offset {w['offset_ns']}")
    for chunk, step, who in (("X", full_x, "F"), ("Y", full_y, "N")):
        want = f"claimed the last free slab of chunk {chunks[chunk]:#x}"
        got = [c for c in ex if c["reason"] == want]
        tt.check(len(got) == 1 and got[0]["vtid"] == roles[who] and got[0]["event"] == "bitmap_check"
                 and got[0]["fields"]["outcome"] == "claimed" and got[0]["fields"]["active_slabs"] == 31
                 and step in got[0]["steps"],
                 f"the claim of {chunk}'s last slab: {got}, want {who}'s (tid {roles[who]}) for step {step}")
    tt.check(len(ex) == 3, f"explaining events beyond the three: {ex}")
    tt.check(any(n.startswith(f"tid {roles['C']} {WON} (step {lost})") for n in o["notes"]),
             f"no note on C's winning expansion: {o['notes']}")

    text = at.text_report(trace)
    tt.check("what other threads did that these decisions follow from, however far back:" in text
             and f"{WON} (step {lost})" in text, f"the text report does not show the winner:\n{text}")
    tt.ok(f"C's expansion {(lose[0]['ts'] - won[0]['ts']) / 1e6:.1f} ms and {len(between)} events before A's lost "
          "race is in the OOM's explaining events, with F's and N's claims of the last slabs")
    print("test_explaining: passed")


if __name__ == "__main__":
    main()
