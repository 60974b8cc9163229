#!/bin/sh
# Issue 13 item 5: recoveries do not starve real fetches. 150 cache-warm
# recoveries (FF_PROXIED, as served sends them) wait in a slow server's
# throttle; then one ordinary fetch (purgatoryd's kind) for the same server
# comes in. It must reach the server before the queued recoveries: asserted
# on the order the server logs requests in, not on time. Also: with the
# admission queue full of recoveries, an ordinary fetch is admitted and a
# recovery gives way.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 152
F=/_matrix/federation/v1
fd_peer slow "{\"rules\":[{\"path\":\"$F/event/\",\"mode\":\"events\",\"delay_ms\":1000}]}"
fd_config "server_rate = 0
server_concurrency = 2"
fd_start

head -150 "$FD_DIR/ids" >"$FD_DIR/rec"
REAL=$(sed -n 151p "$FD_DIR/ids")
fetchd_client -s "$FD_SOCK" -n 150 -w 150 --proxied -i "$FD_DIR/rec" \
	-r '{"op":"event","event_id":"%ID%","servers":["slow.test"]}' >"$FD_DIR/rec.out" &
RPID=$!
check "the recoveries are queued at the slow server" wait_for "[ \$(fd_peer_stat slow requests) -ge 1 ]" 100
fedctl -c "$FD_CONF" fetch event "$REAL" --servers slow.test >/dev/null 2>"$FD_DIR/real.err"
check_eq "the ordinary fetch succeeds" "0" "$?"
ENC=$(printf '%s' "$REAL" | sed 's/\$/%24/')
POS=$(grep -o "req=[0-9]* GET $F/event/[^ ]*" "$FD_DIR/slow.log" | grep -n "/event/$ENC\$" | cut -d: -f1)
BEFORE=$(grep -c "req=[0-9]* GET $F/event/.*proxied=1" "$FD_DIR/slow.log")
diag "the ordinary fetch was request #$POS at the server; $BEFORE recoveries had arrived by its answer"
check "it reached the server within the first 10 requests (150 recoveries were queued)" \
	[ "${POS:-999}" -le 10 ]
check "it carried no X-Fed-Proxied (an ordinary fetch)" \
	sh -c "grep 'GET $F/event/$ENC ' '$FD_DIR/slow.log' | grep -q 'proxied=0'"
check "most recoveries were still waiting" [ "$BEFORE" -lt 75 ]
check "the recoveries hold at most server_concurrency - 1 slots: the peer saw at most 2 at once" \
	[ "$(fd_peer_stat slow inflight_max)" -le 2 ]
kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null
fd_stop

# Admission: requests_max 1, queue_max 5. Six recoveries fill the slot and
# the queue; an ordinary fetch still gets in, the newest recovery is told busy.
fd_config "server_rate = 0
requests_max = 1
queue_max = 5"
fd_start
sed -n 140,145p "$FD_DIR/ids" >"$FD_DIR/rec6"
fetchd_client -s "$FD_SOCK" -n 6 -w 6 --proxied -i "$FD_DIR/rec6" \
	-r '{"op":"event","event_id":"%ID%","servers":["slow.test"]}' >"$FD_DIR/rec6.out" &
RPID=$!
check "slot and queue are full of recoveries" wait_for "[ \$(fedctl -c $FD_CONF --json stats fetchd | jq .fetchd.gauges.queue) -ge 5 ]" 100
fedctl -c "$FD_CONF" fetch event "$(sed -n 152p "$FD_DIR/ids")" --servers slow.test >/dev/null 2>"$FD_DIR/real2.err"
check_eq "the ordinary fetch is admitted and succeeds" 0 "$?"
wait "$RPID"
check "one recovery gave way (busy), the other five were answered" grep -q "replies=6 ok=5 .*err_busy=1" "$FD_DIR/rec6.out"
check_eq "counted" 1 "$(fd_stat busy_recoveries)"
fd_stop
finish
