#!/bin/sh
# fleet_trust.sh: the fleet's NATS is a trust boundary (issue 18). Who may
# send what, and what the worst sender gets:
#   - anyone reaching the NATS port: nothing without the fleet's NATS
#     credentials over TLS ([fleet] nats_user, nats_password_file,
#     nats_ca_file, nats_tls_name): a wrong password, a password file others
#     can read, a server certificate from another CA or for another name, or
#     a server without TLS are each refused, with the reason logged;
#   - anyone who can publish on the fleet subject (credentials shared too
#     widely): a self-consistent, correctly signed event from a server
#     outside the fleet, published without the fleet MAC or with a MAC under
#     another key, is refused by every member (logged, never stored, never
#     served); the same event with the fleet's MAC, computed here by an
#     independent implementation (tests/tools/fleet_forge.py, Python
#     hashlib), is applied, so the check is on the MAC and nothing else;
#   - anyone who can write the fleet's KV: a cursor planted for a peer is
#     ignored by the member taking the peer's lease (it resumes from its own
#     cursor and stores every event), while a sealed cursor is used; members
#     seal what they write (checked with the independent implementation).
# Against main (no MAC, no credentials), the injected event is served and
# the planted cursor makes the member skip the peer's first events.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
FORGE="python3 tests/tools/fleet_forge.py"

# --- 1. credentials and TLS -------------------------------------------------
W=$T_TMP/tls
mkdir -p "$W"
(
	cd "$W" || exit 1
	for ca in ca other; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
			-subj "/CN=fedpipe-fleet-$ca" -keyout $ca.key -out $ca.pem
	done
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=nats.fleet.test \
		-keyout srv.key -out srv.csr
	printf 'subjectAltName=DNS:nats.fleet.test\n' >srv.ext
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile srv.ext -out srv.pem
) >"$W/openssl.log" 2>&1
check "test CAs and the NATS server certificate made" test -s "$W/srv.pem"
SP=$(free_port); SM=$(free_port)
cat >"$W/nats.conf" <<NC
listen: 127.0.0.1:$SP
http: 127.0.0.1:$SM
jetstream { store_dir: "$W/js" }
tls { cert_file: "$W/srv.pem", key_file: "$W/srv.key", timeout: 5 }
authorization { user: fleet, password: "pw-$$-fleet" }
NC
bg nats-server -c "$W/nats.conf" 2>"$W/nats.log"
check "NATS with TLS and a password is up" wait_for "curl -s http://127.0.0.1:$SM/healthz | grep -q ok" 200
printf 'pw-%s-fleet\n' $$ >"$W/pw"; chmod 600 "$W/pw"
printf 'not-the-password\n' >"$W/badpw"; chmod 600 "$W/badpw"
cp "$W/pw" "$W/pw-open"; chmod 644 "$W/pw-open"

# tconf NAME EXTRA-[fleet]-LINES: a fleet member of the TLS fleet
tconf() {
	node_config "$1" "$(free_port)" "[fleet]
nats_url = nats://127.0.0.1:$SP
name = tfleet
member = $1
lease_ttl = 3s
$2"
}
GOOD="nats_user = fleet
nats_password_file = $W/pw
nats_ca_file = $W/ca.pem
nats_tls_name = nats.fleet.test"
# refused LABEL NAME EXTRA WHAT-THE-LOG-SAYS: fleetd exits, saying why
refused() {
	_c=$(tconf "$2" "$3")
	timeout 30 fleetd -c "$_c" 2>"$T_TMP/$2.log" >/dev/null
	_rc=$?
	if [ $_rc -ne 0 ] && [ $_rc -ne 124 ] && grep -qi "$4" "$T_TMP/$2.log"; then ok "$1"
	else not_ok "$1 (exit $_rc; log: $(tail -n 2 "$T_TMP/$2.log" | tr '\n' ' '))"; fi
}
refused "no credentials, no TLS: refused" t1 "" "fleet: cannot connect"
refused "a wrong password: refused" t2 "nats_user = fleet
nats_password_file = $W/badpw
nats_ca_file = $W/ca.pem
nats_tls_name = nats.fleet.test" "cannot connect"
refused "a password file others can read: refused before connecting" t3 "nats_user = fleet
nats_password_file = $W/pw-open
nats_ca_file = $W/ca.pem
nats_tls_name = nats.fleet.test" "readable by others"
refused "a server certificate from another CA: refused" t4 "nats_user = fleet
nats_password_file = $W/pw
nats_ca_file = $W/other.pem
nats_tls_name = nats.fleet.test" "cannot connect"
refused "a certificate without the expected name (127.0.0.1): refused" t5 "nats_user = fleet
nats_password_file = $W/pw
nats_ca_file = $W/ca.pem" "cannot connect"
refused "a user without a password file: a clear config error" t6 "nats_user = fleet
nats_ca_file = $W/ca.pem" "go together"

# The right credentials: the fleet works over TLS (leases, feed, apply).
TA=$(tconf ta "$GOOD")
TB=$(tconf tb "$GOOD")
cp "$T_TMP/ta/signing.key" "$T_TMP/tb/signing.key"
sed -i "s/^server_name = .*/server_name = $(sed -n 's/^server_name = //p' "$TA")/" "$TB"
PTA=$(sed -n 's/^listen = 127.0.0.1://p' "$TA"); PTB=$(sed -n 's/^listen = 127.0.0.1://p' "$TB")
printf '[served]\nmatrix_auth = open\n' >>"$TA"; printf '[served]\nmatrix_auth = open\n' >>"$TB"
node_start ta fleetd feedpump served
node_start tb fleetd feedpump served
check "with user, password file, CA and name: fleetd joins" wait_for "fedctl -c '$TA' --json fleet | jq -e '.members | length == 2'" 300
served_fill -c "$TA" -N 9 -o "$T_TMP/tids" --jsonl >"$T_TMP/tev.jsonl" 2>/dev/null
check_eq "ta stores 10 events" 10 "$(fleet_fill "$T_TMP/ta/state" "$T_TMP/tev.jsonl" --run-dir "$T_TMP/ta/run")"
serves_all() {   # serves_all PORT IDSFILE: a non-empty list, every ID served
	[ -s "$2" ] || return 1
	_bad=0
	while read -r _id; do
		_e=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$_id")
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/_matrix/federation/v1/event/$_e")" = 200 ] || _bad=$((_bad + 1))
	done <"$2"
	[ $_bad -eq 0 ]
}
check "over TLS: the fleet feed carries them and tb applies all 10" wait_for "serves_all $PTB '$T_TMP/tids'" 300
check "fedctl fleet shows the feed's position and tb's apply lag" wait_for \
	"fedctl -c '$TB' --json fleet | jq -e '.feed.last_seq >= 10 and ([.members[] | select(.member == \"tb\") | .apply_pending] == [0])'" 100

# --- 2. the fleet feed: only members publish ---------------------------------
NP=$(free_port); NATS_MON_1=$(free_port)
bg nats-server -js -a 127.0.0.1 -p "$NP" -m "$NATS_MON_1" -sd "$T_TMP/js-plain" 2>"$T_TMP/nats-plain.log"
check "a plain NATS server (no credentials, no TLS)" wait_for "curl -s http://127.0.0.1:$NATS_MON_1/healthz | grep -q ok" 200
NATS_URLS=nats://127.0.0.1:$NP
mk() {
	node_config "$1" "$(free_port)" "[served]
matrix_auth = open
[fleet]
nats_url = $NATS_URLS
name = mfleet
member = $1
lease_ttl = 3s"
}
A=$(mk a); B=$(mk b)
cp "$T_TMP/a/signing.key" "$T_TMP/b/signing.key"
sed -i "s/^server_name = .*/server_name = $(sed -n 's/^server_name = //p' "$A")/" "$B"
PB=$(sed -n 's/^listen = 127.0.0.1://p' "$B")
node_start a feedpump
node_start b feedpump served
served_fill -c "$A" -N 4 -o "$T_TMP/aids" --jsonl >"$T_TMP/aev.jsonl" 2>/dev/null
check_eq "a stores 5 events" 5 "$(fleet_fill "$T_TMP/a/state" "$T_TMP/aev.jsonl" --run-dir "$T_TMP/a/run")"
check "b applies a's 5 (members' MACs verify)" wait_for "serves_all $PB '$T_TMP/aids'" 300

# An outsider's server O with its own key: real, correctly signed events.
O=$(node_config o "$(free_port)")
served_fill -c "$O" -N 2 -o "$T_TMP/oids" --jsonl >"$T_TMP/oev.jsonl" 2>/dev/null
body() {   # body N: the feed message of O's event N (as a member publishes it)
	sed -n "${1}p" "$T_TMP/oev.jsonl" | python3 -c '
import json, sys
pdu = sys.stdin.read().strip()
eid = sys.argv[1]
room = json.loads(pdu)["room_id"]
sys.stdout.write("{\"control_version\":0,\"event_id\":%s,\"pdu\":%s,\"room_id\":%s,\"stream_pos\":1}"
                 % (json.dumps(eid), pdu, json.dumps(room)))' "$(sed -n "${1}p" "$T_TMP/oids")" >"$T_TMP/o$1.body"
}
for i in 1 2 3; do body $i; done
ID1=$(sed -n 1p "$T_TMP/oids"); ID2=$(sed -n 2p "$T_TMP/oids"); ID3=$(sed -n 3p "$T_TMP/oids")
KF=$($FORGE key "$T_TMP/a/signing.key")     # the fleet key, derived independently
KO=$($FORGE key "$T_TMP/o/signing.key")     # another key
check "outsider: event 1 published without a MAC" $FORGE pub "$NP" mfleet.events "$ID1" "$T_TMP/o1.body"
check "outsider: event 2 published with a MAC under another key" $FORGE pub "$NP" mfleet.events "$ID2" "$T_TMP/o2.body" \
	"Fedpipe-Fleet-Mac=$($FORGE mac "$KO" feed "$ID2" "$T_TMP/o2.body")"
check "event 3 published with the fleet's MAC (Python's own BLAKE2b)" $FORGE pub "$NP" mfleet.events "$ID3" "$T_TMP/o3.body" \
	"Fedpipe-Fleet-Mac=$($FORGE mac "$KF" feed "$ID3" "$T_TMP/o3.body")"
code() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PB/_matrix/federation/v1/event/$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1")"; }
check "the MAC'd event 3 is applied by b (the MAC is the only difference)" wait_for '[ "$(code "$ID3")" = 200 ]' 300
check_eq "events 1 and 2 are not served by b" "404 404" "$(code "$ID1") $(code "$ID2")"
macrefused() { grep -c "no valid fleet MAC" "$T_TMP/$1/feedpump.log"; }
check "a and b both refused both, saying why" wait_for '[ "$(macrefused a)" -ge 2 ] && [ "$(macrefused b)" -ge 2 ]' 300

# --- 3. the fleet's KV: only members move cursors -------------------------------
P=$(node_config p "$(free_port)")
PP=$(sed -n 's/^listen = 127.0.0.1://p' "$P")
served_fill -c "$P" -N 20 -o "$T_TMP/pids" >/dev/null
node_start p served
check "peer p up (21 events)" wait_for "http_up http://127.0.0.1:$PP/healthz" 200
printf '%s\n[syncd]\ninterval = 300ms\nbackoff_max = 1s\nlongpoll = 1s\n[peer p]\nendpoint = http://127.0.0.1:%s\n' \
	"$FED_COMMON" "$PP" >>"$A"
stop "$PID_a_feedpump"
node_start a fleetd
check "a's fleetd takes p's lease (the buckets exist)" wait_for "fedctl -c '$A' --json fleet | jq -e '.peers[0].holder == \"a\"'" 300
stop "$PID_a_fleetd"
check "a's fleetd released the lease on stop" wait_for "fedctl -c '$A' --json fleet | jq -e '.peers[0].holder == \"\"'" 100
printf 15 >"$T_TMP/planted"     # exactly what main's fleetd wrote
check "outsider: cursor.p = 15 planted in the fleet's KV" $FORGE pub "$NP" '$KV.mfleet_peers.cursor.p' "" "$T_TMP/planted"
node_start a fleetd validated purgatoryd syncd served feedpump
check "the planted cursor is ignored, logged" wait_for "grep -q 'cursor.p carries no valid fleet MAC' '$T_TMP/a/fleetd.log'" 300
PA=$(sed -n 's/^listen = 127.0.0.1://p' "$A")
check "a stores all 21 of p's events (resumed from its own cursor, not 15)" wait_for "serves_all $PA '$T_TMP/pids'" 600
sealed() { $FORGE kvget "$NP" mfleet_peers cursor.p; }
check "a sealed its cursor (21) in KV: the independent implementation opens it" \
	wait_for '[ "$($FORGE open "$KF" cursor.p "$(sealed)")" = 21 ]' 300
check "fedctl fleet: the fleet cursor is 21 and valid" wait_for \
	"fedctl -c '$A' --json fleet | jq -e '.peers[0].fleet_cursor == 21 and .peers[0].fleet_cursor_valid == true'" 100
# The seal is the only difference: a cursor sealed with the fleet key by
# the independent implementation is taken over.
stop "$PID_a_fleetd"
check "fleetd released p again" wait_for "fedctl -c '$A' --json fleet | jq -e '.peers[0].holder == \"\"'" 100
$FORGE seal "$KF" cursor.p 30 | tr -d "\n" >"$T_TMP/sealed30"
check "a sealed cursor.p = 30 written" $FORGE pub "$NP" '$KV.mfleet_peers.cursor.p' "" "$T_TMP/sealed30"
node_start a fleetd
check "the sealed cursor is used (30 from the fleet, ours was 21)" \
	wait_for "grep -q 'peer p: cursor 30 from the fleet (ours was 21)' '$T_TMP/a/fleetd.log'" 300
finish
