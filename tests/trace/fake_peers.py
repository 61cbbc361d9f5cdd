#!/usr/bin/python3
"""fake_peers.py — what a live reader can meet instead of a working relay, each on 127.0.0.1 only: a peer that
accepts and never answers (silent), one that accepts and closes (close), and a proxy to a real relay's live port
that cuts every connection after BYTES bytes from the relay (cut). Runs as a process of its own, so that a reader
blocked in Babeltrace2 (which holds the interpreter while it waits) cannot stall it. Prints its port, then serves
until killed.

usage: fake_peers.py silent | close | cut TARGET_PORT BYTES
"""
import select
import socket
import sys

HOST = "127.0.0.1"


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, 0))
    s.listen(16)
    print(s.getsockname()[1], flush=True)
    return s


def serve_silent(s):
    held = []
    while True:
        held.append(s.accept()[0])  # kept open, never answered


def serve_close(s):
    while True:
        c = s.accept()[0]
        c.close()


def serve_cut(s, target_port, limit):
    """Every connection forwarded both ways until the relay has sent `limit` bytes on it, then both ends closed."""
    pairs = {}  # socket -> (its peer, whether it is the relay's side, [bytes the relay sent on this connection])
    while True:
        ready = select.select([s, *pairs], [], [])[0]
        for r in ready:
            if r is s:
                client = s.accept()[0]
                relay = socket.create_connection((HOST, target_port))
                sent = [0]
                pairs[client] = (relay, False, sent)
                pairs[relay] = (client, True, sent)
                continue
            if r not in pairs:
                continue
            peer, from_relay, sent = pairs[r]
            try:
                data = r.recv(65536)
            except OSError:
                data = b""
            if from_relay and data:
                data = data[:max(limit - sent[0], 0)]
                sent[0] += len(data)
            try:
                if data:
                    peer.sendall(data)
            except OSError:
                data = b""
            if not data or sent[0] >= limit:
                for x in (r, peer):
                    pairs.pop(x, None)
                    x.close()


def main():
    mode = sys.argv[1]
    s = listener()
    if mode == "silent":
        serve_silent(s)
    elif mode == "close":
        serve_close(s)
    elif mode == "cut":
        serve_cut(s, int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
