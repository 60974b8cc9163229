#!/bin/sh
# fetchd backpressure: REQUESTS_MAX bounds in-flight fetches, a bounded FIFO
# holds the next ones (re-admitted as slots free), past it callers get busy at
# once; memory stays flat across rounds of 10,000 distinct requests.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 1
EV='/_matrix/federation/v1/event/'
fd_peer slow "{\"rules\":[{\"path\":\"$EV\",\"status\":404,\"body\":\"{}\",\"delay_ms\":200}]}"
fd_config "server_rate = 0
server_concurrency = 64
requests_max = 32
queue_max = 64"
fd_start
i=0
while [ $i -lt 10000 ]; do echo "\$distinct$i"; i=$((i + 1)); done >"$FD_DIR/many"
REQ='{"op":"event","event_id":"%ID%","servers":["slow.test"]}'

# Within REQUESTS_MAX + queue: nobody is refused, the queue drains in order.
out=$(fetchd_client -s "$FD_SOCK" -n 600 -c 20 -w 96 -i "$FD_DIR/many" -r "$REQ")
diag "$out"
case "$out" in *"replies=600 ok=0 distinct=0 err_not_found=600 "*) ok "96 outstanding: all admitted (queued ones re-admitted), none busy" ;;
	*) not_ok "96 outstanding: all admitted ($out)" ;; esac
check_eq "never more than REQUESTS_MAX in flight" 32 "$(fedctl -c "$FD_CONF" --json stats fetchd | jq .fetchd.gauges.inflight_peak)"
check "the queue was used" [ "$(fd_stat queued)" -gt 0 ]

round() {
	fetchd_client -s "$FD_SOCK" -n 10000 -c 100 -i "$FD_DIR/many" -r "$REQ"
}
out=$(round)
diag "$out"
busy=$(echo "$out" | sed -n 's/.*err_busy=\([0-9]*\).*/\1/p')
nf=$(echo "$out" | sed -n 's/.*err_not_found=\([0-9]*\).*/\1/p')
case "$out" in *"replies=10000 "*) ok "10,000 distinct requests all answered" ;; *) not_ok "all answered ($out)" ;; esac
check "busy answers past the queue bound ($busy)" [ "${busy:-0}" -gt 5000 ]
check_eq "busy + not_found = 10000" 10000 "$(( ${busy:-0} + ${nf:-0} ))"
check "at least REQUESTS_MAX + queue fetched ($nf)" [ "${nf:-0}" -ge 96 ]
check_eq "still never more than REQUESTS_MAX in flight" 32 "$(fedctl -c "$FD_CONF" --json stats fetchd | jq .fetchd.gauges.inflight_peak)"
r1=$(fd_rss)
round >/dev/null; round >/dev/null; round >/dev/null
r4=$(fd_rss)
diag "fetchd RSS after round 1: $r1 kB, after round 4: $r4 kB"
if nm -D "$(command -v fetchd)" 2>/dev/null | grep -q __asan_init; then
	skip "memory flat across rounds (ASan's quarantine grows by design)"
else
	check "memory flat across rounds (grew $((r4 - r1)) kB)" [ $((r4 - r1)) -lt 4096 ]
fi
check_eq "nothing left in flight" "0 0" "$(fedctl -c "$FD_CONF" --json stats fetchd | jq -r '"\(.fetchd.gauges.inflight) \(.fetchd.gauges.queue)"')"

# SIGTERM under load (fetches in flight, the queue full, 100 callers): a
# clean stop, not a hang. A zombie counts as gone (bg's child, not reaped yet).
fd_gone() { ! kill -0 "$FD_PID" 2>/dev/null || grep -q '^State:.*Z' "/proc/$FD_PID/status" 2>/dev/null; }
fetchd_client -s "$FD_SOCK" -n 10000 -c 100 -i "$FD_DIR/many" -r "$REQ" >"$FD_DIR/term.out" 2>&1 &
CL=$!
wait_for '[ "$(fedctl -c "$FD_CONF" --json stats fetchd | jq .fetchd.gauges.inflight)" -gt 0 ]' 50
kill -TERM "$FD_PID"
check "SIGTERM with fetches in flight: fetchd exits" wait_for fd_gone 100
check "... logging that it stopped" grep -q "fetchd\[$FD_PID\]: stopped" "$FD_DIR/fetchd.log"
wait "$CL" 2>/dev/null
finish
