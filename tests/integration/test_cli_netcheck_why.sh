#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# netcheck says why a relay did not answer: its certificate is not trusted,
# the TCP connection is refused, or no answer in time (a listener that
# never speaks TLS); its JSON gives the reason per relay and null for what
# was not measured, with "probed" saying what was asked. Other commands
# say "relay X: certificate not trusted" at the default verbosity.
. "$(dirname "$0")/cli_lib.sh"
RELAY=$BUILD/keyway-relay
"$RELAY" --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0 --cert-out "$WORK/ca.pem" 2>"$WORK/relay.log" &
PIDS+=($!)
for _ in $(seq 100); do grep -q 'relay.url' "$WORK/relay.log" && break; sleep 0.05; done
url=$(sed -n 's/.* relay.url url=\([^ ]*\).*/\1/p' "$WORK/relay.log")
python3 - "$WORK/silent" <<'PY' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
conns = []
while True:
    c, _ = s.accept(); conns.append(c)  # accepts, never answers
PY
PIDS+=($!)
wait_file "$WORK/silent" 10 || bad "silent listener"
silent="https://127.0.0.1:$(cat "$WORK/silent")"
refused="https://127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
N=(--ephemeral --bind 127.0.0.1:0 --timeout 2 --relay "$url" --relay "$refused" --relay "$silent")

set +e
timeout 30 "$KW" netcheck "${N[@]}" >"$WORK/nc.txt" 2>"$WORK/nc.err"
timeout 30 "$KW" netcheck --json "${N[@]}" >"$WORK/nc.json" 2>"$WORK/nc2.err"
set -e
check "human: untrusted certificate named" grep -q "relay $url: no answer: certificate not trusted (pass --relay-ca" "$WORK/nc.txt"
check "human: refused named" grep -q "relay $refused: no answer: TCP connection refused" "$WORK/nc.txt"
check "human: timeout named" grep -q "relay $silent: no answer within 2 s (timeout)" "$WORK/nc.txt"
check "JSON: a reason per relay, null for what was not measured" python3 - "$WORK/nc.json" "$url" "$refused" "$silent" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read())
errs = {x["url"]: x["error"] for x in r["relays"]}
assert errs == {sys.argv[2]: "certificate", sys.argv[3]: "refused", sys.argv[4]: "timeout"}, r
assert all(x["latency_ms"] is None for x in r["relays"]), r
assert r["home_relay"] is None and r["mapping_varies_by_dest"] is None, r
assert r["ipv6"] is None, r
assert r["probed"] == {"udp": True, "mapping": False, "portmap": False, "pcp": False}, r
assert all(isinstance(v, bool) for v in r["portmap"].values()), r  # the contract
PY
# a trusted relay: no error
set +e
timeout 30 "$KW" netcheck --json --ephemeral --bind 127.0.0.1:0 --relay "$url" --relay-ca "$WORK/ca.pem" >"$WORK/ok.json" 2>/dev/null
set -e
check "JSON: a relay that answered has latency and error null" python3 - "$WORK/ok.json" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read())
x = r["relays"][0]
assert x["latency_ms"] is not None and x["error"] is None, r
PY
# no relay at all: nothing probed
set +e
"$KW" netcheck --json --ephemeral --bind 127.0.0.1:0 >"$WORK/none.json" 2>/dev/null
set -e
check "JSON without relays: probed says nothing was" python3 - "$WORK/none.json" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["probed"]["udp"] is False and r["ipv4"] is None and r["relays"] == [], r
PY

# listen at the default verbosity: the untrusted certificate is said
"$KW" listen --ephemeral --bind 127.0.0.1:0 --relay "$url" --ticket-file "$WORK/t" </dev/null >/dev/null 2>"$WORK/l.err" &
PIDS+=($!)
wait_file "$WORK/t" 15 || bad "listener ticket"
sleep 0.3
check "listen says: relay X: certificate not trusted" grep -q "^keyway: relay $url: certificate not trusted" "$WORK/l.err"
check "... once" test "$(grep -c 'certificate not trusted' "$WORK/l.err")" -eq 1
finish
