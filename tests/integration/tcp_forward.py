#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TCP peers for test_cli_tcp.sh (loopback only).

server PORTFILE: a TCP service. Per connection: sends the banner b"hi\\n"
  at once (a service that speaks first), reads until the client's
  half-close, then answers "<sha256 of what it got> <n>\\n" followed by n
  random bytes (n from the client's first line "n=N\\n") and
  "<sha256 of those bytes>\\n"... as the last 65 bytes, then closes.
clients PORT K SIZE [SLOW]: K concurrent connections, each sending SIZE
  random bytes, half-closing, and checking the answer (hashes both ways).
  SLOW: the first client reads nothing for SLOW seconds first.
banner PORT: connects, expects the banner without sending anything.
"""
import hashlib, os, socket, sys, threading, time

def recv_all(s):
    out = bytearray()
    while True:
        b = s.recv(1 << 16)
        if not b:
            return bytes(out)
        out += b

def serve(conn):
    with conn:
        conn.sendall(b"hi\n")
        data = recv_all(conn)
        head, _, rest = data.partition(b"\n")
        n = int(head[2:]) if head.startswith(b"n=") else 0
        got = hashlib.sha256(data).hexdigest().encode()
        reply = os.urandom(n)
        conn.sendall(got + b" %d\n" % n + reply + hashlib.sha256(reply).hexdigest().encode())

def server(portfile):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()

def client(port, size, slow, results, i):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        body = b"n=%d\n" % size + os.urandom(size)
        def send():
            s.sendall(body)
            s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=send)
        t.start()
        if slow:
            time.sleep(slow)
        data = recv_all(s)
        t.join()
        s.close()
        assert data.startswith(b"hi\n"), data[:20]
        data = data[3:]
        line, _, rest = data.partition(b"\n")
        h, n = line.split()
        assert h.decode() == hashlib.sha256(body).hexdigest(), "client->server hash"
        n = int(n)
        reply, tail = rest[:n], rest[n:]
        assert len(reply) == n, ("short reply", len(reply), n)
        assert tail.decode() == hashlib.sha256(reply).hexdigest(), "server->client hash"
        results[i] = True
    except Exception as e:
        results[i] = repr(e)

def clients(port, k, size, slow):
    res = [None] * k
    th = [threading.Thread(target=client, args=(port, size, slow if i == 0 else 0, res, i)) for i in range(k)]
    for t in th: t.start()
    for t in th: t.join()
    bad = [r for r in res if r is not True]
    if bad:
        print("failures:", bad)
        sys.exit(1)

def banner(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    b = s.recv(3)
    sys.exit(0 if b == b"hi\n" else 1)

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "server":
        server(sys.argv[2])
    elif cmd == "clients":
        clients(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                float(sys.argv[5]) if len(sys.argv) > 5 else 0)
    elif cmd == "banner":
        banner(int(sys.argv[2]))
