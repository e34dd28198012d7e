# SPDX-License-Identifier: MIT
"""A small PCP (RFC 6887) MAP server for the NAT lab's tests of keyway's PCP
client (tests/natlab/test_pcp.sh). Written from the RFC, independently of
keyway's codec, so each side checks the other.

    pcp_server.py LISTEN_IP EXTERNAL_IP MODE_FILE LOG_FILE

It answers on LISTEN_IP:5351. Before each request it reads MODE_FILE (one
line), so a test can change its behaviour between runs:

    grant LIFETIME     grant every MAP, lifetime min(asked, LIFETIME); the
                       external port is the suggested one, else 40000+
    grant LIFETIME reboot
                       the same, with an epoch time of 5 s (as after a
                       restart that lost every mapping)
    error CODE         answer every MAP with result CODE (lifetime 30)
    silent             answer nothing
    badnonce LIFETIME  first an answer with another nonce (port 1111),
                       then the right grant
    unsupp             answer UNSUPP_VERSION, header only

A delete (lifetime 0) is always answered SUCCESS with lifetime 0 unless
silent. A NAT-PMP request (version 0) gets a PCP UNSUPP_VERSION answer
(RFC 6887 appendix A), which libnatpmp reads as "unsupported version".
Each request is logged to LOG_FILE as one JSON line. It does not forward
anything: a grant is only words.
"""
import json
import socket
import struct
import sys
import time

listen_ip, external_ip, mode_file, log_file = sys.argv[1:5]
epoch_start = time.monotonic()
next_port = 40000
granted = {}  # (client, internal port) -> external port


def mode():
    try:
        with open(mode_file) as f:
            parts = f.read().split()
    except OSError:
        parts = []
    return parts or ["silent"]


def log(entry):
    entry["t"] = round(time.monotonic() - epoch_start, 3)
    with open(log_file, "a") as f:
        f.write(json.dumps(entry) + "\n")


def header(opcode, result, lifetime):
    epoch = int(time.monotonic() - epoch_start) + 1000
    if "reboot" in mode():
        epoch = 5
    return struct.pack("!BBBBII12x", 2, 0x80 | opcode, 0, result, lifetime, epoch)


def v4mapped(ip):
    return b"\0" * 10 + b"\xff\xff" + socket.inet_aton(ip)


def map_answer(result, lifetime, nonce, proto, iport, eport, eip):
    return (header(1, result, lifetime) + nonce +
            struct.pack("!B3xHH", proto, iport, eport) + v4mapped(eip))


s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((listen_ip, 5351))
print("ready", flush=True)
while True:
    data, src = s.recvfrom(2048)
    m = mode()
    if len(data) >= 2 and data[0] == 0:
        log({"natpmp": True, "from": src[0]})
        if m[0] != "silent":
            s.sendto(header(data[1] & 0x7f, 1, 0), src)
        continue
    if len(data) < 24 or data[0] != 2 or data[1] & 0x80:
        log({"bad": data.hex(), "from": src[0]})
        continue
    opcode = data[1] & 0x7f
    lifetime = struct.unpack("!I", data[4:8])[0]
    client = data[8:24]
    client_ip = socket.inet_ntoa(client[12:]) if client[:12] == v4mapped("0.0.0.0")[:12] else client.hex()
    if opcode != 1 or len(data) < 60:
        log({"op": opcode, "len": len(data), "from": src[0]})
        if m[0] != "silent":
            s.sendto(header(opcode, 4, 30), src)  # UNSUPP_OPCODE
        continue
    nonce = data[24:36]
    proto = data[36]
    iport, sport = struct.unpack("!HH", data[40:44])
    sip = socket.inet_ntoa(data[56:60]) if data[44:56] == v4mapped("0.0.0.0")[:12] else data[44:60].hex()
    log({"op": 1, "lifetime": lifetime, "nonce": nonce.hex(), "proto": proto,
         "internal_port": iport, "suggested_port": sport, "suggested_ip": sip,
         "client": client_ip, "from": src[0], "src_port": src[1],
         "len": len(data), "mode": " ".join(m)})
    if m[0] == "silent":
        continue
    if client_ip != src[0]:
        s.sendto(map_answer(12, 30, nonce, proto, iport, 0, "0.0.0.0"), src)
        continue
    if lifetime == 0:
        granted.pop((client_ip, iport), None)
        s.sendto(map_answer(0, 0, nonce, proto, iport, 0, "0.0.0.0"), src)
        continue
    if m[0] == "error":
        s.sendto(map_answer(int(m[1]), 30, nonce, proto, iport, 0, "0.0.0.0"), src)
        continue
    if m[0] == "unsupp":
        s.sendto(header(1, 1, 0), src)
        continue
    limit = int(m[1]) if len(m) > 1 else 7200
    key = (client_ip, iport)
    if key not in granted:
        if sport:
            granted[key] = sport
        else:
            granted[key] = next_port
            next_port += 1
    if m[0] == "badnonce":
        other = bytes(b ^ 0x55 for b in nonce)
        s.sendto(map_answer(0, limit, other, proto, iport, 1111, external_ip), src)
    s.sendto(map_answer(0, min(lifetime, limit), nonce, proto, iport,
                        granted[key], external_ip), src)
