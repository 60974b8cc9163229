#!/bin/sh
# fetchd staged fan-out: a round of three servers is answered by the fastest,
# the slower ones are cancelled (their peers log the client going away); a
# failed sibling does not end the round; geometric growth widens rounds.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 4
EV='/_matrix/federation/v1/event/'
fd_peer slow1 "{\"rules\":[{\"path\":\"$EV\",\"mode\":\"events\",\"delay_ms\":4000}]}"
fd_peer slow2 "{\"rules\":[{\"path\":\"$EV\",\"mode\":\"events\",\"delay_ms\":4000}]}"
fd_peer fast "{\"rules\":[{\"path\":\"$EV\",\"mode\":\"events\",\"delay_ms\":300}]}"
fd_peer fail "{\"rules\":[{\"path\":\"$EV\",\"status\":502,\"body\":\"{}\"}]}"
fd_peer e404 "{\"rules\":[{\"path\":\"$EV\",\"status\":404,\"body\":\"{}\"}]}"
fd_config "server_rate = 0"
fd_start

ID=$(sed -n 1p "$FD_DIR/ids")
fedctl -c "$FD_CONF" fetch event "$ID" --servers slow1.test,slow2.test,fast.test --fanout fixed:3 \
	>/dev/null 2>"$FD_DIR/err"
check_eq "fan-out round answered by the fastest" "fast.test" "$(tail -1 "$FD_DIR/err")"
for p in slow1 slow2 fast; do check_eq "$p asked once" 1 "$(fd_peer_stat $p requests)"; done
check "slow1 saw its request cancelled" wait_for "grep -q 'cancelled req=1' $FD_DIR/slow1.log" 50
check "slow2 saw its request cancelled" wait_for "grep -q 'cancelled req=1' $FD_DIR/slow2.log" 50
check "the fast peer answered" grep -q "done req=1 .*status=200" "$FD_DIR/fast.log"

# A failed sibling does not end the round: fail (502) answers at once,
# fast answers later, in the same round.
ID=$(sed -n 2p "$FD_DIR/ids")
fedctl -c "$FD_CONF" fetch event "$ID" --servers fail.test,fast.test --fanout fixed:2 \
	>/dev/null 2>"$FD_DIR/err"
check_eq "a failed sibling does not end the round" "fast.test" "$(tail -1 "$FD_DIR/err")"
check_eq "both asked in one round" "1 2" "$(fd_peer_stat fail requests) $(fd_peer_stat fast requests)"

# Geometric growth 1,2: round 1 asks e404 alone, round 2 asks fail + fast.
ID=$(sed -n 3p "$FD_DIR/ids")
fedctl -c "$FD_CONF" fetch auth_event "$ID" --servers e404.test,fast.test,slow1.test \
	--fanout geometric:1,2 --max-width 2 >/dev/null 2>"$FD_DIR/err"
check_eq "geometric: second round answered" "fast.test" "$(tail -1 "$FD_DIR/err")"
check_eq "geometric: e404 once, fast once more, slow1 raced and cancelled" "1 3 2" \
	"$(fd_peer_stat e404 requests) $(fd_peer_stat fast requests) $(fd_peer_stat slow1 requests)"

# Config ceilings only tighten: round_width_max = 1 makes fixed:3 sequential.
fd_stop
fd_config "server_rate = 0
round_width_max = 1"
fd_start
ID=$(sed -n 4p "$FD_DIR/ids")
fedctl -c "$FD_CONF" fetch event "$ID" --servers fast.test,slow1.test,slow2.test --fanout fixed:3 \
	>/dev/null 2>"$FD_DIR/err"
check_eq "ceiling 1: first server answers alone" "fast.test" "$(tail -1 "$FD_DIR/err")"
check_eq "ceiling 1: nobody else asked" "2 1" "$(fd_peer_stat slow1 requests) $(fd_peer_stat slow2 requests)"
finish
