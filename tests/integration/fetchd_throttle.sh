#!/bin/sh
# fetchd's per-server throttle: at most server_concurrency requests at once
# to one server (the peer measures how many it holds at a time) and at most
# server_rate per minute (a token bucket holding a minute's worth: a burst of
# server_rate, then one every 60/server_rate s), waiting fetches in arrival
# order; another server is not held up by it.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 40
F=/_matrix/federation/v1
fd_peer slow "{\"rules\":[{\"path\":\"$F/event/\",\"mode\":\"events\",\"delay_ms\":400}]}"
fd_peer other
fd_config "server_rate = 0"
fd_start

# Defaults: 5 at once. 12 distinct fetches at once, each held 400 ms.
head -12 "$FD_DIR/ids" >"$FD_DIR/ids12"
out=$(fetchd_client -s "$FD_SOCK" -n 12 -w 12 -i "$FD_DIR/ids12" -r '{"op":"event","event_id":"%ID%","servers":["slow.test"]}')
case "$out" in *"replies=12 ok=12 "*) ok "12 fetches through the throttle: all answered" ;;
	*) not_ok "12 fetches through the throttle ($out)" ;; esac
check_eq "the peer never held more than 5 of them at once (server_concurrency default)" 5 "$(fd_peer_stat slow inflight_max)"
check_eq "each asked once" 12 "$(fd_peer_stat slow requests)"
fd_stop

# server_rate = 12 per minute: a burst of 12, then one every 5 s.
fd_config "server_rate = 12
server_concurrency = 32"
fd_start
sed -n 13,25p "$FD_DIR/ids" >"$FD_DIR/ids13"
fetchd_client -s "$FD_SOCK" -n 13 -w 13 -i "$FD_DIR/ids13" \
	-r '{"op":"event","event_id":"%ID%","servers":["slow.test"]}' >"$FD_DIR/rate.out" &
CPID=$!
check "the burst of 12 goes out" wait_for "[ \$(fd_peer_stat slow requests) -ge 24 ]" 100
# While the 13th waits for a token (5 s), another server is served at once.
fedctl -c "$FD_CONF" fetch event "$(sed -n 30p "$FD_DIR/ids")" --servers other.test >/dev/null 2>"$FD_DIR/other.err"
check_eq "another server is not held up by slow.test's rate" "0 other.test" "$? $(tail -1 "$FD_DIR/other.err")"
check_eq "the 13th is still waiting for its token" 24 "$(fd_peer_stat slow requests)"
check "the 13th goes out once a token is due" wait_for "[ \$(fd_peer_stat slow requests) -ge 25 ]" 150
wait "$CPID"
check "all 13 answered" grep -q "replies=13 ok=13 " "$FD_DIR/rate.out"
check_eq "the one that waited is the last that asked" "$(sed -n 13p "$FD_DIR/ids13" | sed 's/\$/%24/')" \
	"$(grep -o "req=25 GET $F/event/[^ ]*" "$FD_DIR/slow.log" | sed 's|.*/event/||')"
fd_stop
finish
