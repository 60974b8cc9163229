#!/bin/sh
# fetchd's ops against their federation endpoints: the exact request each op
# sends (path, escaping, query, POST body, as the peer logs it; an endpoint's
# own path prefix kept), the answer's
# shape check per op, a bad shape counted as a bad answer, a body over
# response_max refused, 429 counted against the server, and candidates from
# the room's known servers (LMDB room_servers, learnt from answers).
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 4
id() { sed -n "$1p" "$FD_DIR/ids"; }
pdu() { sed -n "$1p" "$FD_DIR/ev.jsonl"; }
R='!room:origin.test'
RE='%21room%3Aorigin.test'
esc() { printf '%s' "$1" | sed 's/\$/%24/'; }
B=$FD_DIR/bodies
mkdir -p "$B"
printf '{"auth_chain":[%s,%s]}' "$(pdu 2)" "$(pdu 3)" >"$B/auth_chain"
printf '{"pdu_ids":["%s"],"auth_chain_ids":["%s"]}' "$(id 2)" "$(id 3)" >"$B/state_ids"
printf '{"events":[%s]}' "$(pdu 2)" >"$B/missing"
printf '{"origin":"ops.test","origin_server_ts":1,"pdus":[%s,%s]}' "$(pdu 1)" "$(pdu 2)" >"$B/backfill"
F=/_matrix/federation/v1
fd_peer ops "{\"rules\":[
 {\"path\":\"$F/event_auth/\",\"file\":\"$B/auth_chain\"},
 {\"path\":\"$F/state_ids/\",\"file\":\"$B/state_ids\"},
 {\"path\":\"$F/get_missing_events/\",\"file\":\"$B/missing\"},
 {\"path\":\"$F/backfill/\",\"file\":\"$B/backfill\"}]}"
fd_peer shapes "{\"rules\":[
 {\"path\":\"$F/event_auth/\",\"body\":\"{\\\"auth_chain\\\":\\\"x\\\"}\"},
 {\"path\":\"$F/state_ids/\",\"body\":\"{\\\"pdu_ids\\\":[1],\\\"auth_chain_ids\\\":[]}\"},
 {\"path\":\"$F/get_missing_events/\",\"body\":\"{\\\"pdus\\\":[]}\"},
 {\"path\":\"$F/backfill/\",\"body\":\"[]\"}]}"
fd_peer slow429 "{\"rules\":[{\"path\":\"$F/event/\",\"status\":429,\"body\":\"{}\"}]}"
# 3000 bytes of valid JSON: over a 2k response_max.
head -c 3000 /dev/zero | tr '\0' a | sed 's/^/{"pdus":[],"pad":"/; s/$/"}/' >"$B/big"
fd_peer big "{\"rules\":[{\"path\":\"$F/event/\",\"file\":\"$B/big\"}]}"
fd_peer origin "{\"rules\":[{\"path\":\"$F/event/\",\"status\":500,\"body\":\"{}\"}]}"
# An endpoint with a path prefix of its own (a server behind a reverse proxy).
FD_SERVERS="$FD_SERVERS
[server pfx.test]
endpoint = http://127.0.0.1:$FD_PORT_ops/fed/prefix/
"
fd_config "server_rate = 0
response_max = 2k"
fd_start
fetch() { fedctl -c "$FD_CONF" fetch "$@" >"$FD_DIR/out" 2>"$FD_DIR/err"; }
# fetchd hands curl a parsed URL; curl's URL API writes percent-encodings
# with lower-case hex (%3a), which RFC 3986 2.1 makes equal to %3A. The
# peer's log is compared with the hex upper-cased.
line() { sed 's/%\([0-9a-fA-F][0-9a-fA-F]\)/%\U\1/g' "$FD_DIR/$2.log" | grep -c "$1"; }

fetch auth_chain "$(id 1)" --room "$R" --servers ops.test
check_eq "auth_chain fetched" "0 ops.test" "$? $(tail -1 "$FD_DIR/err")"
check "auth_chain: the peer's bytes" cmp -s "$FD_DIR/out" "$B/auth_chain"
check_eq "auth_chain: GET /event_auth/{room}/{event} with both escaped" 1 \
	"$(line "req=[0-9]* GET $F/event_auth/$RE/$(esc "$(id 1)") " ops)"

fetch state_ids "$(id 1)" --room "$R" --servers ops.test
check_eq "state_ids fetched" 0 $?
check "state_ids: the peer's bytes" cmp -s "$FD_DIR/out" "$B/state_ids"
check_eq "state_ids: GET /state_ids/{room}?event_id={event}" 1 \
	"$(line "req=[0-9]* GET $F/state_ids/$RE?event_id=$(esc "$(id 1)") " ops)"

fetch missing_events "$(id 1)" --room "$R" --servers ops.test --earliest "$(id 4)" --limit 5
check_eq "missing_events fetched" 0 $?
check "missing_events: the peer's bytes" cmp -s "$FD_DIR/out" "$B/missing"
check_eq "missing_events: POST /get_missing_events/{room}" 1 "$(line "req=[0-9]* POST $F/get_missing_events/$RE " ops)"
check_eq "missing_events: the body names earliest, latest and limit" 1 \
	"$(line "body={\"earliest_events\":\[\"$(id 4)\"\],\"latest_events\":\[\"$(id 1)\"\],\"limit\":5}" ops)"

fetch backfill "$(id 2)" --room "$R" --servers ops.test --limit 7
check_eq "backfill fetched" 0 $?
check "backfill: the peer's bytes" cmp -s "$FD_DIR/out" "$B/backfill"
check_eq "backfill: GET /backfill/{room}?v={event}&limit=N" 1 \
	"$(line "req=[0-9]* GET $F/backfill/$RE?v=$(esc "$(id 2)")&limit=7 " ops)"

# A room of shapes.test alone, so no other candidate can answer instead.
R2='!other:shapes.test'
fetch event "$(id 3)" --servers pfx.test
check_eq "an endpoint's own path prefix is kept in the request" 1 \
	"$(line "req=[0-9]* GET /fed/prefix$F/event/$(esc "$(id 3)") " ops)"
# The Host header names the endpoint's host:port, whether curl got a parsed
# URL (ops.test) or a string (the prefixed endpoint).
check_eq "every request to ops.test named Host: 127.0.0.1:$FD_PORT_ops" "" \
	"$(grep ' GET \| POST ' "$FD_DIR/ops.log" | grep -v " host=127.0.0.1:$FD_PORT_ops ")"

bad0=$(fd_stat bad_answers)
for op in auth_chain state_ids missing_events backfill; do
	fetch "$op" "$(id 1)" --room "$R2" --servers shapes.test
	rc=$?
	check "$op: a wrongly shaped answer is refused (exit $rc)" [ "$rc" -ne 0 ]
	check "$op: and the reason says bad shape" grep -q "bad shape" "$FD_DIR/err"
done
check_eq "four bad answers counted" 4 "$(( $(fd_stat bad_answers) - bad0 ))"

fetch event "$(id 1)" --servers big.test
check "a body over response_max is refused as too_large" grep -q "too_large" "$FD_DIR/err"

srv() { fedctl -c "$FD_CONF" --json servers | jq -r ".[] | select(.server==\"$1\") | .$2"; }
fetch event "$(id 1)" --servers slow429.test
check "HTTP 429 fails the fetch" grep -q "http 429" "$FD_DIR/err"
check_eq "and counts against the server" 1 "$(srv slow429.test record.streak)"

# Candidates from the room: ops.test answered for the room above, so it is a
# known server of the room; origin.test is named in the room ID (and fails).
# No hints given: origin.test, never contacted, ranks first (untried before
# known latency), fails with a 500, and the room's known server answers.
o0=$(fd_peer_stat origin requests)
fetch event "$(id 3)" --room "$R"
check_eq "no hints: answered by the room's known server" "0 ops.test" "$? $(tail -1 "$FD_DIR/err")"
check_eq "the server named in the room ID was a candidate too" 1 "$(( $(fd_peer_stat origin requests) - o0 ))"
fetch event "$(id 3)"
check "no hints, no room: no_candidates" grep -q no_candidates "$FD_DIR/err"
fd_stop
finish
