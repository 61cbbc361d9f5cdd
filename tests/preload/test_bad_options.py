#!/usr/bin/python3
"""test_bad_options.py — bad HAKMEM_* values under LD_PRELOAD: one warning line, exit status 0, the default in effect.

For every option and every kind of bad value (letters, negative, too large for 64 bits, exponent notation, empty,
trailing junk or blank, a newline), two real programs run with LD_PRELOAD=libhakmem.so and only that variable
set: /bin/true, and option_probe (which reports which settings took effect). Each must exit 0 with exactly one
line on stderr,
    hakmem: warning: NAME="VALUE" is not valid; using the default: DEFAULT
(the value quoted, control characters escaped), and the probe must show the default at work:
  - HAKMEM_MAX_MEMORY (default no cap): 256 MiB of large blocks and blocks of every class, all allocated (a cap
    read from a prefix of the value, or from a wrapped or truncated number, would refuse some);
  - HAKMEM_FAULT_SUPERSLAB (default off): the same, all allocated (any fault injection refuses some);
  - HAKMEM_TINY_MID_REFILL_SIMPLE (default 0): a refill adopted a slab an exited thread left (1 skips that);
  - HAKMEM_STATS (default 0): no counters printed at exit.
Controls: a good non-default value of each makes the probe show it (and prints no warning), so the probe can tell.

usage: test_bad_options.py LIBHAKMEM OPTION_PROBE
"""
import os
import re
import subprocess
import sys

OPTIONS = ("HAKMEM_TINY_MID_REFILL_SIMPLE", "HAKMEM_MAX_MEMORY", "HAKMEM_FAULT_SUPERSLAB", "HAKMEM_STATS")
DEFAULT = {"HAKMEM_TINY_MID_REFILL_SIMPLE": "0", "HAKMEM_MAX_MEMORY": "0 (no cap)", "HAKMEM_FAULT_SUPERSLAB": "off",
           "HAKMEM_STATS": "0"}
HUGE = "99999999999999999999999"
# (value, how the warning shows it); None: the value in quotes as it is.
BAD = {
    "HAKMEM_MAX_MEMORY": [("abc", None), ("-5", None), ("-1M", None), (HUGE, None), ("18446744073709551616", None),
                          ("17179869184G", None), ("1e30", None), ("16E+", None), ("", None), ("64Mjunk", None),
                          ("64M ", None), (" 64M", None), ("0x10", None), ("1.5G", None),
                          ("64M\n", '"64M\\x0a"')],
    "HAKMEM_FAULT_SUPERSLAB": [("every:0", None), ("every:-1", None), (f"every:{HUGE}", None), ("prob:1.5", None),
                               ("prob:1.0000000000001", None), ("prob:1e30", None), (f"prob:0.5:{HUGE}", None),
                               ("prob:0.5:abc", None), ("every:2/61", None), (f"every:2/{HUGE}", None),
                               ("every:3 ", None), ("sometimes", None), ("", None), ("every:1\tx", '"every:1\\x09x"')],
    "HAKMEM_TINY_MID_REFILL_SIMPLE": [("2", None), ("yes?", None), ("-1", None), (HUGE, None), ("1e30", None),
                                      ("", None), ("1 ", None), ("01", None)],
    "HAKMEM_STATS": [("2", None), ("yes?", None), ("-1", None), (HUGE, None), ("", None), ("1 ", None),
                     ('1"', '"1\\""')],
}
GOOD = {"HAKMEM_MAX_MEMORY": "64M", "HAKMEM_FAULT_SUPERSLAB": "every:3", "HAKMEM_TINY_MID_REFILL_SIMPLE": "1",
        "HAKMEM_STATS": "1"}
PROBE_LINE = re.compile(r"nulls (\d+) of (\d+) adopted4 (\d+|-)\n\Z")


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def run(argv, lib, settings):
    """argv with LD_PRELOAD=lib and only the given HAKMEM_* settings: (status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_") and k != "LD_PRELOAD"}
    env.update(settings, LD_PRELOAD=lib, LC_ALL="C")
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def probe(lib, prog, settings, what):
    """option_probe's report (nulls, total, adopted4 or None) and its stderr."""
    rc, out, err = run([prog], lib, settings)
    check(rc == 0, f"{what}: option_probe exited with status {rc}; stderr: {err[-1000:]!r}")
    m = PROBE_LINE.match(out)
    check(m, f"{what}: option_probe printed {out!r}")
    return (int(m[1]), int(m[2]), None if m[3] == "-" else int(m[3])), err


def default_in_effect(name, report, err, what):
    nulls, total, adopted = report
    if name in ("HAKMEM_MAX_MEMORY", "HAKMEM_FAULT_SUPERSLAB"):
        check(nulls == 0, f"{what}: {nulls} of {total} allocations failed: a cap or a fault is in effect")
    if name == "HAKMEM_TINY_MID_REFILL_SIMPLE":
        check(adopted is not None and adopted > 0, f"{what}: no slab adopted ({adopted}): mid-simple is on")
    check("hakmem stats:" not in err, f"{what}: counters printed: HAKMEM_STATS is on")


def main():
    if len(sys.argv) != 3:
        fail("usage: test_bad_options.py LIBHAKMEM OPTION_PROBE")
    lib, prog = (os.path.abspath(a) for a in sys.argv[1:])
    for f in (lib, prog, "/bin/true"):
        check(os.path.isfile(f), f"{f} does not exist")

    # Nothing set: no output on stderr, and the probe's baseline.
    rc, _, err = run(["/bin/true"], lib, {})
    check(rc == 0 and err == "", f"/bin/true with no HAKMEM_* set: status {rc}, stderr {err!r}")
    base, err = probe(lib, prog, {}, "no HAKMEM_* set")
    check(err == "", f"the probe with no HAKMEM_* set wrote to stderr: {err!r}")
    default_in_effect("HAKMEM_MAX_MEMORY", base, err, "no HAKMEM_* set")
    default_in_effect("HAKMEM_TINY_MID_REFILL_SIMPLE", base, err, "no HAKMEM_* set")

    # Controls: each good non-default value shows in the probe, without a warning.
    for name, value in GOOD.items():
        what = f"{name}={value!r} (good)"
        report, err = probe(lib, prog, {name: value}, what)
        check("warning" not in err, f"{what}: a warning: {err!r}")
        nulls, _, adopted = report
        if name in ("HAKMEM_MAX_MEMORY", "HAKMEM_FAULT_SUPERSLAB"):
            check(nulls > 0, f"{what}: every allocation succeeded: the probe cannot see this option")
        elif name == "HAKMEM_TINY_MID_REFILL_SIMPLE":
            check(adopted == 0, f"{what}: {adopted} slab(s) adopted: the probe cannot see this option")
        else:
            check(err.startswith("hakmem stats: allocs "), f"{what}: no counters printed: {err[:200]!r}")
    print(f"ok: the probe sees each good value take effect ({', '.join(f'{k}={v}' for k, v in GOOD.items())})")

    cases = 0
    for name, values in BAD.items():
        for value, shown in values:
            shown = shown or f'"{value}"'
            want = f"hakmem: warning: {name}={shown} is not valid; using the default: {DEFAULT[name]}\n"
            what = f"{name}={value!r}"
            rc, out, err = run(["/bin/true"], lib, {name: value})
            check(rc == 0, f"{what}: /bin/true exited with status {rc}; stderr: {err!r}")
            check(err == want, f"{what}: /bin/true's stderr\n  got  {err!r}\n  want {want!r}")
            report, err = probe(lib, prog, {name: value}, what)
            check(err == want, f"{what}: option_probe's stderr\n  got  {err!r}\n  want {want!r}")
            default_in_effect(name, report, err, what)
            cases += 1
    print(f"ok: {cases} bad values, each one warning line, exit status 0 and the default in effect")

    # All four bad at once: four lines, in the order of the option table, each option at its default.
    settings = {name: BAD[name][0][0] for name in OPTIONS}
    want = "".join(f"hakmem: warning: {n}=\"{settings[n]}\" is not valid; using the default: {DEFAULT[n]}\n"
                   for n in OPTIONS)
    report, err = probe(lib, prog, settings, "all four bad")
    check(err == want, f"all four bad: stderr\n  got  {err!r}\n  want {want!r}")
    for name in OPTIONS:
        default_in_effect(name, report, err, "all four bad")
    print("ok: four bad values at once: four lines, every default in effect")
    print("test_bad_options: passed")


if __name__ == "__main__":
    main()
