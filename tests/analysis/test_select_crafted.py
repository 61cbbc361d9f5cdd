#!/usr/bin/python3
"""test_select_crafted.py — which group of a relay's tree `heap` and `timeline` read (trace_input.select, on
trace_input.groups), on a hand-made tree whose trace folders hold only a text CTF metadata file with an env block:
nothing recorded, no root, no stream read (every case below is decided from the metadata alone).

The tree: OUTPUT/alpha/s1-DATE (host alpha, session s1), OUTPUT/beta/s1-DATE and OUTPUT/beta/s2-DATE (host beta,
sessions s1 and s2), and OUTPUT/anon/t (a trace without an env: host and session "?"). Checked:
  select      --host alone where the host has one session; --host and --session; --session alone where one host
              has it; the name is the group's own folder (the path given on a folder of one group)
  refused     no option on the tree; a host with several sessions; a session on several hosts; a host or session
              that names no group (also on a folder of one group): TraceError, one line, listing each group as
              the --host H --session S that selects it
  cli         `heap` and `timeline` say the same: exit status 2 and one line on stderr

usage: test_select_crafted.py
"""
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "analysis"))
from hakmem import trace_input  # noqa: E402
from hakmem.trace_input import TraceError  # noqa: E402
import analysistest as at  # noqa: E402

tt = at.tt
METADATA = """/* CTF 1.8 */
trace {{ major = 1; minor = 8; byte_order = le; }};
env {{
\tdomain = "ust";
{env}}};
"""
CHOICE = {("alpha", "s1"): "--host alpha --session s1", ("beta", "s1"): "--host beta --session s1",
          ("beta", "s2"): "--host beta --session s2", (None, None): "--host '?' --session '?'"}


def trace(folder, host=None, session=None, created="20250101T000000+0000"):
    folder.mkdir(parents=True)
    env = "" if host is None else (f'\thostname = "{host}";\n\ttrace_name = "{session}";\n'
                                   f'\ttrace_creation_datetime = "{created}";\n')
    (folder / "metadata").write_text(METADATA.format(env=env))


def refused(what, path, host=None, session=None, want=()):
    """select's TraceError for path, host and session: one line holding every choice in want."""
    try:
        got = trace_input.select(str(path), host, session)
    except TraceError as e:
        text = str(e)
        tt.check("\n" not in text, f"{what}: not one line: {text!r}")
        for key in want:
            tt.check(CHOICE[key] in text, f"{what}: {CHOICE[key]!r} not listed in {text!r}")
        return text
    tt.fail(f"{what}: selected {got[0]} ({got[1].label}), want it refused")


def main():
    work = tt.workdir()
    out = work / "OUTPUT"
    trace(out / "alpha" / "s1-20250101-000000" / "ust" / "uid" / "0" / "64-bit", "alpha", "s1")
    for s in ("s1", "s2"):
        trace(out / "beta" / f"{s}-20250101-000000" / "ust" / "uid" / "0" / "64-bit", "beta", s)
    trace(out / "anon" / "t")
    every = list(CHOICE)

    name, g = trace_input.select(str(out), "alpha")
    tt.check((g.host, g.session, name) == ("alpha", "s1", str(out / "alpha")),
             f"--host alpha: {g.label}, named {name}")
    name, g = trace_input.select(str(out), "beta", "s2")
    tt.check((g.host, g.session, name) == ("beta", "s2", str(out / "beta" / "s2-20250101-000000")),
             f"--host beta --session s2: {g.label}, named {name}")
    name, g = trace_input.select(str(out), session="s2")
    tt.check((g.host, g.session) == ("beta", "s2"), f"--session s2: {g.label}")
    name, g = trace_input.select(str(out), "?", "?")
    tt.check((g.host, g.session, name) == (None, None, str(out / "anon")), f"--host '?' --session '?': {g.label}")
    alone = str(out / "alpha") + "/"  # a folder of one group: named as given, options or not
    for host, session in ((None, None), ("alpha", None), ("alpha", "s1"), (None, "s1")):
        name, g = trace_input.select(alone, host, session)
        tt.check((g.host, name) == ("alpha", alone), f"{alone} with {host}, {session}: {g.label}, named {name}")
    tt.ok("--host and --session select one group, named by its own folder (the path given for a lone group)")

    text = refused("no option", out, want=every)
    tt.check(text.startswith(f"{out} holds the traces of 4 hosts or sessions"), f"no option: {text!r}")
    refused("--host beta", out, "beta", want=[("beta", "s1"), ("beta", "s2")])
    refused("--session s1", out, session="s1", want=[("alpha", "s1"), ("beta", "s1")])
    for host, session in (("gamma", None), ("alpha", "s2"), (None, "s3")):
        text = refused(f"{host} {session}", out, host, session, want=every)
        tt.check(" holds no traces of " in text, f"{host} {session}: {text!r}")
    for host, session in (("beta", None), ("alpha", "s2")):
        refused(f"{alone} with {host} {session}", alone, host, session, want=[("alpha", "s1")])
    tt.ok("refused in one line listing the choices: no option on a tree, several groups, no group")

    html = work / "t.html"
    for argv in (["heap", out], ["heap", "--json", "--host", "gamma", out], ["timeline", "-o", html, out],
                 ["timeline", "--host", "beta", "-o", html, out],
                 ["timeline", "--host", "beta", "--session", "s3", "-o", html, out]):
        p = subprocess.run([tt.PYTHON, str(tt.HAKMEM_TRACE), *map(str, argv)], capture_output=True, text=True,
                           timeout=120)
        what = " ".join(map(str, argv))
        tt.check(p.returncode == 2 and not p.stdout and len(p.stderr.splitlines()) == 1
                 and "--host beta --session s2" in p.stderr,
                 f"{what}: exit {p.returncode}, stdout {p.stdout!r}, stderr {p.stderr!r}")
    tt.check(not html.exists(), "timeline wrote a picture of a refused tree")
    tt.ok("heap and timeline: exit status 2 and that one line")
    print("test_select_crafted: passed")


if __name__ == "__main__":
    main()
