#!/bin/sh
# fleet_feed.sh: one feed for a fleet, every node serves every event. A real
# three-server NATS cluster with JetStream (tests/tools/nats_cluster.sh),
# three fedpipe nodes (feedpump + served each) with [fleet] replicas = 3.
# Nodes a and b store overlapping real signed events (the store's own path,
# fleet_fill); node c stores none. The fleet stream holds each event exactly
# once (counted on the server and by event ID); every node's served answers
# /_matrix/federation/v1/event/{id} and /_fed/v1/events for every event; node
# c's applied events are not published again (its outbox rows are written
# published). One NATS server killed mid-run: nothing lost, nothing twice.
# Attack: a message forged onto the fleet subject (its PDU does not hash to
# its event ID; its event_id is not its Nats-Msg-Id) is refused by every
# node (logged, not stored, not served).
. tests/lib/lib.sh
. tests/tools/nats_cluster.sh
. tests/tools/federation_lib.sh
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
check "three NATS servers with a JetStream meta leader" nats_cluster_start 3

mk() {
	node_config "$1" "$2" "nats_timeout = 1s
nats_ack_wait = 2s
[feedpump]
backoff_min = 50ms
backoff_max = 500ms
interval = 300ms
[served]
matrix_auth = open
[fleet]
nats_url = $NATS_URLS
name = fpfleet
member = $1
replicas = 3"
}
PA=$(free_port); PB=$(free_port); PC=$(free_port)
A=$(mk a "$PA"); B=$(mk b "$PB"); C=$(mk c "$PC")
# the fleet shares one server name and signing key
for n in b c; do
	sed -i "s/^server_name = .*/server_name = a.test:$PA/" "$T_TMP/$n/fedpipe.conf"
	cp "$T_TMP/a/signing.key" "$T_TMP/$n/signing.key"
done

# 120 real signed events (a create event and a chain), then 120 more
served_fill -c "$A" -N 119 -o "$T_TMP/ids1" --jsonl >"$T_TMP/ev1.jsonl" 2>/dev/null
served_fill -c "$A" -N 119 -o "$T_TMP/ids2" --jsonl >"$T_TMP/ev2.jsonl" 2>/dev/null
check_eq "120 + 120 events made" "120 120" "$(wc -l <"$T_TMP/ids1" | tr -d ' ') $(wc -l <"$T_TMP/ids2" | tr -d ' ')"

# overlap before any feedpump runs: a stores 0..79, b stores 40..119
check_eq "a stores 80" 80 "$(fleet_fill "$T_TMP/a/state" "$T_TMP/ev1.jsonl" --to 80)"
check_eq "b stores 80 (40 of them a's too)" 80 "$(fleet_fill "$T_TMP/b/state" "$T_TMP/ev1.jsonl" --from 40)"

for n in a b c; do node_start $n feedpump served; done
stream_msgs() {
	curl -s "http://127.0.0.1:$NATS_MON_1/jsz?streams=true" |
		jq '[.account_details[]?.stream_detail[]? | select(.name == "fpfleet") | .state.messages] | max // 0'
}
tail_ids() { fedctl -c "$C" feed tail --source nats:fpfleet.events | jq -r .event_id; }
serves_all() {   # serves_all PORT IDSFILE: every ID answered 200 with that event
	_bad=0
	while read -r _id; do
		_e=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$_id")
		_got=$(curl -s "http://127.0.0.1:$1/_matrix/federation/v1/event/$_e" | jq -r '.pdus[0].room_id // empty')
		[ -n "$_got" ] || _bad=$((_bad + 1))
	done <"$2"
	[ $_bad -eq 0 ]
}
applied() { fedctl -c "$1" stats feedpump | sed -n 's/.*"fleet_applied":\([0-9]*\).*/\1/p'; }
events_count() {   # events_count PORT: every event /_fed/v1/events pages out
	_n=0 _s=0
	while :; do
		_r=$(curl -s "http://127.0.0.1:$1/_fed/v1/events?since=$_s&limit=100")
		_k=$(echo "$_r" | jq '.events|length')
		[ "${_k:-0}" -gt 0 ] 2>/dev/null || break
		_n=$((_n + _k)) _s=$(echo "$_r" | jq .next)
	done
	echo $_n
}

check "the fleet stream fills (120 messages)" wait_for '[ "$(stream_msgs)" -ge 120 ]' 300
check "every node's outbox drained" wait_for '[ "$(fedctl -c "$A" --json feed status | jq .pending)" = 0 ] && [ "$(fedctl -c "$B" --json feed status | jq .pending)" = 0 ]' 300
check_eq "stream: exactly 120 messages (40 stored by both nodes, deduplicated)" 120 "$(stream_msgs)"
check "stream replicated on 3 servers" sh -c "curl -s 'http://127.0.0.1:$NATS_MON_1/jsz?streams=true&config=true' | jq -e '[.account_details[]?.stream_detail[]? | select(.name == \"fpfleet\") | .config.num_replicas] | max == 3' >/dev/null"
wait_for 'tail_ids >"$T_TMP/t1" && [ -s "$T_TMP/t1" ]' 100
check_eq "stream by event ID: 120 distinct" 120 "$(sort -u "$T_TMP/t1" | wc -l | tr -d ' ')"
check "stream by event ID: exactly the 120 made" sh -c "sort '$T_TMP/t1' | cmp -s - '$(sort "$T_TMP/ids1" >"$T_TMP/ids1.s"; echo "$T_TMP/ids1.s")'"
check "the overlap met the duplicate window (a dup ack logged)" sh -c "cat '$T_TMP/a/feedpump.log' '$T_TMP/b/feedpump.log' | grep -q 'duplicate publish ack'"
check "every node applied the fleet feed (c: 120 events)" wait_for '[ "$(events_count $PC)" = 120 ] && [ "$(events_count $PA)" = 120 ] && [ "$(events_count $PB)" = 120 ]' 300
check_eq "node c applied 120" 120 "$(applied "$C")"
check "a serves every event" serves_all "$PA" "$T_TMP/ids1"
check "b serves every event" serves_all "$PB" "$T_TMP/ids1"
check "c serves every event" serves_all "$PC" "$T_TMP/ids1"
check_eq "c: applied events are written published (no re-publish loop)" "0 120" \
	"$(fedctl -c "$C" --json feed status | jq -r '"\(.pending) \(.published)"')"
check_eq "c's feedpump published nothing" 0 "$(fedctl -c "$C" stats feedpump | sed -n 's/.*"published":\([0-9]*\).*/\1/p')"

# Attack: forged messages on the fleet subject.
GOOD=$(sed -n 6p "$T_TMP/ev1.jsonl")
FAKE1='$forgedforgedforgedforgedforgedforgedforged1'
FAKE2='$forgedforgedforgedforgedforgedforgedforged2'
# They carry the fleet's MAC (as a member with a bug would send them; the
# MAC itself is fleet_trust's subject), so the checks behind it are reached.
KF=$(python3 tests/tools/fleet_forge.py key "$T_TMP/a/signing.key")
python3 - "$NATS_PORT_1" "$FAKE1" "$FAKE2" "$GOOD" "$KF" <<'PY'
import base64, hashlib, json, socket, sys
port, f1, f2, good, kf = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], bytes.fromhex(sys.argv[5])
pdu = json.loads(good)
pdu["content"]["body"] = "forged"
def msg(mid, body_id):
    body = json.dumps({"control_version": 0, "event_id": body_id, "pdu": pdu,
                       "room_id": pdu["room_id"], "stream_pos": 1}, separators=(",", ":")).encode()
    mac = base64.b64encode(hashlib.blake2b(b"feed\0" + mid.encode() + b"\0" + body, key=kf,
                                           digest_size=32).digest()).decode().rstrip("=")
    hdr = ("NATS/1.0\r\nNats-Msg-Id: %s\r\nFedpipe-Fleet-Mac: %s\r\n\r\n" % (mid, mac)).encode()
    return b"HPUB fpfleet.events %d %d\r\n" % (len(hdr), len(hdr) + len(body)) + hdr + body + b"\r\n"
s = socket.create_connection(("127.0.0.1", port))
s.recv(4096)
s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\n' + msg(f1, f1) + msg(f2, "$someoneelse") + b"PING\r\n")
buf = b""
while b"PONG" not in buf:
    buf += s.recv(4096)
PY
check "forged messages reached the stream (122)" wait_for '[ "$(stream_msgs)" -ge 122 ]' 100
refused() { grep -c "refused, acked and not applied" "$T_TMP/$1/feedpump.log"; }
check "a, b, c refused both forged messages (logged)" wait_for '[ "$(refused a)" -ge 2 ] && [ "$(refused b)" -ge 2 ] && [ "$(refused c)" -ge 2 ]' 100
check "the log says why (reference hash / Nats-Msg-Id)" sh -c "grep -q 'reference hash' '$T_TMP/c/feedpump.log' && grep -q 'not its Nats-Msg-Id' '$T_TMP/c/feedpump.log'"
check_eq "no node serves the forged event" "404 404 404" "$(for p in $PA $PB $PC; do curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/_matrix/federation/v1/event/%24forgedforgedforgedforgedforgedforgedforged1"; echo; done | tr '\n' ' ' | sed 's/ $//')"
check_eq "nothing stored by the forgeries (c: 120 events)" 120 "$(events_count $PC)"

# One NATS server killed mid-run: a and b store the next 120 (overlapping
# 40) while server 2 is down.
bg fleet_fill "$T_TMP/a/state" "$T_TMP/ev2.jsonl" --to 80 --batch 4 --run-dir "$T_TMP/a/run"
FA=$LAST_PID
nats_server_stop 2
bg fleet_fill "$T_TMP/b/state" "$T_TMP/ev2.jsonl" --from 40 --batch 4 --run-dir "$T_TMP/b/run"
FB=$LAST_PID
wait $FA; wait $FB
check "with server 2 down the stream reaches 242" wait_for '[ "$(stream_msgs)" -ge 242 ]' 600
nats_server_start 2
check "server 2 back" wait_for "nats_js_ready 2" 300
check "every node has all 240 events" wait_for '[ "$(events_count $PC)" = 240 ] && [ "$(events_count $PA)" = 240 ] && [ "$(events_count $PB)" = 240 ]' 600
check_eq "stream: 242 messages (240 events + 2 forged): nothing lost, nothing twice" 242 "$(stream_msgs)"
# (a consumer made right after a server's return may time out once: retry)
wait_for 'tail_ids >"$T_TMP/t2" && [ "$(sort -u "$T_TMP/t2" | wc -l)" -ge 242 ]' 100
check_eq "stream by event ID: 242 distinct" 242 "$(sort -u "$T_TMP/t2" | wc -l | tr -d ' ')"
check "a serves every event of the second batch" serves_all "$PA" "$T_TMP/ids2"
check "b serves every event of the second batch" serves_all "$PB" "$T_TMP/ids2"
check "c serves every event of the second batch" serves_all "$PC" "$T_TMP/ids2"
check_eq "nothing dead-lettered on a or b" "0 0" "$(fedctl -c "$A" --json feed status | jq .dead) $(fedctl -c "$B" --json feed status | jq .dead)"
check_eq "c's feedpump still published nothing" 0 "$(fedctl -c "$C" stats feedpump | sed -n 's/.*"published":\([0-9]*\).*/\1/p')"
finish
