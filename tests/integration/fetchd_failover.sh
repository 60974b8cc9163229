#!/bin/sh
# fetchd failover: past a 500, a timeout (hang), garbage, a wrong event and a
# connection reset to the server that answers right; every bad server is
# asked once and the answer names the good one. Also: outgoing bearer key and
# X-Fed-Proxied, no_candidates (own server, ACL-denied), and --stdio mode.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 3
ID=$(sed -n 1p "$FD_DIR/ids")
EV='/_matrix/federation/v1/event/'
fd_peer e500 "{\"rules\":[{\"path\":\"$EV\",\"status\":500,\"body\":\"{}\"}]}"
fd_peer hang "{\"rules\":[{\"path\":\"$EV\",\"mode\":\"hang\"}]}"
fd_peer garbage "{\"rules\":[{\"path\":\"$EV\",\"mode\":\"garbage\"}]}"
fd_peer wrong "{\"rules\":[{\"path\":\"$EV\",\"mode\":\"wrong\"}]}"
fd_peer reset "{\"rules\":[{\"path\":\"$EV\",\"mode\":\"reset\"}]}"
fd_peer good "" "key = s3cret"
fd_config "request_timeout = 1s
server_rate = 0"
cat >>"$FD_CONF" <<CONF
[acl]
deny = denied.test
CONF
fd_start

fedctl -c "$FD_CONF" fetch event "$ID" --servers e500.test,hang.test,garbage.test,wrong.test,reset.test,good.test \
	>"$FD_DIR/body" 2>"$FD_DIR/err"
rc=$?
check_eq "fetch succeeded" 0 "$rc"
check_eq "answering server on stderr" "good.test" "$(tail -1 "$FD_DIR/err")"
for p in e500 hang garbage wrong reset good; do
	check_eq "$p asked exactly once" 1 "$(fd_peer_stat $p requests)"
done
curl -s "http://127.0.0.1:$FD_PORT_good$EV$(printf '%s' "$ID" | sed 's/\$/%24/')" >"$FD_DIR/direct"
check "body is the good server's bytes" cmp -s "$FD_DIR/body" "$FD_DIR/direct"
check "hanging server's request was given up (peer saw the client go away)" \
	wait_for "grep -q cancelled $FD_DIR/hang.log" 50
check "bearer key sent to good.test" grep -q "auth=Bearer s3cret" "$FD_DIR/good.log"
check "no key sent to others" grep -q "auth=- " "$FD_DIR/e500.log"
check "fetchd's User-Agent sent" grep -q "ua=fedpipe-fetchd/[0-9.]*\$" "$FD_DIR/good.log"

# The meta line lists what was tried and why.
fedctl -c "$FD_CONF" --json fetch event '$missing' --servers e500.test,good.test >/dev/null 2>"$FD_DIR/err2"
check "not_found with the servers tried" grep -q '"error":"not_found","tried":\["good.test","e500.test"\]' "$FD_DIR/err2"

# Proxied requests carry X-Fed-Proxied: 1.
fedctl -c "$FD_CONF" fetch event "$(sed -n 2p "$FD_DIR/ids")" --servers good.test --proxied >/dev/null 2>&1
check "X-Fed-Proxied: 1 upstream" grep -q "proxied=1" "$FD_DIR/good.log"

# Own and denied servers are never candidates.
fedctl -c "$FD_CONF" fetch event "$ID" --servers self.test,denied.test >/dev/null 2>"$FD_DIR/err3"
check "own + denied only: no_candidates" grep -q "no_candidates" "$FD_DIR/err3"

# server_keys: the named server's self-signed key document.
fedctl -c "$FD_CONF" fetch server_keys good.test >"$FD_DIR/keys" 2>/dev/null
check_eq "server_keys fetched from the named server" "good.test" "$(jq -r .server_name "$FD_DIR/keys")"

# Deep checks: signatures need the origin's key (not known here): refused;
# hashes alone pass.
fedctl -c "$FD_CONF" fetch event "$(sed -n 3p "$FD_DIR/ids")" --servers good.test --checks event_id,hashes >/dev/null 2>&1
check_eq "deep hash check passes on a good event" 0 $?
fedctl -c "$FD_CONF" --json fetch event "$(sed -n 3p "$FD_DIR/ids")" --servers good.test --checks event_id,signatures >/dev/null 2>"$FD_DIR/err4"
check "signature check without the key refuses" grep -q "unknown_key" "$FD_DIR/err4"
fd_stop

# --stdio: request frames on stdin, result frames on stdout.
python3 - "$ID" >"$FD_DIR/req.bin" <<'PY'
import json, struct, sys
p = json.dumps({"op": "event", "event_id": sys.argv[1], "servers": ["good.test"]}).encode()
sys.stdout.buffer.write(struct.pack(">IBBHQ", len(p), 0xFD, 3, 0, 77) + p)
PY
fetchd -c "$FD_CONF" --stdio <"$FD_DIR/req.bin" >"$FD_DIR/res.bin" 2>>"$FD_DIR/fetchd.log"
check_eq "--stdio exits 0 at end of input" 0 $?
python3 - "$FD_DIR/res.bin" >"$FD_DIR/res.txt" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
n, magic, t, fl, i = struct.unpack(">IBBHQ", b[:16])
print(t, fl, i, b[16:16 + n].split(b"\n")[0].decode())
PY
check_eq "--stdio answer" '4 2 77 {"ok":true,"server":"good.test","tried":[]}' "$(cat "$FD_DIR/res.txt")"

# fetch_timeout bounds a whole fetch: a hanging server and a longer
# request_timeout; every caller, coalesced or later, gets "timeout", and
# fetchd goes on serving.
fd_config "request_timeout = 30s
fetch_timeout = 600ms
server_rate = 0"
fd_start
TOP=""
for i in 1 2 3; do
	fedctl -c "$FD_CONF" --json fetch event "$ID" --servers hang.test >/dev/null 2>"$FD_DIR/to$i" &
	TOP="$TOP $!"
done
wait $TOP
for i in 1 2 3; do
	check "caller $i of a hung fetch: timeout" grep -q '"error":"timeout"' "$FD_DIR/to$i"
done
fedctl -c "$FD_CONF" --json fetch event "$(sed -n 2p "$FD_DIR/ids")" --servers hang.test >/dev/null 2>"$FD_DIR/to4"
check "a later fetch times out too" grep -q '"error":"timeout"' "$FD_DIR/to4"
fedctl -c "$FD_CONF" fetch event "$ID" --servers good.test >/dev/null 2>&1
check_eq "fetchd still answers after timeouts" 0 $?
check "timeouts counted" test "$(fd_stat timeout)" -ge 2
fd_stop
finish
