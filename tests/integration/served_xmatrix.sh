#!/bin/sh
# served verifies X-Matrix on /_matrix/federation/* (issue 15), attacked with
# real processes: node A (served + fetchd, events in LMDB) and requesters
# r1, r2, r3 that sign with their own keys (tests/tools/fp_xmatrix sign, and
# python3-signedjson for one request), each key document served by
# tests/tools/served_keyserver.py on 127.0.0.1, which A's fetchd reaches
# through a [server NAME] section. A valid signed request gets the event;
# unsigned, tampered URI, tampered body, signed by another key, wrong
# destination, malformed header, non-server-name origin: 401; an ACL-denied
# origin: 403 (no key fetch); the key endpoints and version stay open;
# 50 concurrent requests of an unknown origin cause one key fetch; a key
# document naming another server is refused.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
P=$(free_port); K1=$(free_port); K2=$(free_port); K3=$(free_port); K4=$(free_port); K5=$(free_port)
R1=r1.test:$K1; R2=r2.test:$K2; R3=r3.test:$K3; R4=r4.test:$K4
R5=r5.test:$K5
for r in r1:$K1 r2:$K2 r3:$K3 r4:$K4 r5:$K5; do node_config "${r%%:*}" "${r#*:}" >/dev/null; done
A=$(node_config a "$P" "$FED_COMMON
[peer r1]
endpoint = http://127.0.0.1:$K1
server_name = $R1
[served]
key_wait = 5s
max_connections_per_ip = 128
[acl]
deny = $R2
[server $R1]
endpoint = http://127.0.0.1:$K1
[server $R2]
endpoint = http://127.0.0.1:$K2
[server $R3]
endpoint = http://127.0.0.1:$K3
[server $R4]
endpoint = http://127.0.0.1:$K4
[server $R5]
endpoint = http://127.0.0.1:$K5")
ME=a.test:$P
sed -i 's/^\[node\]$/[node]\nshared_key = k3y/' "$A"
served_fill -c "$A" -N 5 -o "$T_TMP/ids" >/dev/null
bg "$PY" tests/tools/served_keyserver.py "$T_TMP/r1/signing.key" "$R1" "$K1" "$T_TMP/hits1"
bg "$PY" tests/tools/served_keyserver.py "$T_TMP/r2/signing.key" "$R2" "$K2" "$T_TMP/hits2"
bg "$PY" tests/tools/served_keyserver.py "$T_TMP/r3/signing.key" "$R3" "$K3" "$T_TMP/hits3" 1
# r4's key server hands out r1's document: a key from someone not entitled.
bg "$PY" tests/tools/served_keyserver.py "$T_TMP/r1/signing.key" "$R1" "$K4" "$T_TMP/hits4"
# r5's key server accepts and never answers: the request waits key_wait, no longer.
bg python3 tests/tools/served_listener.py "$K5" "$T_TMP/hits5" hang
node_start a fetchd served
U=http://127.0.0.1:$P
check "up" wait_for "http_up $U/healthz"
check "key servers up" wait_for "http_up http://127.0.0.1:$K1/ && http_up http://127.0.0.1:$K2/ && http_up http://127.0.0.1:$K3/ && http_up http://127.0.0.1:$K4/"
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
E=$(sed -n 3p "$T_TMP/ids")
PATHQ=/_matrix/federation/v1/event/$(enc "$E")
sign() { fp_xmatrix sign "$T_TMP/$1/signing.key" "$2" "$3" "$4" "$5" ${6:+"$6"}; }
code() { curl -s -o "$T_TMP/body" -w '%{http_code}' "$@"; }
errc() { jq -r .errcode "$T_TMP/body" 2>/dev/null; }

H=$(sign r1 "$R1" "$ME" GET "$PATHQ")
check_eq "valid signed request: 200" 200 "$(code -H "Authorization: $H" "$U$PATHQ")"
check_eq "valid signed request: the event" "$E" "$(jq -c '.pdus[0]' "$T_TMP/body" | fp_pdu id 10)"
check_eq "its key was fetched once from the origin" 1 "$(cat "$T_TMP/hits1")"
check_eq "second request: key cached (no new fetch)" "200 1" "$(code -H "Authorization: $H" "$U$PATHQ") $(cat "$T_TMP/hits1")"
check_eq "unsigned: 401" 401 "$(code "$U$PATHQ")"
check_eq "unsigned: M_UNAUTHORIZED" M_UNAUTHORIZED "$(errc)"
check "unsigned: logged why" grep -q "no X-Matrix Authorization header" "$T_TMP/a/served.log"
check_eq "bearer instead of X-Matrix: 401" 401 "$(code -H "Authorization: Bearer x" "$U$PATHQ")"
E2=$(sed -n 4p "$T_TMP/ids")
check_eq "tampered uri (signature for another event): 401" 401 "$(code -H "Authorization: $H" "$U/_matrix/federation/v1/event/$(enc "$E2")")"
check "tampered: logged bad signature" grep -q "bad signature" "$T_TMP/a/served.log"
check_eq "tampered query string: 401" 401 "$(code -H "Authorization: $H" "$U$PATHQ?x=1")"
K1ID=$(fp_xmatrix parse "$H" | sed -n 3p)
HO=$(sign r3 "$R1" "$ME" GET "$PATHQ" | sed "s/key=\"[^\"]*\"/key=\"$K1ID\"/")
check_eq "signed by another key under r1's key ID: 401" 401 "$(code -H "Authorization: $HO" "$U$PATHQ")"
HD=$(sign r1 "$R1" "b.test:1" GET "$PATHQ")
check_eq "wrong destination: 401" 401 "$(code -H "Authorization: $HD" "$U$PATHQ")"
check "wrong destination: logged" grep -q "wrong destination b.test:1" "$T_TMP/a/served.log"
HN=$(echo "$H" | sed 's/,destination="[^"]*"//')
check_eq "no destination (optional) but valid: 200" 200 "$(code -H "Authorization: $HN" "$U$PATHQ")"
check_eq "malformed header (unterminated quote): 401" 401 "$(code -H "Authorization: X-Matrix origin=\"$R1,key=\"x\"" "$U$PATHQ")"
check_eq "malformed header (no sig): 401" 401 "$(code -H "Authorization: X-Matrix origin=\"$R1\",key=\"$K1ID\"" "$U$PATHQ")"
check "malformed: logged" grep -q "malformed X-Matrix Authorization header" "$T_TMP/a/served.log"
check_eq "garbage signature: 401" 401 "$(code -H "Authorization: $(echo "$H" | sed 's/sig="[^"]*"/sig="!!!"/')" "$U$PATHQ")"
HB=$(sign r1 "evil/../x" "$ME" GET "$PATHQ")
check_eq "origin not a server name: 401" 401 "$(code -H "Authorization: $HB" "$U$PATHQ")"
# Unknown key ID of a known origin: a refetch, still unknown -> 401.
HK=$(echo "$H" | sed 's/key="[^"]*"/key="ed25519:nope"/')
HB1=$(cat "$T_TMP/hits1")
check_eq "unknown key ID: 401" 401 "$(code -H "Authorization: $HK" "$U$PATHQ")"
code -H "Authorization: $HK" "$U$PATHQ" >/dev/null; code -H "Authorization: $HK" "$U$PATHQ" >/dev/null
check_eq "made-up key IDs of a just-fetched origin: no refetch each" "$HB1" "$(cat "$T_TMP/hits1")"
check "unknown key: logged" grep -q "unknown key ed25519:nope" "$T_TMP/a/served.log"
# A body is signed too.
ROOM=$(curl -s -H "Authorization: $H" "$U$PATHQ" | jq -r '.pdus[0].room_id')
E5=$(sed -n 5p "$T_TMP/ids")
printf '{"earliest_events":["%s"],"latest_events":["%s"],"limit":10}' "$E" "$E5" >"$T_TMP/gme"
GP=/_matrix/federation/v1/get_missing_events/$(enc "$ROOM")
HP=$(sign r1 "$R1" "$ME" POST "$GP" "$T_TMP/gme")
check_eq "signed POST with body: 200, one event" "200 1" "$(code -H "Authorization: $HP" -H 'Content-Type: application/json' --data-binary @"$T_TMP/gme" "$U$GP") $(jq '.events|length' "$T_TMP/body")"
sed 's/"limit":10/"limit":11/' "$T_TMP/gme" >"$T_TMP/gme2"
check_eq "tampered body: 401" 401 "$(code -H "Authorization: $HP" -H 'Content-Type: application/json' --data-binary @"$T_TMP/gme2" "$U$GP")"
check_eq "unsigned POST with body: 401 before the body" 401 "$(code -H 'Content-Type: application/json' --data-binary @"$T_TMP/gme" "$U$GP")"
# ACL: a denied origin, validly signed, is forbidden and costs no key fetch.
H2=$(sign r2 "$R2" "$ME" GET "$PATHQ")
check_eq "ACL-denied origin: 403" 403 "$(code -H "Authorization: $H2" "$U$PATHQ")"
check_eq "ACL-denied origin: M_FORBIDDEN" M_FORBIDDEN "$(errc)"
check_eq "ACL-denied origin: no key fetch" 0 "$(cat "$T_TMP/hits2")"
# A key document from r4's address naming r1: refused (not r4's own).
H4=$(sign r1 "$R4" "$ME" GET "$PATHQ")
check_eq "key document naming another server: 401" 401 "$(code -H "Authorization: $H4" "$U$PATHQ")"
check "another server's document: logged" grep -Eq "keys of $R4 refused|unknown key .*$R4|origin $R4" "$T_TMP/a/served.log"
# Always open.
check_eq "key/v2/server open" 200 "$(code "$U/_matrix/key/v2/server")"
check_eq "federation/v1/version open" fedpipe "$(curl -s "$U/_matrix/federation/v1/version" | jq -r .server.name)"
check_eq "key/v2/query/{our name}: open, our document" "200 $ME" "$(code "$U/_matrix/key/v2/query/$ME") $(jq -r '.server_keys[0].server_name' "$T_TMP/body")"
check "... self-signed (signedjson verifies it)" "$PY" -c '
import sys, json, base64, signedjson.key, signedjson.sign
d = json.load(open(sys.argv[1]))["server_keys"][0]; (kid, v), = d["verify_keys"].items()
vk = signedjson.key.decode_verify_key_bytes(kid, base64.b64decode(v["key"] + "=="))
signedjson.sign.verify_signed_json(d, d["server_name"], vk)' "$T_TMP/body"
check_eq "POST key/v2/query: open, our document and r1's (fetched for its request), countersigned by us" "200 $ME,$R1 1,2" \
	"$(code -X POST -H 'Content-Type: application/json' -d "{\"server_keys\":{\"$ME\":{},\"$R1\":{}}}" "$U/_matrix/key/v2/query") $(jq -r '[.server_keys[].server_name] | join(",")' "$T_TMP/body") $(jq -r '[.server_keys[].signatures | length] | map(tostring) | join(",")' "$T_TMP/body")"
check_eq "key/v2/query of a server whose document we refused (r4 handed out r1's): empty list" "200 0" "$(code "$U/_matrix/key/v2/query/$R4") $(jq '.server_keys|length' "$T_TMP/body")"
check_eq "POST key/v2/query with a bad body: 400" 400 "$(code -X POST -d 'nope' "$U/_matrix/key/v2/query")"
check_eq "healthz open" 200 "$(code "$U/healthz")"
check_eq "metrics keeps the bearer key" "401 200" "$(code "$U/metrics") $(code -H 'Authorization: Bearer k3y' "$U/metrics")"
# /_fed/v1: the bearer key, or X-Matrix from a configured [peer]'s server name.
FI=/_fed/v1/identity
check_eq "/_fed/v1 without auth: 401" 401 "$(code "$U$FI")"
check_eq "/_fed/v1 with the bearer key: 200" 200 "$(code -H 'Authorization: Bearer k3y' "$U$FI")"
check_eq "/_fed/v1 X-Matrix from the peer's server name: 200" 200 "$(code -H "Authorization: $(sign r1 "$R1" "$ME" GET "$FI")" "$U$FI")"
check_eq "/_fed/v1 X-Matrix from a server that is no peer: 401" 401 "$(code -H "Authorization: $(sign r3 "$R3" "$ME" GET "$FI")" "$U$FI")"
check "... logged" grep -q "not the server_name of a configured \[peer\]" "$T_TMP/a/served.log"
check_eq "/_fed/v1 X-Matrix from the peer, tampered query: 401" 401 "$(code -H "Authorization: $(sign r1 "$R1" "$ME" GET "$FI")" "$U$FI?x=1")"
check_eq "/_fed/v1 X-Matrix from the peer, signed by another key: 401" 401 "$(code -H "Authorization: $(sign r3 "$R1" "$ME" GET "$FI" | sed "s/key=\"[^\"]*\"/key=\"$K1ID\"/")" "$U$FI")"
# signedjson (Synapse's library) as the signer.
HS=$("$PY" - "$T_TMP/r1/signing.key" "$R1" "$ME" "$PATHQ" <<'PY'
import sys, signedjson.key, signedjson.sign
sk = signedjson.key.read_signing_keys(open(sys.argv[1]))[0]
o, d, uri = sys.argv[2], sys.argv[3], sys.argv[4]
req = signedjson.sign.sign_json({"method": "GET", "uri": uri, "origin": o, "destination": d}, o, sk)
print('X-Matrix origin="%s",destination="%s",key="ed25519:%s",sig="%s"' % (o, d, sk.version, req["signatures"][o]["ed25519:" + sk.version]))
PY
)
check_eq "signedjson-signed request: 200" 200 "$(code -H "Authorization: $HS" "$U$PATHQ")"
# 50 concurrent requests of an unknown origin (its key server answers after 1 s): one fetch.
H3=$(sign r3 "$R3" "$ME" GET "$PATHQ")
i=0; : >"$T_TMP/codes"
while [ $i -lt 50 ]; do
	( curl -s -m 20 -o /dev/null -w '%{http_code}\n' -H "Authorization: $H3" "$U$PATHQ" >>"$T_TMP/codes" ) &
	i=$((i + 1))
done
wait_for "[ \$(wc -l <$T_TMP/codes) -ge 50 ]" 300
check_eq "50 concurrent requests of an unknown origin: all 200" 50 "$(grep -c '^200$' "$T_TMP/codes")"
check_eq "50 concurrent requests of an unknown origin: one key fetch" 1 "$(cat "$T_TMP/hits3")"
# A node with a [peer] server_name and no shared_key: /_fed/v1 is no longer open.
PC=$(free_port)
C=$(node_config c "$PC" "[peer r1]
endpoint = http://127.0.0.1:$K1
server_name = $R1")
fedctl -c "$T_TMP/r1/fedpipe.conf" keys doc >"$T_TMP/r1doc.json" && fedctl -c "$C" keys import "$T_TMP/r1doc.json" >/dev/null
node_start c served
check "node c up" wait_for "http_up http://127.0.0.1:$PC/healthz"
check_eq "peer configured, no shared_key: unauthenticated /_fed/v1 gets 401" 401 "$(code "http://127.0.0.1:$PC$FI")"
check_eq "... the peer's X-Matrix gets 200" 200 "$(code -H "Authorization: $(sign r1 "$R1" "c.test:$PC" GET "$FI")" "http://127.0.0.1:$PC$FI")"
H5=$(sign r5 "$R5" "$ME" GET "$PATHQ")
check_eq "origin whose key server hangs: 401 (bounded by key_wait)" 401 "$(code -m 30 -H "Authorization: $H5" "$U$PATHQ")"
check "... logged (key_wait passed, or fetchd timed out at key_wait)" grep -Eq "r5.*(no key document within key_wait|fetchd could not get it .timeout.)" "$T_TMP/a/served.log"
check "served still up" http_up "$U/healthz"

# The counters behind fedpipe_xmatrix_requests_total and
# fedpipe_http_acl_forbidden_total move by one for each request of a kind.
OK0=$(stage_stat "$A" served xmatrix_ok); RF0=$(stage_stat "$A" served xmatrix_refused); AF0=$(stage_stat "$A" served acl_forbidden)
code -H "Authorization: $H" "$U$PATHQ" >/dev/null
check_eq "a valid request: xmatrix_ok +1, xmatrix_refused unchanged" "$((${OK0:-0} + 1)) ${RF0:-0}" "$(stage_stat "$A" served xmatrix_ok) $(stage_stat "$A" served xmatrix_refused)"
code -H "Authorization: $H" "$U$PATHQ?x=1" >/dev/null
check_eq "a tampered one: xmatrix_refused +1, xmatrix_ok unchanged" "$((${OK0:-0} + 1)) $((${RF0:-0} + 1))" "$(stage_stat "$A" served xmatrix_ok) $(stage_stat "$A" served xmatrix_refused)"
code -H "Authorization: $H2" "$U$PATHQ" >/dev/null
check_eq "an ACL-denied origin: acl_forbidden +1" "$((${AF0:-0} + 1))" "$(stage_stat "$A" served acl_forbidden)"
check "the counts reach /metrics" sh -c "curl -s -H 'Authorization: Bearer k3y' '$U/metrics' | grep -q '^fedpipe_xmatrix_requests_total{result=\"refused\"} $((${RF0:-0} + 1))\$'"
finish
