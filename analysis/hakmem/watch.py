"""`hakmem-trace watch URL`: every OOM of a live session explained as it happens, read from an lttng-relayd's live
port with Babeltrace2's source.ctf.lttng-live, as `oom-paths` explains it (text, or one JSON object per line).

One graph per session followed (lttng-live -> the native core's sink), driven a step at a time, so that the OOMs
the core has listed are taken (native.Core.take_ooms) and printed after every step, a live timer after they were
written. A relay is asked what it serves (the "sessions" query) in a forked child with a deadline: Babeltrace2
waits forever on a peer that accepts a connection and never answers, and it holds the interpreter while it waits,
so no thread of ours could give up for it.

What ends a watch: SIGINT or SIGTERM (status 0); the session destroyed (0; with --all the others are followed and
new ones awaited); a URL that is no relay, a session the relay does not have, a session another reader is attached
to (the relay serves one live reader per session; --all waits for it) or a relay that keeps closing the connection
mid-stream (one sentence, status 2). A relay that goes away is said and reconnected to every second.
"""

import json
import os
import re
import select
import signal
import sys
import time

DEFAULT_PORT = 5344           # lttng-relayd's live port
PROBE_TIMEOUT_S = 5.0         # a relay answers its sessions query in milliseconds
RETRY_S = 1.0                 # reconnecting, and looking for new sessions with --all
IDLE_S = 0.05                 # between steps when no session had anything new (a live timer is 200 ms or more)
BROKEN_LIMIT = 3              # connections closed mid-stream in a row before the relay is given up on
STEADY_S = 10.0               # a connection that lasted this long was not broken
URL_RE = re.compile(r"^net://(?P<host>\[[^\]]+\]|[^/:]+)(?::(?P<port>\d+))?(?:/host/(?P<hostname>[^/]+)"
                    r"/(?P<session>[^/]+))?/?$")


class WatchError(Exception):
    """Input watch cannot follow: one sentence, exit status 2."""


class Stopped(BaseException):
    """SIGTERM (SIGINT comes as KeyboardInterrupt)."""


def parse_url(url):
    """(relay URL net://HOST:PORT, hostname or None, session or None)."""
    m = URL_RE.match(url)
    if not m:
        raise WatchError(f"{url} is not a relay's live URL: give net://HOST[:PORT] to list its sessions, or "
                         "net://HOST[:PORT]/host/HOSTNAME/SESSION to follow one")
    return f"net://{m['host']}:{m['port'] or DEFAULT_PORT}", m["hostname"], m["session"]


# ---- asking the relay, in a child that can be given up on ----

def probe(relay):
    """The relay's sessions, as ("ok", [{url, hostname, session, timer_us, streams, clients}]), or ("refused", why)
    (nothing listens: a relay stopped), ("broken", why) (something answered, not as a relay does), ("silent", why)
    (nothing answered in PROBE_TIMEOUT_S)."""
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        status = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops on Ctrl-C and kills us
            os.write(write_end, json.dumps(_query(relay)).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    data = b""
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                return "silent", f"nothing at {relay} answered the live protocol's handshake in {PROBE_TIMEOUT_S:g} s"
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_end)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    if not data:
        return "broken", f"asking {relay} for its sessions failed"
    kind, value = json.loads(data)
    return kind, value


def _query(relay):
    import bt2
    cls = bt2.find_plugin("ctf").source_component_classes["lttng-live"]
    try:
        found = bt2.QueryExecutor(cls, "sessions", {"url": relay}).query()
    except bt2._Error as e:
        text = str(e)
        if "Connection refused" in text:
            return "refused", f"nothing listens at {relay}"
        return "broken", f"{relay} does not answer as an LTTng relay's live port ({_cause(text)})"
    return "ok", [{"url": str(s["url"]), "hostname": str(s["target-hostname"]), "session": str(s["session-name"]),
                   "timer_us": int(s["timer-us"]), "streams": int(s["stream-count"]),
                   "clients": int(s["client-count"])} for s in found]


def _cause(text):
    """The innermost cause Babeltrace2 gives (its last line), without the component's decoration."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("CAUSED BY")]
    return lines[-1] if lines else "no reason given"


# ---- following one session ----

class Follower:
    """One session: its graph and analysis core. step() runs the graph once and returns the OOM reports taken,
    or raises Ended (the session is gone) or Broken (the connection failed)."""

    class Ended(Exception):
        pass

    class Broken(Exception):
        pass

    class Taken(Exception):
        """Another reader is attached: lttng-relayd serves a session to one live reader at a time."""

    def __init__(self, session):
        import bt2
        from . import native
        self.bt2 = bt2
        self.session = session
        self.core = native.Core()
        self.graph = bt2.Graph()
        cls = bt2.find_plugin("ctf").source_component_classes["lttng-live"]
        src = self.graph.add_component(cls, "live", {"inputs": [session["url"]],
                                                     "session-not-found-action": "end"})
        sink = self.graph.add_component(native._plugin().sink_component_classes["core"], "core",
                                        {"core": self.core.ptr})
        self.graph.connect_ports(src.output_ports["out"], sink.input_ports["in"])
        self.since = time.monotonic()
        self.attached = False     # its first step went through: the relay attached this reader to the session
        self.announced = False

    def step(self):
        """(whether the graph did anything, the new OOM reports)."""
        busy = True
        try:
            self.graph.run_once()
        except self.bt2.TryAgain:
            busy = False
        except self.bt2.Stop:
            raise self.Ended() from None
        except self.bt2._Error as e:
            if "already a viewer attached" in str(e):
                raise self.Taken() from None
            raise self.Broken(_cause(str(e))) from None
        self.attached = True
        taken = self.core.take_ooms()
        if not taken:
            return busy, []
        from . import heap, paths
        ooms, _ = paths.reports(taken["ooms"], set(taken["declared"]))
        heap.add_to_ooms(ooms, taken["aux"])
        for o in ooms:
            o["host"], o["session"] = self.session["hostname"], self.session["session"]
        return True, ooms


class Watch:
    def __init__(self, relay, hostname, session, follow_all, as_json, out=sys.stdout, err=sys.stderr):
        self.relay, self.hostname, self.session_name = relay, hostname, session
        self.follow_all, self.as_json, self.out, self.err = follow_all, as_json, out, err
        self.followers = {}       # (hostname, session) -> Follower
        self.reported = 0
        self.broken = 0
        self.taken_said = set()   # sessions said to have another reader (with --all: tried again each look)

    def say(self, text):
        print(f"hakmem-trace watch: {text}", file=self.err, flush=True)

    def wanted(self, s):
        return self.follow_all or (s["hostname"], s["session"]) == (self.hostname, self.session_name)

    def attach(self, sessions):
        for s in sessions:
            key = (s["hostname"], s["session"])
            if self.wanted(s) and key not in self.followers:
                self.followers[key] = Follower(s)

    def print_oom(self, o):
        self.reported += 1
        if self.as_json:
            print(json.dumps(o), file=self.out, flush=True)
        else:
            from . import report
            print("\n".join(report.oom_lines(o, str(o["index"]), f" on {o['host']} (session {o['session']})"))
                  + "\n", file=self.out, flush=True)

    def run(self):
        kind, sessions = probe(self.relay)
        if kind != "ok":
            raise WatchError(sessions)
        if not self.follow_all and not any(self.wanted(s) for s in sessions):
            have = ", ".join(f"{s['hostname']}/{s['session']}" for s in sessions) or "none"
            raise WatchError(f"the relay at {self.relay} has no session {self.hostname}/{self.session_name} "
                             f"(it has: {have})")
        self.attach(sessions)
        next_look = time.monotonic() + RETRY_S
        while True:
            busy = False
            for key, f in list(self.followers.items()):
                try:
                    did, ooms = f.step()
                except Follower.Ended:
                    del self.followers[key]
                    if self.session_ended(key):
                        return 0
                    continue
                except Follower.Broken as e:
                    del self.followers[key]
                    self.connection_failed(f, str(e))
                    continue
                except Follower.Taken:
                    del self.followers[key]
                    self.another_reader(key)
                    continue
                if f.attached and not f.announced:
                    f.announced = True
                    self.taken_said.discard(key)
                    self.say(f"following session {key[0]}/{key[1]} at {self.relay}")
                busy = busy or did
                for o in ooms:
                    self.print_oom(o)
            now = time.monotonic()
            if now >= next_look and (self.follow_all or not self.followers):
                next_look = now + RETRY_S
                self.look_again()
            if not busy:
                time.sleep(IDLE_S)

    def session_ended(self, key):
        """A session's stream ended: destroyed (said; True when that ends the watch), or the relay went away with
        it (reconnected to), or still served (followed again)."""
        kind, sessions = probe(self.relay)
        if kind != "ok":
            self.reconnect()
            return False
        if any((s["hostname"], s["session"]) == key for s in sessions):
            self.attach(sessions)
            return False
        self.say(f"session {key[0]}/{key[1]} was destroyed" + ("; waiting for others" if self.follow_all else ""))
        return not self.follow_all

    def another_reader(self, key):
        what = f"another reader is attached to session {key[0]}/{key[1]} at {self.relay}"
        if not self.follow_all:
            raise WatchError(f"{what}, and lttng-relayd serves a session to one live reader at a time")
        if key not in self.taken_said:
            self.taken_said.add(key)
            self.say(f"{what}; following it once that reader leaves")

    def connection_failed(self, follower, why):
        kind, detail = probe(self.relay)
        if kind == "ok":
            # The relay answers, yet the stream broke: once is a hiccup, again and again is a relay (or something
            # in between) that cuts connections.
            self.broken = self.broken + 1 if time.monotonic() - follower.since < STEADY_S else 1
            if self.broken >= BROKEN_LIMIT:
                raise WatchError(f"the relay at {self.relay} closed the connection mid-stream {self.broken} times "
                                 f"in a row ({why})")
            if follower.announced:  # retries before a first step went through would only precede the sentence
                self.say(f"the connection to {self.relay} broke ({why}); reconnecting")
            return
        self.reconnect()

    def reconnect(self):
        self.say(f"the relay at {self.relay} went away; reconnecting every {RETRY_S:g} s")
        while True:
            time.sleep(RETRY_S)
            kind, sessions = probe(self.relay)
            if kind == "ok":
                self.say(f"the relay at {self.relay} is back")
                self.attach(sessions)
                if not self.followers and not self.follow_all:
                    self.say(f"waiting for session {self.hostname}/{self.session_name}")
                return

    def look_again(self):
        kind, sessions = probe(self.relay)
        if kind == "ok":
            self.attach(sessions)
        else:
            self.reconnect()


def list_sessions(relay, out=sys.stdout):
    kind, sessions = probe(relay)
    if kind != "ok":
        raise WatchError(sessions)
    if not sessions:
        print(f"the relay at {relay} serves no session now", file=out)
    for s in sessions:
        print(f"{s['url']}  (live timer {s['timer_us'] / 1000:g} ms, {s['streams']} stream(s), {s['clients']} "
              "reader(s))", file=out)
    return 0


def watch(args):
    relay, hostname, session = parse_url(args.url)
    if session is None and not args.all:
        return list_sessions(relay)
    if session is not None and args.all:
        raise WatchError("--all follows every session of a relay: give net://HOST[:PORT] with it, not a session")
    w = Watch(relay, hostname, session, args.all, args.json)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return w.run()
    except (KeyboardInterrupt, Stopped):
        w.say(f"stopped; {w.reported} OOM(s) reported")
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(signum, frame):
    raise Stopped()


def add_parser(sub):
    p = sub.add_parser("watch", help="explain every OOM of a live session as it happens, from an lttng-relayd "
                                     "(net://HOST lists its sessions)")
    p.add_argument("--json", action="store_true", help="one JSON object per OOM and line (oom-paths' OOM objects, "
                                                       "with host and session)")
    p.add_argument("--all", action="store_true", help="follow every session of the relay, and each new one")
    p.add_argument("url", metavar="URL", help="net://HOST[:PORT] or net://HOST[:PORT]/host/HOSTNAME/SESSION "
                                              f"(PORT: the relay's live port, {DEFAULT_PORT} by default)")
    p.set_defaults(func=watch)
