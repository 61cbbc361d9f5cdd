#!/usr/bin/python3
"""test_mutants.py — hakmem-trace on 200 reproducibly damaged real traces: a report or one sentence, never worse.

Two traces of trace_oom_workload under a cap are recorded: one with the default sub-buffers (one packet per
stream file) and one with 16 KiB sub-buffers (several packets per file, so cuts can fall on packet boundaries).
From each, MUTANTS / 2 mutants are made, each from its own seeded PRNG (random.Random(f"{SEED}/{base}/{n}"), so
mutant n is the same recipe on every run and can be made again alone): single byte or bit flips, several flips
in one or several files, truncation at a random offset, a burst of random bytes, and combinations — in the
stream files, the metadata and LTTng's index files, half of the flips aimed at packet headers (where the
structure is) and half anywhere. Each mutant is given to two of the four commands (oom-paths, oom-paths --json,
summary, summary --json; rotating, so each command sees half of them; the two side by side) with a timeout, and
must either
  - succeed (status 0, output, nothing on stderr, valid JSON where asked; a flip in an event's payload leaves a
    readable trace), or
  - be unusable: status 2, one line on stderr starting "hakmem-trace: ", no Python traceback;
and both commands must agree. A timeout, a signal (Babeltrace2 aborting), a traceback or any other status fails
the test, printing the mutant's recipe (the mutant is kept). Every mutant must be classified, and each of the two
outcomes must hold at least MIN_SHARE of them (a mutation engine that only ever broke the metadata's magic, or
only ever hit payloads, would test little). The counts and the time taken are printed.

usage: test_mutants.py --lib libhakmem-trace.so --workload trace_oom_workload
"""
import collections
import json
import random
import shutil
import subprocess
import tempfile
import time

import analysistest as at

tt = at.tt
SEED = "hakmem-mutants-1"
MUTANTS = 200
COMMANDS = (("oom-paths",), ("oom-paths", "--json"), ("summary",), ("summary", "--json"))
RUN_TIMEOUT = 60
MIN_SHARE = 0.15
CAP = "48M"
METADATA_PACKET_HEADER = 37


def record_bases(args):
    """The two real traces: (name, folder holding the CTF files)."""
    bases = []
    for name, options in (("one-packet", []), ("many-packets", at.MANY_PACKETS)):
        trace, _ = at.record_workload(args, options=options, HAKMEM_MAX_MEMORY=CAP)
        folders = tt.find_traces(trace)
        tt.check(len(folders) == 1, f"{trace}: want one CTF trace, found {folders}")
        bases.append((name, folders[0]))
    return bases


def trace_files(folder):
    """The files of one CTF trace folder by role, as paths relative to it."""
    files = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    roles = {"metadata": [f for f in files if f.name == "metadata"],
             "index": [f for f in files if f.parts[0] == "index"],
             "stream": [f for f in files if f.name != "metadata" and f.parts[0] != "index"]}
    tt.check(roles["metadata"] and roles["stream"], f"{folder}: no metadata or no stream file: {files}")
    return roles


def packet_starts(folder, rel, role, size):
    """Offsets where the file's packets begin (their headers are where a flip breaks structure)."""
    if role == "metadata":
        return list(range(0, size, 4096))  # lttng-ust's metadata packets are 4 KiB
    if role == "index":
        return [0, at.INDEX_HEADER]
    starts = at.packet_offsets(folder, rel) or [0]
    return [s for s in starts if s < size] or [0]


class Recipe:
    """One mutant: a list of (file, operation, arguments), applied to a copy of the base trace."""

    def __init__(self, base, n, folder, roles):
        rng = random.Random(f"{SEED}/{base}/{n}")
        self.base, self.n, self.steps = base, n, []
        sizes = {rel: (folder / rel).stat().st_size for files in roles.values() for rel in files}

        def pick_file():
            role = rng.choices(["stream", "metadata", "index"], weights=[5, 3, 2])[0]
            if not roles[role]:
                role = "stream"
            return role, rng.choice(roles[role])

        def offset(role, rel):
            size = sizes[rel]
            if rng.random() < 0.5:  # in a packet header: magic, uuid, stream id, sizes, timestamps, counters
                start = rng.choice(packet_starts(folder, rel, role, size))
                reach = METADATA_PACKET_HEADER if role == "metadata" else 96
                return min(size - 1, start + rng.randrange(reach))
            return rng.randrange(size)

        def flip(role, rel, bit=False):
            mask = 1 << rng.randrange(8) if bit else rng.randrange(1, 256)
            self.steps.append((rel, "xor", offset(role, rel), mask))

        kind = rng.choice(["flip", "bit", "flips", "flips-files", "cut", "burst", "cut+flips", "flips+cut-other"])
        self.kind = kind
        role, rel = pick_file()
        if kind == "flip":
            flip(role, rel)
        elif kind == "bit":
            flip(role, rel, bit=True)
        elif kind == "flips":
            for _ in range(rng.randint(2, 12)):
                flip(role, rel)
        elif kind == "flips-files":
            for _ in range(rng.randint(2, 6)):
                flip(*pick_file())
        elif kind == "cut":
            self.steps.append((rel, "cut", rng.randrange(sizes[rel])))
        elif kind == "burst":
            at_ = offset(role, rel)
            length = rng.randint(4, 64)
            self.steps.append((rel, "write", at_, bytes(rng.randrange(256) for _ in range(length))))
        elif kind == "cut+flips":
            for _ in range(rng.randint(1, 4)):
                flip(role, rel)
            self.steps.append((rel, "cut", rng.randrange(sizes[rel])))
        else:  # flips in one file, a cut in another
            for _ in range(rng.randint(1, 4)):
                flip(role, rel)
            role2, rel2 = pick_file()
            self.steps.append((rel2, "cut", rng.randrange(sizes[rel2])))

    def files(self):
        return {rel for rel, *_ in self.steps}

    def apply(self, folder):
        for rel, op, *a in self.steps:
            f = folder / rel
            data = bytearray(f.read_bytes())
            if op == "xor":
                if a[0] < len(data):  # an earlier cut may have removed it
                    data[a[0]] ^= a[1]
            elif op == "write":
                data[a[0]:a[0] + len(a[1])] = a[1][:max(0, len(data) - a[0])]
            else:
                del data[a[0]:]
            f.write_bytes(bytes(data))

    def __str__(self):
        def step(rel, op, *a):
            if op == "xor":
                return f"{rel}[{a[0]}] ^= {a[1]:#04x}"
            if op == "write":
                return f"{rel}[{a[0]}:{a[0] + len(a[1])}] = {a[1].hex()}"
            return f"{rel} cut to {a[0]} bytes"
        return f"mutant {self.base}/{self.n} ({self.kind}): " + "; ".join(step(*s) for s in self.steps)


def outcome(cmd, rc, out, err):
    """"readable", "unusable", or why the run is neither."""
    if rc == 0:
        if err.strip():
            return f"exit 0 but stderr: {err[-1500:]!r}"
        if not out.strip():
            return "exit 0 without output"
        if "--json" in cmd:
            try:
                doc = json.loads(out)
            except ValueError as e:
                return f"exit 0 but the output is not JSON ({e})"
            want = {"ooms", "summary", "lost_events"} if cmd[0] == "oom-paths" else {"events", "lost_events"}
            if not isinstance(doc, dict) or not want <= doc.keys():
                return f"exit 0 but the JSON lacks {sorted(want - set(doc) if isinstance(doc, dict) else want)}"
        return "readable"
    lines = err.splitlines()
    if "Traceback" in err:
        return f"a Python traceback (exit {rc}):\n{err[-3000:]}"
    if rc != 2:
        return f"exit status {rc} (a negative one is a signal), stderr: {err[-1500:]!r}"
    if len(lines) != 1 or not lines[0].startswith("hakmem-trace: "):
        return f"exit 2 but stderr is not one 'hakmem-trace: ' line: {err[-1500:]!r}"
    return "unusable"


# What the unusable mutants were told, by the sentence's kind (printed, not asserted: a mutant's fate depends on
# the recorded bytes).
SENTENCES = (("babeltrace2 crashed", "Babeltrace2 aborted (caught)"), ("babeltrace2 cannot read", "bt2 error"),
             ("its metadata", "metadata check"), ("does not match the hakmem event catalogue", "catalogue"),
             ("no hakmem events", "no hakmem events"), ("lack the vpid/vtid context", "no context"),
             ("no LTTng trace", "no trace"))


def sentence_kind(err):
    return next((kind for key, kind in SENTENCES if key in err), "other")


def run_pair(cmds, target):
    """[(status, stdout, stderr, seconds)] of hakmem-trace running each of cmds on target, side by side (two cores:
    half the wall time); status None when a run did not finish within RUN_TIMEOUT. Output goes to files, so
    neither run waits on a pipe while the other is read."""
    runs = []
    for cmd in cmds:
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        argv = [tt.PYTHON, str(tt.HAKMEM_TRACE), *cmd, str(target)]
        runs.append((subprocess.Popen(argv, stdout=out, stderr=err), out, err, time.monotonic()))
    deadline = time.monotonic() + RUN_TIMEOUT
    results = []
    for proc, out, err, began in runs:
        try:
            rc = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        took = time.monotonic() - began
        out.seek(0)
        err.seek(0)
        results.append((rc, out.read().decode(errors="replace"), err.read().decode(errors="replace"), took))
        out.close()
        err.close()
    return results


def main():
    args = tt.arguments(workload="trace_oom_workload")
    work = tt.workdir()
    bases = record_bases(args)
    for name, folder in bases:
        for cmd, (rc, out, err, _) in zip(COMMANDS, run_pair(COMMANDS[:2], folder) + run_pair(COMMANDS[2:], folder)):
            tt.check(outcome(cmd, rc, out, err) == "readable",
                     f"the intact trace {name}: hakmem-trace {' '.join(cmd)}: {outcome(cmd, rc, out, err)}")
    tt.ok(f"both intact traces read by every command ({', '.join(n for n, _ in bases)})")

    start = time.monotonic()
    counts = collections.Counter()
    told = collections.Counter()
    by_kind = collections.defaultdict(collections.Counter)
    slowest = (0.0, None)
    n = 0
    for name, folder in bases:
        roles = trace_files(folder)
        mutant = work / "mutant" / name
        shutil.copytree(folder, mutant)
        for i in range(MUTANTS // len(bases)):
            recipe = Recipe(name, i, folder, roles)
            recipe.apply(mutant)
            seen = {}
            cmds = (COMMANDS[n % 4], COMMANDS[(n + 1) % 4])
            for cmd, (rc, out, err, took) in zip(cmds, run_pair(cmds, mutant)):
                if took > slowest[0]:
                    slowest = (took, f"{recipe}, {' '.join(cmd)}")
                what = f"{recipe}: hakmem-trace {' '.join(cmd)}"
                if rc is None:
                    keep(mutant, work, recipe)
                    tt.fail(f"{what}: no answer within {RUN_TIMEOUT} s (a hang)")
                got = outcome(cmd, rc, out, err)
                if got not in ("readable", "unusable"):
                    keep(mutant, work, recipe)
                    tt.fail(f"{what}: {got}")
                seen[cmd] = got
                if got == "unusable":
                    told[sentence_kind(err)] += 1
            if len(set(seen.values())) != 1:
                keep(mutant, work, recipe)
                tt.fail(f"{recipe}: the commands disagree: {seen}")
            result = next(iter(seen.values()))
            counts[result] += 1
            by_kind[recipe.kind][result] += 1
            for rel in recipe.files():  # back to the intact trace for the next mutant
                shutil.copyfile(folder / rel, mutant / rel)
            n += 1
    took = time.monotonic() - start
    classified = counts["readable"] + counts["unusable"]
    tt.check(classified == MUTANTS, f"{classified} of {MUTANTS} mutants classified")
    kinds = ", ".join(f"{k} {c['readable']}/{c['unusable']}" for k, c in sorted(by_kind.items()))
    print(f"mutants: {MUTANTS}, readable {counts['readable']}, unusable {counts['unusable']} in {took:.0f} s "
          f"(readable/unusable by kind: {kinds}; slowest run {slowest[0]:.1f} s: {slowest[1]})", flush=True)
    print("unusable runs by sentence: " + ", ".join(f"{k} {c}" for k, c in told.most_common()), flush=True)
    for result in ("readable", "unusable"):
        tt.check(counts[result] >= MIN_SHARE * MUTANTS,
                 f"only {counts[result]} of {MUTANTS} mutants were {result} (want at least {MIN_SHARE:.0%}): the "
                 "mutations no longer exercise both outcomes")
    tt.ok(f"{MUTANTS} mutants classified: {counts['readable']} readable, {counts['unusable']} unusable, none hung, "
          "crashed or raised")
    print("test_mutants: passed")


def keep(mutant, work, recipe):
    """The failing mutant, kept under the work folder (which a failing test keeps)."""
    dest = work / "failed" / f"{recipe.base}-{recipe.n}"
    shutil.copytree(mutant, dest)
    print(f"(the failing mutant: {dest}; {recipe})", flush=True)


if __name__ == "__main__":
    main()
